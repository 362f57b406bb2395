"""Batched, idempotent loading of validated API records into ``raw`` and ``staging``.

Per batch, in one transaction: the records go to a temporary table by COPY; an upsert into
``raw.api_records`` rewrites only those whose content hash changed and returns their keys;
only for those keys are the staging rows replaced (parents upserted, children deleted and
re-inserted by COPY). Invalid payloads go to ``raw.quarantine`` with the reason. Stored payloads
have their personal fields redacted (``privacy.redact``). Re-running a batch changes nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

import orjson
import psycopg
from psycopg import sql

from returns_recon.privacy import redact
from returns_recon.warehouse.tables import TABLES, TableSpec


class StagingRecord(Protocol):
    @property
    def natural_key(self) -> str: ...

    def staging_rows(self, run_id: str) -> dict[str, list[tuple]]: ...


@dataclass
class Valid:
    key: str
    payload: dict[str, Any]
    model: StagingRecord


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
    valid: Iterable[Valid],
    invalid: Iterable[Invalid],
    run_id: str,
) -> LoadResult:
    result = LoadResult()
    latest: dict[str, Valid] = {}
    for record in valid:
        latest[record.key] = record  # duplicates within a batch: keep the last
    bad = list(invalid)
    result.received = len(latest) + len(bad)
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


def _upsert_raw(conn: psycopg.Connection, source: str, entity: str, records: dict[str, Valid], run_id: str) -> set[str]:
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS tmp_raw (natural_key text, content_hash text, payload jsonb) "
        "ON COMMIT DELETE ROWS"
    )
    with conn.cursor().copy("COPY tmp_raw (natural_key, content_hash, payload) FROM STDIN") as copy:
        for key, record in records.items():
            text = canonical_json(redact(record.payload))
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
        sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} (LIKE staging.{}) ON COMMIT DELETE ROWS").format(
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


def storable_json(payload: Any) -> str:
    """The payload as JSON Postgres accepts: a NUL character (which jsonb and text refuse) is kept
    visible as the text ``\\u0000`` instead of being lost or failing the insert."""
    return canonical_json(payload).replace("\\u0000", "\\\\u0000")


def quarantine(conn: psycopg.Connection, source: str, entity: str, bad: list[Invalid], run_id: str) -> int:
    seen: dict[str, Invalid] = {}
    for item in bad:
        item.payload = redact(item.payload)
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
