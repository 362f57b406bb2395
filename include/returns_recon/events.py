"""The events DAG's work (issue 20): what the webhooks said changed is read again, reconciled and posted, without
waiting for the hourly run. The hourly and daily runs stay the source of truth: they read their windows as before
(no watermark moves here) and catch whatever an event missed.

One run (``returns_recon_events``: ``steps.read_events`` → ``steps.data_quality`` → ``steps.reconcile_events`` →
``steps.post_event_corrections``):

1. ``pending``: up to ``events_per_run`` inbox rows not yet processed, oldest first (rows another run is claiming
   right now are skipped: ``FOR UPDATE SKIP LOCKED``). Which rows are pending, not the trigger's payload, decides.
2. ``read_changed``: each Reveni return they name is read again with ``GET returns/{id}`` (the webhook is thin:
   reveni_api.md §1 "Webhooks", §3), and each return-related Cin7 Core sale they name with ``GET sale?ID=`` as the
   batch reads sale details, with its ``saleCreditNoteList`` rows (the restock state lives only there, apib
   L20649; found by ``Search`` on the order number, L20596, and kept for that sale only). Everything is loaded
   through the batch's loader (validation, quarantine, redaction, content hash). A sale the warehouse has not
   listed yet, or one no return concerns, is left to the batch runs (their sale list comes first); so are events
   that name nothing (Cin7 Core's ``Stock/*``: the next batch run reads stock).
3. ``reconcile_claimed``: in one transaction, the rows read are claimed (``FOR UPDATE SKIP LOCKED``, still
   pending), the returns they concern reconciled (``reconcile.engine.reconcile`` with a scope: the same models,
   detection and exception keys) and the rows marked processed. A run killed before that commit leaves them
   pending: the next run does it all again, and loading and merging are idempotent.
4. ``post``: the quality gate of this run, then the planner and the executor of ``post_corrections`` restricted to
   those returns, under the same safety valves. While another run holds the postings lock, the postings are left
   to the next run (the planned ones wait in the outbox), without failing this one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import psycopg
from psycopg import sql

from returns_recon.apis.client import ApiClient
from returns_recon.apis.errors import ApiError, AuthError
from returns_recon.extract import paging
from returns_recon.extract.entities import ExtractSummary, credit_note_list_key, load_stream, record_run
from returns_recon.extract.run import Clients
from returns_recon.models import cin7, reveni
from returns_recon.postings.execute import ExecutionReport, PostingsLocked, execute, quality_gate
from returns_recon.postings.plan import plan
from returns_recon.reconcile.engine import RECONCILE_LOCK, ReconResult, reconcile, widen_scope
from returns_recon.settings import ReconSettings

log = logging.getLogger(__name__)

# pending rows, oldest first; ``ids`` (when given) limits them to the rows this run read
PENDING = """SELECT inbox_id, source, resource_ids FROM raw.webhook_inbox
WHERE processed_at IS NULL AND (%(ids)s::bigint[] IS NULL OR inbox_id = ANY(%(ids)s::bigint[]))
ORDER BY inbox_id
LIMIT %(limit)s
FOR UPDATE SKIP LOCKED"""
MARK_PROCESSED = """UPDATE raw.webhook_inbox SET processed_at = now(), processed_by_run = %(run_id)s
WHERE inbox_id = ANY(%(ids)s::bigint[]) AND processed_at IS NULL"""
# The returns a Cin7 Core sale concerns, with the sale's order number: the returns of its order (the sale matched
# on the configured field, as models/int_returns.sql matches it, our exchange orders left out), or, for one of our
# exchange orders, the return it was made for. Both are index lookups.
RETURNS_OF_SALES = """
SELECT s.sale_id, s.order_number, r.return_id
FROM staging.stg_cin7__sales AS s
INNER JOIN staging.stg_reveni__returns AS r ON r.order_external_id = staging.sale_match_value(s, {match_field})
WHERE s.sale_id = ANY(%(sales)s::text[]) AND staging.return_of_exchange_reference(s.external_id) IS NULL
UNION ALL
SELECT s.sale_id, s.order_number, r.return_id
FROM staging.stg_cin7__sales AS s
INNER JOIN staging.stg_reveni__returns AS r ON r.return_id = staging.return_of_exchange_reference(s.external_id)
WHERE s.sale_id = ANY(%(sales)s::text[])
"""


@dataclass
class Named:
    """What a set of inbox rows names: their ids, the Reveni returns and the Cin7 Core sales."""

    inbox_ids: list[int] = field(default_factory=list)
    return_ids: list[str] = field(default_factory=list)
    sale_ids: list[str] = field(default_factory=list)


def _named(rows: Sequence[tuple[int, str, list[str]]]) -> Named:
    returns: dict[str, None] = {}
    sales: dict[str, None] = {}
    for _, source, resource_ids in rows:
        into = returns if source == "reveni" else sales
        into.update(dict.fromkeys(i for i in resource_ids or [] if i))
    return Named([row[0] for row in rows], list(returns), list(sales))


def pending(conn: psycopg.Connection, limit: int, ids: Sequence[int] | None = None) -> Named:
    """Up to ``limit`` pending inbox rows (of ``ids``, when given), oldest first, skipping rows another
    transaction holds; on an autocommit connection their locks end with this statement."""
    params = {"ids": None if ids is None else list(ids), "limit": limit}
    return _named(conn.execute(PENDING, params).fetchall())


# --- reading again what changed --------------------------------------------------------------------------------


def _calls(client: ApiClient) -> int:
    return sum(client.calls.values())


def _by_id(what: str, ids: Sequence[str], get: Callable[[str], Any]) -> Iterator[Any]:
    """``get(id)`` for each id; an id the system answers 404 for (gone, or never there) is skipped, logged: it has
    nothing to load, and the batch runs still read whatever it became."""
    for one in ids:
        try:
            yield get(one)
        except AuthError:
            raise
        except ApiError as err:
            if err.status != 404:
                raise
            log.warning("%s %s: not found (404); nothing to read again", what, one)


def _summarised(
    conn: psycopg.Connection, client: ApiClient, summary: ExtractSummary, run_id: str, body: Callable[[], None]
) -> ExtractSummary:
    """Run ``body`` and record it in raw.extract_runs under this run, as the batch extraction records its reads."""
    started, before = datetime.now(UTC), _calls(client)
    body()
    summary.api_calls = _calls(client) - before
    record_run(conn, summary, run_id, started)
    log.info("read again %s", summary.as_dict())
    return summary


def reread_returns(
    conn: psycopg.Connection, client: ApiClient, run_id: str, return_ids: Sequence[str]
) -> ExtractSummary:
    """Each return with ``GET returns/{id}`` (reveni_api.md §3), loaded as the batch loads a listed return."""
    summary = ExtractSummary("reveni", "returns")

    def get(return_id: str) -> Any:
        return client.get(f"returns/{quote(return_id, safe='')}", label="return")

    def body() -> None:
        load_stream(conn, summary, reveni.ReveniReturn, _by_id("reveni return", return_ids, get), run_id, "id")

    return _summarised(conn, client, summary, run_id, body)


def sales_concerned(conn: psycopg.Connection, settings: ReconSettings, sale_ids: Sequence[str]) -> dict[str, str]:
    """The sales of ``sale_ids`` the warehouse holds and some return concerns: sale id -> order number."""
    if not sale_ids:
        return {}
    query = sql.SQL(RETURNS_OF_SALES).format(match_field=sql.Literal(settings.sale_match_field))
    return {sale: number or "" for sale, number, _ in conn.execute(query, {"sales": list(sale_ids)})}


def returns_of_sales(conn: psycopg.Connection, settings: ReconSettings, sale_ids: Sequence[str]) -> list[str]:
    """The returns the sales of ``sale_ids`` concern, as the warehouse holds them now."""
    if not sale_ids:
        return []
    query = sql.SQL(RETURNS_OF_SALES).format(match_field=sql.Literal(settings.sale_match_field))
    return sorted({r for _, _, r in conn.execute(query, {"sales": list(sale_ids)})})


def reread_sales(
    conn: psycopg.Connection, client: ApiClient, run_id: str, sales: dict[str, str]
) -> list[ExtractSummary]:
    """Each sale's detail with ``GET sale?ID=``, as the batch reads return-related sales, then its rows of the
    credit-note list (``Search`` on its order number is a substring match over several fields: only the
    sale's own rows are kept)."""
    details, notes = ExtractSummary("cin7", "sales"), ExtractSummary("cin7", "credit_note_list")

    def get(sale_id: str) -> Any:
        return client.get("sale", {"ID": sale_id}, label="sale")

    def read_details() -> None:
        load_stream(conn, details, cin7.Sale, _by_id("cin7 sale", list(sales), get), run_id, "ID")

    def note_rows() -> Iterator[Any]:
        for sale_id, number in sales.items():
            if not number:
                continue  # nothing to search by: the batch's credit-note list reads it
            listed = paging.cin7_list(
                client, "saleCreditNoteList", "SaleList", credit_note_list_key, {"Search": number}
            )
            yield from (row for row in listed if isinstance(row, dict) and str(row.get("SaleID")) == sale_id)

    def read_notes() -> None:
        load_stream(conn, notes, cin7.CreditNoteListRow, note_rows(), run_id, credit_note_list_key)

    return [
        _summarised(conn, client, details, run_id, read_details),
        _summarised(conn, client, notes, run_id, read_notes),
    ]


def read_changed(conn: psycopg.Connection, clients: Clients, run_id: str, settings: ReconSettings) -> dict[str, Any]:
    """Read again what the pending inbox rows name (at most ``events_per_run`` rows) and load it."""
    named = pending(conn, settings.events_per_run)
    summaries: list[ExtractSummary] = []
    if named.return_ids:
        summaries.append(reread_returns(conn, clients.reveni, run_id, named.return_ids))
    sales = sales_concerned(conn, settings, named.sale_ids)
    if set(named.sale_ids) - set(sales):
        log.info(
            "%d sales named by events are not return-related sales the warehouse holds: left to the batch runs",
            len(set(named.sale_ids) - set(sales)),
        )
    if sales:
        summaries.extend(reread_sales(conn, clients.cin7, run_id, sales))
    return {
        "inbox_ids": named.inbox_ids,
        "returns": len(named.return_ids),
        "sales": len(sales),
        "read": [s.as_dict() for s in summaries],
    }


# --- reconciling and marking -------------------------------------------------------------------------------------


def reconcile_claimed(
    conn: psycopg.Connection, run_id: str, settings: ReconSettings, inbox_ids: Sequence[int]
) -> dict[str, Any]:
    """In one transaction: claim the rows of ``inbox_ids`` still pending, reconcile the returns they concern and
    mark them processed by this run. Returns what was claimed, the returns reconciled and the counts."""
    with conn.transaction():
        # the reconciliation lock first: the rows stay locked only while their returns are reconciled, so a
        # replayed delivery of one of them (the receiver updates its row) waits as little as possible
        conn.execute("SELECT pg_advisory_xact_lock(%(lock)s)", {"lock": RECONCILE_LOCK})
        named = pending(conn, max(len(inbox_ids), 1), inbox_ids)
        concerned = sorted({*named.return_ids, *returns_of_sales(conn, settings, named.sale_ids)})
        scope = widen_scope(conn, concerned) if concerned else []
        result: ReconResult | None = None
        if scope:
            result = reconcile(conn, run_id, settings, "events", scope)
        if named.inbox_ids:
            conn.execute(MARK_PROCESSED, {"run_id": run_id, "ids": named.inbox_ids})
    outcome = {
        "processed": len(named.inbox_ids),
        "inbox_ids": named.inbox_ids,
        "returns": scope,
        **({k: v for k, v in result.as_dict().items() if k != "run_id"} if result else {}),
    }
    log.info(
        "%d inbox rows processed; %d returns reconciled: %s exceptions found, %s new, %s auto-resolved",
        len(named.inbox_ids),
        len(scope),
        outcome.get("exceptions_found", 0),
        outcome.get("opened", 0),
        outcome.get("auto_resolved", 0),
    )
    return outcome


# --- posting -------------------------------------------------------------------------------------------------------


def post(
    conn: psycopg.Connection, clients: Clients, run_id: str, settings: ReconSettings, return_ids: Sequence[str]
) -> dict[str, Any]:
    """The quality gate of this run, then plan and send the postings of ``return_ids``' open exceptions, under the
    safety valves of every run (``postings.execute``). Another run posting (the lock) leaves them to the next run."""
    quality_gate(conn, run_id)
    if not return_ids:
        return {"planned": 0, **ExecutionReport().as_dict(), "postings_locked": False}
    planned = plan(conn, run_id, settings, scope=list(return_ids))
    try:
        report = execute(conn, clients, run_id, settings, returns=list(return_ids))
    except PostingsLocked:
        log.warning(
            "another run is posting: the %d postings planned for these returns wait in the outbox for the next run",
            len(planned),
        )
        return {"planned": len(planned), **ExecutionReport().as_dict(), "postings_locked": True}
    return {"planned": len(planned), **report.as_dict(), "postings_locked": False}
