"""One function per source entity: read the API window, validate, load, move the watermark.

Each takes its inputs explicitly (a warehouse connection, an ``ApiClient``, the run id, the
mode and settings) and returns an ``ExtractSummary``; none needs Airflow.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any, Literal, Protocol, Self, TypeVar

import psycopg
from psycopg import sql
from pydantic import ValidationError

from returns_recon.apis.client import ApiClient
from returns_recon.extract import paging
from returns_recon.models import cin7, reveni, sitoo
from returns_recon.settings import ReconSettings
from returns_recon.warehouse.loader import Invalid, LoadResult, StagingRecord, Valid, load_batch
from returns_recon.warehouse.rows import one_row

log = logging.getLogger(__name__)

Mode = Literal["hourly", "daily"]
BATCH = 1000


class StagingModel(StagingRecord, Protocol):
    """A model of one API record (models/: a pydantic model with its natural key and staging rows)."""

    @classmethod
    def model_validate(cls, obj: Any) -> Self: ...


Model = TypeVar("Model", bound=StagingModel)


@dataclass
class ExtractSummary:
    source: str
    entity: str
    window_from: str | None = None
    fetched: int = 0
    changed: int = 0
    quarantined: int = 0
    api_calls: int = 0
    changed_keys: list[str] = field(default_factory=list, repr=False)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("changed_keys")
        return data


# --- validation and loading --------------------------------------------------------------------


def describe(error: ValidationError) -> str:
    """The reasons a record is invalid, for ``raw.quarantine``: where, what, and the value when it is a scalar
    (an object or a list is named, not shown: it may hold anything, personal data included)."""
    parts = []
    for item in error.errors(include_url=False):
        where = ".".join(str(p) for p in item["loc"]) or "record"
        value, message = item.get("input"), item["msg"]
        if isinstance(value, dict | list):
            shown = f"an object of {len(value)} keys" if isinstance(value, dict) else f"a list of {len(value)}"
            message = message.replace(repr(value), shown)  # a validator's own message may quote it
        else:
            shown = repr(str(value)[:80])
        parts.append(f"{where}: {message} (got {shown})")
    return "; ".join(parts)


def validate(model: type[Model], payload: Any, key_field: str | Callable[[Any], str | None]) -> Valid[Model] | Invalid:
    if callable(key_field):
        key = key_field(payload) if isinstance(payload, dict) else None
    else:
        key = payload.get(key_field) if isinstance(payload, dict) else None
    key = None if key is None else str(key)
    try:
        record = model.model_validate(payload)
    except ValidationError as err:
        return Invalid(key, payload, describe(err))
    return Valid(record.natural_key, payload, record)


def load_stream(
    conn: psycopg.Connection,
    summary: ExtractSummary,
    model: type[Model],
    payloads: Iterable[Any],
    run_id: str,
    key_field: str | Callable[[Any], str | None],
    on_valid: Callable[[Model], None] | None = None,
) -> ExtractSummary:
    iterator = iter(payloads)
    while batch := list(islice(iterator, BATCH)):
        valid, invalid = [], []
        for payload in batch:
            outcome = validate(model, payload, key_field)
            if isinstance(outcome, Valid):
                valid.append(outcome)
                if on_valid:
                    on_valid(outcome.model)
            else:
                invalid.append(outcome)
        result = _load_or_isolate(conn, summary, valid, invalid, run_id)
        summary.fetched += result.received
        summary.changed += result.changed
        summary.quarantined += result.quarantined
        summary.changed_keys += result.changed_keys
    if summary.quarantined:
        log.warning("%s.%s: %d invalid records quarantined", summary.source, summary.entity, summary.quarantined)
    return summary


# Values the models accept but the warehouse cannot hold (an amount beyond numeric(18,4), a NUL
# character, a key too long for an index): the batch is retried record by record and the
# records the warehouse refuses are quarantined with its reason; the rest load.
WAREHOUSE_REFUSALS = (psycopg.errors.DataError, psycopg.errors.ProgramLimitExceeded)


def _load_or_isolate(
    conn: psycopg.Connection,
    summary: ExtractSummary,
    valid: Sequence[Valid[StagingRecord]],
    invalid: list[Invalid],
    run_id: str,
) -> LoadResult:
    try:
        return load_batch(conn, summary.source, summary.entity, valid, invalid, run_id)
    except WAREHOUSE_REFUSALS:
        log.warning("%s.%s: the warehouse refused a batch; loading it record by record", summary.source, summary.entity)
    total = load_batch(conn, summary.source, summary.entity, [], invalid, run_id)
    for record in valid:
        try:
            one = load_batch(conn, summary.source, summary.entity, [record], [], run_id)
        except WAREHOUSE_REFUSALS as err:
            reason = f"refused by the warehouse: {err.diag.message_primary or type(err).__name__}"
            one = load_batch(
                conn, summary.source, summary.entity, [], [Invalid(record.key, record.payload, reason)], run_id
            )
        total.received += one.received
        total.changed += one.changed
        total.quarantined += one.quarantined
        total.changed_keys += one.changed_keys
    return total


# --- watermarks ----------------------------------------------------------------------------------


def get_watermark(conn: psycopg.Connection, source: str, entity: str) -> str | None:
    row = conn.execute(
        "SELECT watermark FROM raw.extract_watermarks WHERE source = %s AND entity = %s", (source, entity)
    ).fetchone()
    return row[0] if row else None


def set_watermark(conn: psycopg.Connection, source: str, entity: str, value: str, run_id: str) -> None:
    conn.execute(
        """INSERT INTO raw.extract_watermarks (source, entity, watermark, run_id) VALUES (%s, %s, %s, %s)
           ON CONFLICT (source, entity) DO UPDATE
             SET watermark = EXCLUDED.watermark, updated_at = now(), run_id = EXCLUDED.run_id""",
        (source, entity, value, run_id),
    )


def record_run(conn: psycopg.Connection, summary: ExtractSummary, run_id: str, started: datetime) -> None:
    conn.execute(
        """INSERT INTO raw.extract_runs
             (run_id, source, entity, started_at, window_from, fetched, changed, quarantined, api_calls)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
           ON CONFLICT (run_id, source, entity) DO UPDATE SET
             started_at = EXCLUDED.started_at, finished_at = now(), window_from = EXCLUDED.window_from,
             fetched = EXCLUDED.fetched, changed = EXCLUDED.changed, quarantined = EXCLUDED.quarantined,
             api_calls = EXCLUDED.api_calls""",
        (
            run_id,
            summary.source,
            summary.entity,
            started,
            summary.window_from,
            summary.fetched,
            summary.changed,
            summary.quarantined,
            summary.api_calls,
        ),
    )


def window_start(watermark: str | None, mode: Mode, settings: ReconSettings) -> datetime | None:
    """Where a read behind a timestamp watermark starts: the overlap (hourly) or the trailing window (daily)
    behind it, and never after the start of the watermark's own second, less one. A vendor may stamp
    changes to the whole second (Cin7 Core serves 0 to 7 fractional digits, apib L20496, L26330), so a
    change made later in the second of our last read carries the watermark's timestamp: the whole second is
    read again (``>=``) whatever the vendor's "since" means (Cin7 Core documents "changed after", L20449).
    Records read again unchanged are no change (content hash, ``load_batch``)."""
    if watermark is None:
        return None
    back = timedelta(days=settings.trailing_days) if mode == "daily" else timedelta(hours=settings.overlap_hours)
    return _second(datetime.fromisoformat(watermark) - back) - timedelta(seconds=1)


def _second(when: datetime) -> datetime:
    return when.replace(microsecond=0)


class _Newest:
    """Tracks the highest value seen (the next watermark)."""

    def __init__(self, start: Any = None) -> None:
        self.value = start

    def see(self, value: Any) -> None:
        if value is not None and (self.value is None or value > self.value):
            self.value = value


def _calls(client: ApiClient) -> int:
    return sum(client.calls.values())


def _run(
    conn: psycopg.Connection, client: ApiClient, summary: ExtractSummary, run_id: str, body: Callable[[], Any]
) -> ExtractSummary:
    started, before = datetime.now(UTC), _calls(client)
    body()
    summary.api_calls = _calls(client) - before
    record_run(conn, summary, run_id, started)
    log.info("extracted %s", summary.as_dict())
    return summary


# --- Reveni ----------------------------------------------------------------------------------------


def extract_reveni_returns(
    conn: psycopg.Connection, client: ApiClient, run_id: str, mode: Mode, settings: ReconSettings
) -> ExtractSummary:
    summary = ExtractSummary("reveni", "returns")

    def body() -> None:
        since = window_start(get_watermark(conn, "reveni", "returns"), mode, settings)
        summary.window_from = since.isoformat() if since else None
        newest = _Newest()
        load_stream(
            conn,
            summary,
            reveni.ReveniReturn,
            paging.reveni_returns(client, since),
            run_id,
            "id",
            on_valid=lambda r: newest.see(r.updated_at),
        )
        if newest.value is not None:
            _advance(conn, "reveni", "returns", newest.value.isoformat(), run_id)

    return _run(conn, client, summary, run_id, body)


# --- Reveni without a list endpoint (connection extra list_endpoint=false) ----------------------------------------

# A return nothing about which changes any more (operating-model.md §2's lifecycle, read conservatively): rejected or
# cancelled, or accepted / partly accepted with at least one refund, and in each case no refund other than paid and
# (but cancelled, which may stop before inspection) no item still to validate or of an unknown validation. Anything
# else may still change: a refund Reveni has yet to pay, an exchange-only return (no refund ever), a status outside
# the documented set or none. Over the columns of staging.stg_reveni__returns AS r.
FINAL_RETURN = """(
    r.status IN ('accepted', 'partly_accepted', 'rejected', 'cancelled')
    AND NOT EXISTS (SELECT 1 FROM staging.stg_reveni__refunds AS f
                    WHERE f.return_id = r.return_id AND f.status IS DISTINCT FROM 'paid')
    AND (r.status IN ('rejected', 'cancelled')
         OR EXISTS (SELECT 1 FROM staging.stg_reveni__refunds AS f WHERE f.return_id = r.return_id))
    AND (r.status = 'cancelled'
         OR NOT EXISTS (SELECT 1 FROM staging.stg_reveni__return_items AS i
                        WHERE i.return_id = r.return_id
                          AND i.validation_status IS DISTINCT FROM 'accepted'
                          AND i.validation_status IS DISTINCT FROM 'rejected'))
)"""
# What the batch runs read by id without a list endpoint, in this order: the returns webhook events named in the
# window that the warehouse does not hold (the only way such a return is found); then every return not final that is
# dated in the window (as models/int_returns.sql dates it) or named by an event in it, in turn: after the one the
# last run read last (``BY_ID_CURSOR``), wrapping round, so a run bounded by RECON_REVENI_READS_BY_ID_PER_RUN leaves
# the rest to the next runs and every one is read in turn.
BY_ID_CANDIDATES = f"""
WITH named AS (
    SELECT DISTINCT e.return_id
    FROM raw.webhook_inbox AS i CROSS JOIN LATERAL unnest(i.resource_ids) AS e (return_id)
    WHERE i.source = 'reveni' AND i.received_at >= %(since)s AND e.return_id <> ''
)
SELECT c.return_id, c.new FROM (
    SELECT n.return_id, true AS new
    FROM named AS n
    WHERE NOT EXISTS (SELECT 1 FROM staging.stg_reveni__returns AS r WHERE r.return_id = n.return_id)
    UNION ALL
    SELECT r.return_id, false
    FROM staging.stg_reveni__returns AS r
    WHERE NOT {FINAL_RETURN}
      AND (coalesce(r.created_at, r.updated_at, r.first_seen_at) >= %(since)s
           OR r.return_id IN (SELECT n.return_id FROM named AS n))
) AS c
ORDER BY c.new DESC, (NOT c.new AND c.return_id <= coalesce(%(cursor)s, '')), c.return_id
"""
BY_ID_CURSOR = "returns_by_id_cursor"  # raw.extract_watermarks (reveni): the return the last run read last, in turn


@dataclass
class ByIdPlan:
    """What one by-id read takes, in order, and what it leaves to the next runs."""

    new: list[str]  # named by events in the window, not yet in the warehouse
    in_turn: list[str]  # not final, in turn after the cursor
    left: list[str]
    since: datetime

    @property
    def ids(self) -> list[str]:
        return self.new + self.in_turn


def reveni_returns_to_read(conn: psycopg.Connection, settings: ReconSettings) -> ByIdPlan:
    """The returns the next by-id read takes (``BY_ID_CANDIDATES``, at most RECON_REVENI_READS_BY_ID_PER_RUN) and
    those it leaves."""
    since = datetime.now(UTC) - timedelta(days=settings.trailing_days)
    cursor = get_watermark(conn, "reveni", BY_ID_CURSOR)
    rows = conn.execute(BY_ID_CANDIDATES, {"since": since, "cursor": cursor}).fetchall()
    budget = settings.reveni_reads_by_id_per_run
    chosen = rows[:budget]
    return ByIdPlan(
        [r[0] for r in chosen if r[1]], [r[0] for r in chosen if not r[1]], [r[0] for r in rows[budget:]], since
    )


def extract_reveni_returns_by_id(
    conn: psycopg.Connection, client: ApiClient, run_id: str, settings: ReconSettings
) -> ExtractSummary:
    """The batch runs' Reveni extraction for an account without the paged list (docs/extraction.md): each return
    that may have changed, with ``GET returns/{id}`` (reveni_api.md §3), loaded as a listed one is (the events
    DAG's reader, ``events.reread_returns``). No watermark of the list moves: should the account gain a list
    endpoint, its first read starts where the list last left off (or reads everything)."""
    from returns_recon.events import reread_returns

    plan = reveni_returns_to_read(conn, settings)
    log.info(
        "reveni returns by id (no list endpoint): %d to read, %d named by events and not yet held, %d not final "
        "(window from %s); %d left for the next run",
        len(plan.ids),
        len(plan.new),
        len(plan.in_turn),
        plan.since.isoformat(),
        len(plan.left),
    )
    if plan.left:
        log.warning(
            "reveni returns by id: RECON_REVENI_READS_BY_ID_PER_RUN (%d) reached; %d returns left for the next run, "
            "e.g. %s",
            settings.reveni_reads_by_id_per_run,
            len(plan.left),
            ", ".join(plan.left[:5]),
        )
    summary = reread_returns(conn, client, run_id, plan.ids)
    if plan.in_turn:
        set_watermark(conn, "reveni", BY_ID_CURSOR, plan.in_turn[-1], run_id)
    return summary


def _advance(conn: psycopg.Connection, source: str, entity: str, value: str, run_id: str) -> None:
    current = get_watermark(conn, source, entity)
    if current is None or value > current:
        set_watermark(conn, source, entity, value, run_id)


# --- Cin7 Core -------------------------------------------------------------------------------------


def _cin7_window(
    conn: psycopg.Connection, summary: ExtractSummary, watermark: str, mode: Mode, settings: ReconSettings
) -> dict[str, str]:
    """The ``UpdatedSince`` of a Cin7 Core list read behind its watermark (none on a first read)."""
    since = window_start(get_watermark(conn, "cin7", watermark), mode, settings)
    summary.window_from = since.isoformat() if since else None
    return {"UpdatedSince": since.strftime("%Y-%m-%dT%H:%M:%S")} if since else {}


def extract_cin7_sales(
    conn: psycopg.Connection, client: ApiClient, run_id: str, mode: Mode, settings: ReconSettings
) -> ExtractSummary:
    """The sale list for the window (headers of every sale, so any order number can be matched
    later), then the detail (lines, credit notes, restocks) of each return-related sale whose
    detail is missing or older than its list row."""
    summary = ExtractSummary("cin7", "sales")

    def body() -> None:
        before = get_watermark(conn, "cin7", "sale_list")
        open_second = get_watermark(conn, "cin7", OPEN_SECOND)
        params = _cin7_window(conn, summary, "sale_list", mode, settings)
        newest, newest_detail = _Newest(), _Newest()
        rows = paging.cin7_list(client, "saleList", "SaleList", paging.field_key("SaleID"), params)
        listed = ExtractSummary("cin7", "sale_list")
        load_stream(conn, listed, cin7.SaleListRow, rows, run_id, "SaleID", on_valid=lambda r: newest.see(r.Updated))
        reread_from = datetime.fromisoformat(open_second) if open_second else None
        stale = stale_sale_ids(conn, settings, reread_from, listed.changed_keys)
        details = ExtractSummary("cin7", "sales")
        load_stream(
            conn,
            details,
            cin7.Sale,
            _sale_details(client, stale, settings.detail_workers),
            run_id,
            "ID",
            on_valid=lambda r: newest_detail.see(r.LastModifiedOn),
        )
        summary.fetched = listed.fetched + details.fetched
        summary.changed, summary.quarantined = details.changed, listed.quarantined + details.quarantined
        summary.changed_keys = details.changed_keys
        if newest.value is not None:
            _advance(conn, "cin7", "sale_list", newest.value.isoformat(), run_id)
        _note_open_second(conn, before, newest_detail.value, run_id)

    return _run(conn, client, summary, run_id, body)


# The second of sale details read while it may still have been open (kept in raw.extract_watermarks)
OPEN_SECOND = "sale_detail_open_second"


def _note_open_second(
    conn: psycopg.Connection, before: str | None, newest_detail: datetime | None, run_id: str
) -> None:
    """Which details this run read within a second that may not have ended yet, for the next run to read again.

    The sale list is read before the details, so when the details are read the vendor's clock has reached
    the list's newest ``Updated`` (the watermark): a detail stamped in an earlier second is final. One
    stamped in the watermark's second or later may be followed by another change in the same second, which
    carries the same timestamp; the next run reads those details again, once (a run starts more than a
    second after the last). A second that was already the watermark's before this run had ended by now, so
    an idle run leaves nothing open and costs no extra call."""
    watermark = get_watermark(conn, "cin7", "sale_list")
    if newest_detail is not None and watermark is not None:
        open_from = _second(datetime.fromisoformat(watermark))
        if before is not None:
            open_from = max(open_from, _second(datetime.fromisoformat(before)) + timedelta(seconds=1))
        if _second(newest_detail) >= open_from:
            set_watermark(conn, "cin7", OPEN_SECOND, open_from.isoformat(), run_id)
            return
    conn.execute("DELETE FROM raw.extract_watermarks WHERE source = 'cin7' AND entity = %s", (OPEN_SECOND,))


def extract_cin7_credit_note_list(
    conn: psycopg.Connection, client: ApiClient, run_id: str, mode: Mode, settings: ReconSettings
) -> ExtractSummary:
    """The credit-note list for the window: each credit note's status and its restock state, which
    Cin7 Core serves only there (``RestockStatus``, apib L20649), one paged list rather than a call
    per sale."""
    summary = ExtractSummary("cin7", "credit_note_list")

    def body() -> None:
        params = _cin7_window(conn, summary, "credit_note_list", mode, settings)
        newest = _Newest()
        rows = paging.cin7_list(client, "saleCreditNoteList", "SaleList", credit_note_list_key, params)
        load_stream(
            conn,
            summary,
            cin7.CreditNoteListRow,
            rows,
            run_id,
            credit_note_list_key,
            on_valid=lambda r: newest.see(r.Updated),
        )
        if newest.value is not None:
            _advance(conn, "cin7", "credit_note_list", newest.value.isoformat(), run_id)

    return _run(conn, client, summary, run_id, body)


def credit_note_list_key(row: dict) -> str | None:
    if row.get("SaleID") is None:
        return None
    return f"{row['SaleID']}|{row.get('CreditNoteNumber') or ''}"


def stale_sale_ids(
    conn: psycopg.Connection,
    settings: ReconSettings,
    reread_from: datetime | None = None,
    listed_changed: list[str] | None = None,
) -> list[str]:
    """Return-related sales whose detail we lack, is older than the sale list says (to the second: the list
    and the detail may not carry the same precision), was read within a second that may not have ended
    (``reread_from``, see ``_note_open_second``), or whose list row changed in this run within the second
    of its detail (``listed_changed``: a change the timestamp cannot show)."""
    # constants, which the planner folds (migrations 0019, 0020): staging.sale_match_value to the match field's column,
    # staging.exchange_reference('%') to the LIKE pattern of every exchange order (estimated as the LIKE was)
    query = sql.SQL(
        """SELECT s.sale_id FROM staging.stg_cin7__sales s
           WHERE (s.detail_updated_at IS NULL OR s.detail_updated_at < date_trunc('second', s.updated_at)
                  OR date_trunc('second', s.detail_updated_at) >= %(reread_from)s
                  OR s.sale_id = ANY(%(listed_changed)s))
             AND (staging.sale_match_value(s, {match_field})
                      IN (SELECT order_external_id FROM staging.stg_reveni__returns)
                  OR s.external_id LIKE staging.exchange_reference('%%'))
           ORDER BY s.sale_id"""
    ).format(match_field=sql.Literal(settings.sale_match_field))
    params = {"reread_from": reread_from, "listed_changed": listed_changed or []}
    return [row[0] for row in conn.execute(query, params)]


def _sale_details(client: ApiClient, sale_ids: list[str], workers: int) -> Iterator[Any]:
    with ThreadPoolExecutor(max_workers=workers) as pool:
        yield from pool.map(lambda sale_id: client.get("sale", {"ID": sale_id}, label="sale"), sale_ids)


def extract_cin7_transfers(
    conn: psycopg.Connection, client: ApiClient, run_id: str, mode: Mode, settings: ReconSettings
) -> ExtractSummary:
    """The stock transfers, read whole: the list has no change filter, and its ``Search`` does not
    read ``Reference`` (apib L26299), so our transfers are picked out by reference on our side."""
    summary = ExtractSummary("cin7", "stock_transfers")

    def body() -> None:
        rows = paging.cin7_list(client, "stockTransferList", "StockTransferList", paging.field_key("TaskID"))
        load_stream(conn, summary, cin7.StockTransferRow, rows, run_id, "TaskID")

    return _run(conn, client, summary, run_id, body)


def _availability_key(row: dict) -> str | None:
    if row.get("ID") is None or row.get("Location") is None:
        return None
    return f"{row['ID']}|{row['Location']}|{row.get('Bin') or ''}|{row.get('Batch') or ''}"


CIN7_REFERENCE = (
    ("products", "product", "Products", cin7.Product, paging.field_key("ID"), "ID"),
    ("locations", "ref/location", "LocationList", cin7.Location, paging.field_key("ID"), "ID"),
    (
        "availability",
        "ref/productavailability",
        "ProductAvailabilityList",
        cin7.Availability,
        _availability_key,
        _availability_key,
    ),
)


def extract_cin7_reference(conn: psycopg.Connection, client: ApiClient, run_id: str) -> list[ExtractSummary]:
    return [
        _load_whole(
            conn,
            client,
            ExtractSummary("cin7", entity),
            model,
            paging.cin7_list(client, path, list_key, key),
            run_id,
            key_field,
        )
        for entity, path, list_key, model, key, key_field in CIN7_REFERENCE
    ]


def _load_whole(
    conn: psycopg.Connection,
    client: ApiClient,
    summary: ExtractSummary,
    model: type[StagingModel],
    rows: Iterable[Any],
    run_id: str,
    key_field: str | Callable[[Any], str | None],
) -> ExtractSummary:
    """Load a whole listing (reference data)."""
    return _run(conn, client, summary, run_id, lambda: load_stream(conn, summary, model, rows, run_id, key_field))


# --- Sitoo -----------------------------------------------------------------------------------------


def _id_window_start(
    conn: psycopg.Connection,
    table: str,
    id_col: str,
    date_col: str,
    watermark: str | None,
    mode: Mode,
    settings: ReconSettings,
) -> int:
    """Sitoo ids only grow: start at the watermark itself (``>=``: the last record read is read again, within
    the same page, so a change to it since is seen and an unchanged one is no change), or, to re-read the
    overlap window, at the first id dated inside it."""
    if watermark is None:
        return 1
    back = timedelta(days=settings.trailing_days) if mode == "daily" else timedelta(hours=settings.overlap_hours)
    query = sql.SQL("SELECT min({id}) FROM staging.{table} WHERE {date} >= now() - %s").format(
        id=sql.Identifier(id_col), table=sql.Identifier(table), date=sql.Identifier(date_col)
    )
    first = one_row(conn.execute(query, (back,)))[0]
    return min(int(first), int(watermark)) if first is not None else int(watermark)


def _extract_sitoo_by_id(
    conn: psycopg.Connection,
    client: ApiClient,
    run_id: str,
    mode: Mode,
    settings: ReconSettings,
    *,
    entity: str,
    path: str,
    id_field: str,
    from_param: str,
    model: type[StagingModel],
    table: str,
    id_col: str,
    date_col: str,
) -> ExtractSummary:
    summary = ExtractSummary("sitoo", entity)

    def body() -> None:
        start = _id_window_start(conn, table, id_col, date_col, get_watermark(conn, "sitoo", entity), mode, settings)
        summary.window_from = str(start)
        newest = _Newest()
        rows = paging.sitoo_by_id(client, path, id_field, from_param, start)
        load_stream(conn, summary, model, rows, run_id, id_field, on_valid=lambda r: newest.see(int(r.natural_key)))
        if newest.value is not None:
            current = get_watermark(conn, "sitoo", entity)
            if current is None or newest.value > int(current):
                set_watermark(conn, "sitoo", entity, str(newest.value), run_id)

    return _run(conn, client, summary, run_id, body)


def extract_sitoo_orders(
    conn: psycopg.Connection, client: ApiClient, run_id: str, mode: Mode, settings: ReconSettings
) -> ExtractSummary:
    return _extract_sitoo_by_id(
        conn,
        client,
        run_id,
        mode,
        settings,
        entity="orders",
        path="orders.json",
        id_field="orderid",
        from_param="orderidfrom",
        model=sitoo.Order,
        table="stg_sitoo__orders",
        id_col="order_id",
        date_col="order_date",
    )


def extract_sitoo_transactions(
    conn: psycopg.Connection, client: ApiClient, run_id: str, mode: Mode, settings: ReconSettings, site_id: int
) -> ExtractSummary:
    return _extract_sitoo_by_id(
        conn,
        client,
        run_id,
        mode,
        settings,
        entity="warehouse_transactions",
        path=f"sites/{site_id}/warehousetransactions.json",
        id_field="warehousetransactionid",
        from_param="warehousetransactionidfrom",
        model=sitoo.WarehouseTransaction,
        table="stg_sitoo__warehouse_transactions",
        id_col="transaction_id",
        date_col="date_created",
    )


def extract_sitoo_reference(
    conn: psycopg.Connection, client: ApiClient, run_id: str, site_id: int
) -> list[ExtractSummary]:
    site = f"sites/{site_id}"
    # inactive (discontinued) products are still products a return can carry: listed only on request
    plan: list[tuple[str, str, str, type[StagingModel], dict[str, str] | None]] = [
        ("products", f"{site}/products.json", "productid", sitoo.Product, {"includeinactive": "true"}),
        ("warehouses", f"{site}/warehouses.json", "warehouseid", sitoo.Warehouse, None),
        ("stores", f"{site}/stores.json", "storeid", sitoo.Store, None),
    ]
    summaries = [
        _load_whole(
            conn,
            client,
            ExtractSummary("sitoo", entity),
            model,
            paging.sitoo_list(client, path, id_field, params),
            run_id,
            id_field,
        )
        for entity, path, id_field, model, params in plan
    ]
    items = ExtractSummary("sitoo", "warehouse_items")

    def load_items() -> None:
        warehouses = [r[0] for r in conn.execute("SELECT warehouse_id FROM staging.stg_sitoo__warehouses ORDER BY 1")]
        for warehouse_id in warehouses:
            rows = paging.sitoo_list(client, f"{site}/warehouses/{warehouse_id}/warehouseitems.json", "warehouseitemid")
            load_stream(
                conn,
                items,
                sitoo.WarehouseItem,
                ({**r, "warehouseid": warehouse_id} for r in rows),
                run_id,
                lambda r: f"{r.get('warehouseid')}|{r.get('sku')}",
            )

    summaries.append(_run(conn, client, items, run_id, load_items))
    return summaries


def reference_loaded(conn: psycopg.Connection) -> bool:
    """Whether every reference table has been loaded at least once (else hourly loads them too)."""
    tables = ("stg_cin7__products", "stg_cin7__locations", "stg_sitoo__products", "stg_sitoo__warehouses")
    return all(
        one_row(conn.execute(sql.SQL("SELECT EXISTS (SELECT 1 FROM staging.{})").format(sql.Identifier(t))))[0]
        for t in tables
    )
