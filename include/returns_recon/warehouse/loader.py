"""Batched, idempotent loading of validated API records into ``raw`` and ``staging``.

Per batch, in one transaction: the records go to a temporary table by COPY; an upsert into
``raw.api_records`` rewrites only those whose content hash changed and returns their keys;
only for those keys are the staging rows replaced (parents upserted, children deleted and
re-inserted by COPY). Invalid payloads go to ``raw.quarantine`` with the reason. Stored payloads
keep only the fields allowed for their entity (``privacy.ALLOWED``), so the content hash changes only
when a field we read does; a quarantined payload also keeps the names of the keys dropped from it.
Re-running a batch changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Generic, Protocol, TypeVar

import orjson
import psycopg
from psycopg import sql

from returns_recon import privacy
from returns_recon.warehouse.tables import TABLES, TableSpec

log = logging.getLogger(__name__)
MINIMISE_BATCH = 1000


class StagingRecord(Protocol):
    @property
    def natural_key(self) -> str: ...

    def staging_rows(self, run_id: str) -> dict[str, list[tuple]]: ...


Record = TypeVar("Record", bound=StagingRecord, covariant=True)


@dataclass
class Valid(Generic[Record]):
    key: str
    payload: dict[str, Any]
    model: Record  # the model class validated (extract.entities.validate)


@dataclass
class Invalid:
    key: str | None
    payload: Any
    error: str


@dataclass
class LoadResult:
    received: int = 0
    changed: int = 0
    quarantined: int = 0
    changed_keys: list[str] = field(default_factory=list)


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(type(value))


def canonical_json(payload: Any) -> str:
    """Sorted keys, no whitespace, decimals as strings: the same payload always hashes the same."""
    try:
        return orjson.dumps(payload, default=_json_default, option=orjson.OPT_SORT_KEYS).decode()
    except orjson.JSONEncodeError:  # integers beyond 64 bits, non-string keys: hostile payloads
        return json.dumps(payload, sort_keys=True, separators=(",", ":"), default=_json_default, ensure_ascii=False)


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def load_batch(
    conn: psycopg.Connection,
    source: str,
    entity: str,
    valid: Iterable[Valid[StagingRecord]],
    invalid: Iterable[Invalid],
    run_id: str,
) -> LoadResult:
    result = LoadResult()
    latest: dict[str, Valid[StagingRecord]] = {}
    for record in valid:
        latest[record.key] = record  # duplicates within a batch: keep the last
    bad = list(invalid)
    result.received = len(latest) + len(bad)
    minimise_stored(conn, source, entity)
    with conn.transaction():
        if latest:
            changed = _upsert_raw(conn, source, entity, latest, run_id)
            result.changed, result.changed_keys = len(changed), sorted(changed)
            if changed:
                _replace_staging(conn, [latest[k].model for k in sorted(changed)], run_id)
            conn.execute(
                """UPDATE raw.quarantine SET superseded_at = now()
                   WHERE source = %s AND entity = %s AND natural_key = ANY(%s) AND superseded_at IS NULL""",
                (source, entity, list(latest)),
            )
        if bad:
            result.quarantined = quarantine(conn, source, entity, bad, run_id)
    return result


def _upsert_raw(
    conn: psycopg.Connection, source: str, entity: str, records: dict[str, Valid[StagingRecord]], run_id: str
) -> set[str]:
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS tmp_raw (natural_key text, content_hash text, payload jsonb) "
        "ON COMMIT DELETE ROWS"
    )
    shape = privacy.allowed(source, entity)
    with conn.cursor().copy("COPY tmp_raw (natural_key, content_hash, payload) FROM STDIN") as copy:
        for key, record in records.items():
            text = canonical_json(privacy.minimise(record.payload, shape))
            copy.write_row((key, content_hash(text), text))
    rows = conn.execute(
        """INSERT INTO raw.api_records AS r (source, entity, natural_key, content_hash, payload, run_id)
           SELECT %s, %s, natural_key, content_hash, payload, %s FROM tmp_raw
           ON CONFLICT (source, entity, natural_key) DO UPDATE
             SET content_hash = EXCLUDED.content_hash, payload = EXCLUDED.payload,
                 fetched_at = now(), run_id = EXCLUDED.run_id
             WHERE r.content_hash <> EXCLUDED.content_hash
           RETURNING natural_key""",
        (source, entity, run_id),
    ).fetchall()
    return {row[0] for row in rows}


def _replace_staging(conn: psycopg.Connection, models: list[StagingRecord], run_id: str) -> None:
    by_table: dict[str, list[tuple]] = {}
    for model in models:
        for table, rows in model.staging_rows(run_id).items():
            by_table.setdefault(table, []).extend(rows)
    parents = [TABLES[t] for t in by_table if TABLES[t].parent_key is None]
    children = [TABLES[t] for t in by_table if TABLES[t].parent_key is not None]
    for spec in parents:
        _upsert(conn, spec, by_table[spec.name])
    keys = [m.natural_key for m in models]
    for spec in _children_of(by_table, models):
        assert spec.parent_key is not None  # a child table
        conn.execute(
            sql.SQL("DELETE FROM staging.{} WHERE {} = ANY(%s)").format(
                sql.Identifier(spec.name), sql.Identifier(spec.parent_key)
            ),
            (keys,),
        )
    for spec in children:
        _copy(conn, spec.name, spec.columns, by_table[spec.name])


def _children_of(by_table: dict[str, list[tuple]], models: list[StagingRecord]) -> list[TableSpec]:
    """Every child table a model of this kind can emit, even when this batch has no rows for it
    (a refund removed from a return must disappear from staging too)."""
    emitted = {t for m in models[:1] for t in m.staging_rows("probe")}
    return [TABLES[t] for t in emitted | set(by_table) if TABLES[t].parent_key is not None]


def _table_name(spec: TableSpec) -> str:
    return spec.name.split(":", 1)[0]


def _upsert(conn: psycopg.Connection, spec: TableSpec, rows: list[tuple]) -> None:
    table = _table_name(spec)
    temp = f"tmp_{table}"
    conn.execute(
        # with the defaults: a column the loader does not write (e.g. first_seen_at) gets its default, not NULL
        sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} (LIKE staging.{} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS").format(
            sql.Identifier(temp), sql.Identifier(table)
        )
    )
    _copy(conn, temp, spec.columns, rows, schema=None)
    columns = sql.SQL(", ").join(map(sql.Identifier, spec.columns))
    updates = sql.SQL(", ").join(
        sql.SQL("{} = EXCLUDED.{}").format(sql.Identifier(c), sql.Identifier(c)) for c in spec.updatable
    )
    key = sql.SQL(", ").join(map(sql.Identifier, spec.key))
    conn.execute(
        sql.SQL(
            "INSERT INTO staging.{table} ({columns}) SELECT DISTINCT ON ({key}) {columns} FROM {temp} "
            "ON CONFLICT ({key}) DO UPDATE SET {updates}"
        ).format(table=sql.Identifier(table), columns=columns, temp=sql.Identifier(temp), key=key, updates=updates)
    )


def _copy(
    conn: psycopg.Connection, table: str, columns: tuple[str, ...], rows: list[tuple], schema: str | None = "staging"
) -> None:
    target = sql.Identifier(schema, table) if schema else sql.Identifier(table)
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(target, sql.SQL(", ").join(map(sql.Identifier, columns)))
    with conn.cursor().copy(statement) as copy:
        for row in rows:
            copy.write_row(row)


def _text(value: str | None, limit: int) -> str | None:
    """Text Postgres accepts and an index can hold: NUL shown as ``\\u0000``, cut at ``limit``."""
    return None if value is None else value.replace("\x00", "\\u0000")[:limit]


_NUL_ESCAPE = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")


def storable_json(payload: Any) -> str:
    """The payload as JSON Postgres accepts: a NUL character (which jsonb and text refuse) is kept
    visible as the text ``\\u0000`` instead of being lost or failing the insert."""
    # only a real escape: \u0000 after an even number of backslashes (the text "\\u0000" is already storable)
    return _NUL_ESCAPE.sub(r"\1\\\\u0000", canonical_json(payload))


def quarantine(conn: psycopg.Connection, source: str, entity: str, bad: list[Invalid], run_id: str) -> int:
    minimise_stored(conn, source, entity)
    shape = privacy.allowed(source, entity)
    seen: dict[str, Invalid] = {}
    for item in bad:
        item.payload = privacy.minimise_invalid(item.payload, shape)
        seen[content_hash(canonical_json(item.payload))] = item
    with conn.cursor() as cur:
        cur.executemany(
            """INSERT INTO raw.quarantine AS q (source, entity, natural_key, payload_hash, payload, error, run_id)
               VALUES (%s, %s, %s, %s, %s, %s, %s)
               ON CONFLICT (source, entity, payload_hash) DO UPDATE
                 SET last_seen_at = now(), occurrences = q.occurrences + 1, run_id = EXCLUDED.run_id,
                     error = EXCLUDED.error, superseded_at = NULL""",
            [
                (
                    source,
                    entity,
                    _text(item.key, 500),
                    digest,
                    storable_json(item.payload),
                    _text(item.error, 2000),
                    run_id,
                )
                for digest, item in seen.items()
            ],
        )
    return len(seen)


# --- payloads stored under an earlier allow-list ---------------------------------------------------


def minimise_stored(conn: psycopg.Connection, source: str, entity: str) -> tuple[int, int] | None:
    """Minimise the payloads of an entity already stored, once per allow-list (``raw.payload_minimisation``):
    after the list changed, and after the upgrade from redaction by key name. Keyset batches of
    ``MINIMISE_BATCH``, one transaction each; a payload that is already minimal is left as it is, so an
    interrupted pass is simply done again. Content hashes are recomputed the way ``load_batch`` computes them:
    a record read again unchanged is still no change. Returns (records, quarantined) rewritten, or None when
    there was nothing to do."""
    shape = privacy.allowed(source, entity)
    version = privacy.digest(shape)
    done = conn.execute(
        "SELECT 1 FROM raw.payload_minimisation WHERE source = %s AND entity = %s AND allow_list = %s",
        (source, entity, version),
    ).fetchone()
    if done:
        return None
    records = _minimise_records(conn, source, entity, shape)
    quarantined = _minimise_quarantine(conn, source, entity, shape)
    conn.execute(
        """INSERT INTO raw.payload_minimisation (source, entity, allow_list, records, quarantined)
           VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING""",
        (source, entity, version, records, quarantined),
    )
    if records or quarantined:
        log.warning(
            "%s.%s: %d stored payloads and %d quarantined ones minimised to allow-list %s",
            source,
            entity,
            records,
            quarantined,
            version,
        )
    return records, quarantined


def _minimise_records(conn: psycopg.Connection, source: str, entity: str, shape: privacy.Shape) -> int:
    rewritten, after = 0, ""
    while True:
        rows = conn.execute(
            """SELECT natural_key, content_hash, payload FROM raw.api_records
               WHERE source = %s AND entity = %s AND natural_key > %s ORDER BY natural_key LIMIT %s""",
            (source, entity, after, MINIMISE_BATCH),
        ).fetchall()
        if not rows:
            return rewritten
        after = rows[-1][0]
        minimal = []
        for key, digest, payload in rows:
            text = canonical_json(privacy.minimise(payload, shape))
            if content_hash(text) != digest:
                minimal.append((key, content_hash(text), text))
        if not minimal:
            continue
        with conn.transaction():
            conn.execute(
                "CREATE TEMP TABLE IF NOT EXISTS tmp_minimal (natural_key text, content_hash text, payload jsonb) "
                "ON COMMIT DELETE ROWS"
            )
            with conn.cursor().copy("COPY tmp_minimal (natural_key, content_hash, payload) FROM STDIN") as copy:
                for row in minimal:
                    copy.write_row(row)
            rewritten += conn.execute(
                """UPDATE raw.api_records r SET payload = t.payload, content_hash = t.content_hash
                   FROM tmp_minimal t
                   WHERE r.source = %s AND r.entity = %s AND r.natural_key = t.natural_key""",
                (source, entity),
            ).rowcount


# the value a reason quoted, "<where>: <message> (got <value>)", parts joined by "; " (extract/entities.describe)
_QUOTED_INPUT = re.compile(r" \(got .*?\)(?=; [\w.\[\]]+: |$)", re.DOTALL)


def _minimise_quarantine(conn: psycopg.Connection, source: str, entity: str, shape: privacy.Shape) -> int:
    """Quarantined payloads are keyed by their hash: a rewritten one replaces the old row, merged into an
    equal one if there is one (occurrences added, still open if either was)."""
    rewritten, after = 0, ""
    while True:
        rows = conn.execute(
            """SELECT payload_hash, natural_key, payload, error, first_seen_at, last_seen_at, occurrences, run_id,
                      superseded_at
               FROM raw.quarantine WHERE source = %s AND entity = %s AND payload_hash > %s
               ORDER BY payload_hash LIMIT %s""",
            (source, entity, after, MINIMISE_BATCH),
        ).fetchall()
        if not rows:
            return rewritten
        after = rows[-1][0]
        minimal = []
        for old, key, payload, error, *rest in rows:
            text = canonical_json(privacy.minimise_invalid(payload, shape))  # read from jsonb: holds no NUL
            if content_hash(text) != old:  # stored before: its reason may quote any value, so it quotes none
                minimal.append((old, key, content_hash(text), text, _QUOTED_INPUT.sub("", error), *rest))
        if not minimal:
            continue
        with conn.transaction():
            conn.execute(
                "DELETE FROM raw.quarantine WHERE source = %s AND entity = %s AND payload_hash = ANY(%s)",
                (source, entity, [row[0] for row in minimal]),
            )
            with conn.cursor() as cur:
                cur.executemany(
                    """INSERT INTO raw.quarantine AS q (source, entity, natural_key, payload_hash, payload, error,
                                                        first_seen_at, last_seen_at, occurrences, run_id, superseded_at)
                       VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                       ON CONFLICT (source, entity, payload_hash) DO UPDATE SET
                         occurrences = q.occurrences + EXCLUDED.occurrences,
                         first_seen_at = least(q.first_seen_at, EXCLUDED.first_seen_at),
                         last_seen_at = greatest(q.last_seen_at, EXCLUDED.last_seen_at),
                         superseded_at = CASE WHEN q.superseded_at IS NULL OR EXCLUDED.superseded_at IS NULL
                                              THEN NULL ELSE greatest(q.superseded_at, EXCLUDED.superseded_at) END""",
                    [(source, entity, key, digest, text, *rest) for _, key, digest, text, *rest in minimal],
                )
            rewritten += len(minimal)
