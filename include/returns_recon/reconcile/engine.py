"""Run one reconciliation: models, detection, queue merge, publication (write, audit, publish).

A targeted run (``scope``: return ids, the events DAG's) runs the same models and detection over those returns
only (and the other returns of their orders, ``engine/scope.sql``), merges its findings into the queue at once and
resolves only exceptions of those returns; it does not rebuild the published tables, which the batch runs publish.

Everything happens in one transaction: the published tables and views are built (with their comments) in a
shadow schema in that same transaction and swapped in as its last statement, so readers see either the previous
tables or the new ones, never a half-built state. The swap needs ACCESS EXCLUSIVE locks that wait behind any reader's
ACCESS SHARE lock, and every new reader queues behind a waiting swap: so each attempt waits only a short
lock_timeout, inside a savepoint that is rolled back on timeout (the built tables stay), and is retried
with backoff for a bounded time, then fails naming the blocking sessions (docs/reconciliation.md).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import psycopg
import tenacity
from psycopg import sql

from returns_recon.errors import NotRetryable
from returns_recon.reconcile import detect, publish, queue
from returns_recon.reconcile.models import MODELS
from returns_recon.reconcile.sql import Statement, load
from returns_recon.settings import PUBLISH_RETRY_MAX_PAUSE_SECONDS, ReconSettings
from returns_recon.warehouse.rows import one_row

log = logging.getLogger(__name__)

RECONCILE_LOCK = 72_617_303


class AuditFailed(NotRetryable):
    """A published table failed its audit; the previous tables stay in place."""


class PublishBlocked(RuntimeError):
    """Other sessions kept the published tables locked for the whole retry window: nothing of the run is
    kept, the previous tables stay, and Airflow retries the task (the blockers may be gone by then)."""


# a lock the swap could not get in time (lock_timeout), or a deadlock with a reader locking tables in
# another order: either way the swap's savepoint is rolled back and the swap tried again
SWAP_CONFLICTS = (psycopg.errors.LockNotAvailable, psycopg.errors.DeadlockDetected)
SWAP_SAVEPOINT = "recon_swap"
REPORT_EVERY_SECONDS = 30  # while the swap retries, who blocks it is logged this often


@dataclass
class ReconResult:
    run_id: str
    mode: str
    returns_in_scope: int
    exceptions_found: int
    opened: int
    auto_resolved: int
    open_by_owner: dict[str, int]
    open_by_type: dict[str, int]

    def as_dict(self) -> dict:
        return asdict(self)


def _run(conn: psycopg.Connection, steps: list[tuple[sql.Composed, Statement | None]], params: dict) -> None:
    """Execute each statement with the values its file declares (none for the engine's own DDL)."""
    for statement, source in steps:
        started = time.perf_counter()
        conn.execute(statement, source.values(params) if source else None)
        log.debug("%.2f s  %s", time.perf_counter() - started, " ".join(statement.as_string(conn).split())[:90])


def _params(settings: ReconSettings, run_id: str, mode: str, scope: list[str] | None = None) -> dict:
    return {
        "run_id": run_id,
        "window_days": int(settings.recon_window_days),
        "tolerance": settings.money_tolerance,
        "release_sla": timedelta(hours=settings.release_sla_hours),
        "restock_sla": timedelta(hours=settings.restock_sla_hours),
        "match_field": settings.sale_match_field,
        # None: every return (the batch runs); the models' scope conditions fold away
        "scope": scope,
    }


def reconcile(
    conn: psycopg.Connection,
    run_id: str,
    settings: ReconSettings,
    mode: Literal["hourly", "daily", "events"] = "daily",
    scope: Sequence[str] | None = None,
) -> ReconResult:
    """Reconcile every return of the window (``scope`` None), or only the returns ``scope`` names (with the other
    returns of their orders): then the queue is merged and those returns' exceptions resolved, nothing else, and
    the published tables are left to the batch runs. Run inside a caller's transaction, it is a savepoint of it."""
    started = datetime.now(UTC)
    with conn.transaction():
        # the hourly, daily and events DAGs may overlap: one reconciliation at a time
        conn.execute("SELECT pg_advisory_xact_lock(%(lock)s)", {"lock": RECONCILE_LOCK})
        params = _params(settings, run_id, mode, None if scope is None else widen_scope(conn, scope))
        conn.execute("SET LOCAL work_mem = '256MB'")
        conn.execute("SET LOCAL maintenance_work_mem = '512MB'")  # the published tables' keys
        # the models are big joins and aggregates: let PostgreSQL hand them to parallel workers
        conn.execute("SET LOCAL parallel_setup_cost = 10")
        conn.execute("SET LOCAL parallel_tuple_cost = 0.001")
        # the models live in a schema of this transaction only (rolled back with it on failure)
        search_path = one_row(conn.execute("SELECT current_setting('search_path')"))[0]
        conn.execute("CREATE SCHEMA recon_work")
        conn.execute("SET LOCAL search_path = recon_work")
        for model in (*MODELS, detect.FOUND):
            _run(conn, model.statements(), params)
        started_merge = time.perf_counter()
        merged = conn.execute(queue.MERGE, {"run_id": run_id}).fetchall()
        resolved = conn.execute(queue.AUTO_RESOLVE, {"run_id": run_id, "scope": params["scope"]}).rowcount
        log.debug("%.2f s  exception queue merged", time.perf_counter() - started_merge)
        if scope is None:
            _build(conn)
        in_scope = one_row(conn.execute("SELECT count(*) FROM int_returns"))[0]
        found = one_row(conn.execute("SELECT count(*) FROM found"))[0]
        opened = sum(1 for inserted, _ in merged if inserted)
        counts = {"returns_in_scope": in_scope, "exceptions_found": found, "opened": opened, "auto_resolved": resolved}
        conn.execute(load("engine/record_run").text, {"run_id": run_id, "mode": mode, "started_at": started, **counts})
        conn.execute("DROP SCHEMA recon_work CASCADE")
        conn.execute("SELECT set_config('search_path', %(search_path)s, true)", {"search_path": search_path})
        # last, so the published tables are locked only from the swap to the commit
        if scope is None:
            _swap(conn, settings)
    by_owner: dict[str, int] = dict(conn.execute(load("engine/open_by_owner").text).fetchall())
    by_type: dict[str, int] = dict(conn.execute(load("engine/open_by_type").text).fetchall())
    result = ReconResult(run_id, mode, in_scope, found, opened, resolved, by_owner, by_type)
    log.info("reconciliation %s", result.as_dict())
    return result


def widen_scope(conn: psycopg.Connection, scope: Sequence[str]) -> list[str]:
    """The returns asked for and the other returns of their orders (``engine/scope.sql``), sorted."""
    return list(one_row(conn.execute(load("engine/scope").text, {"scope": list(scope)}))[0])


def _build(conn: psycopg.Connection) -> None:
    """Write, comment and audit the published tables, and the views over them, in the shadow schema
    recon_build (readers cannot see it)."""
    conn.execute("DROP SCHEMA IF EXISTS recon_build CASCADE")
    conn.execute("CREATE SCHEMA recon_build")
    for relation in (*publish.BUILD, *publish.VIEW_BUILD):
        _run(conn, relation.statements("recon_build"), {})
    conn.execute(publish.comment_statements("recon_build"))
    failures = []
    for name, audit in publish.AUDITS.items():
        ok, detail = one_row(conn.execute(load(audit).text, {}))
        if not ok:
            failures.append(f"{name} ({detail})")
    if failures:
        raise AuditFailed("published tables failed their audit, previous tables kept: " + "; ".join(failures))


def _swap_script(conn: psycopg.Connection, settings: ReconSettings) -> str:
    """The swap as one round trip: a savepoint, the attempt's lock_timeout (SET LOCAL: undone with the
    savepoint, gone at commit), the previous views dropped (they read the previous tables), the tables and
    then the views (which read the new tables, comments and all) moved from recon_build into recon, the
    savepoint released."""
    lock_timeout_ms = max(1, round(settings.publish_lock_timeout_seconds * 1000))
    steps: list[sql.Composable] = [
        sql.SQL("SAVEPOINT {}").format(sql.Identifier(SWAP_SAVEPOINT)),
        sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(lock_timeout_ms)),
    ]
    steps += [sql.SQL("DROP VIEW IF EXISTS recon.{}").format(sql.Identifier(v)) for v in reversed(publish.VIEWS)]
    for table in publish.TABLES:
        name = sql.Identifier(table)
        steps += [
            sql.SQL("DROP TABLE IF EXISTS recon.{}").format(name),
            sql.SQL("ALTER TABLE recon_build.{} SET SCHEMA recon").format(name),
            sql.SQL("GRANT SELECT ON recon.{} TO recon_reader").format(name),
        ]
    for view in publish.VIEWS:
        name = sql.Identifier(view)
        steps += [
            sql.SQL("ALTER VIEW recon_build.{} SET SCHEMA recon").format(name),
            sql.SQL("GRANT SELECT ON recon.{} TO recon_reader").format(name),
        ]
    steps += [
        sql.SQL("DROP SCHEMA recon_build"),
        sql.SQL("RELEASE SAVEPOINT {}").format(sql.Identifier(SWAP_SAVEPOINT)),
    ]
    return sql.SQL(";\n").join(steps).as_string(conn)  # no parameters: one simple query, several statements


def _swap(conn: psycopg.Connection, settings: ReconSettings) -> None:
    """Swap the built tables into recon, retrying while other sessions hold locks on the published ones."""
    script = _swap_script(conn, settings)
    undo = sql.SQL("ROLLBACK TO SAVEPOINT {0}; RELEASE SAVEPOINT {0}").format(sql.Identifier(SWAP_SAVEPOINT))
    last_report = [float("-inf")]

    def attempt() -> None:
        try:
            conn.execute(script)
        except SWAP_CONFLICTS:
            conn.execute(undo)  # the attempt's locks are released, the built tables stay
            raise

    def waiting(state: tenacity.RetryCallState) -> None:
        if time.monotonic() - last_report[0] < REPORT_EVERY_SECONDS:
            return
        last_report[0] = time.monotonic()
        log.warning(
            "publishing waits for locks on the published tables (attempt %d, %.0f s so far, gives up after %g s): %s",
            state.attempt_number,
            state.seconds_since_start,
            settings.publish_lock_wait_seconds,
            "; ".join(describe_blockers(conn)) or "no session holds one now",
        )

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(SWAP_CONFLICTS),
        stop=tenacity.stop_after_delay(settings.publish_lock_wait_seconds),
        wait=tenacity.wait_exponential_jitter(initial=0.25, max=PUBLISH_RETRY_MAX_PAUSE_SECONDS, jitter=0.25),
        before_sleep=waiting,
        reraise=True,
    )
    started = time.monotonic()
    try:
        retrying(attempt)
    except SWAP_CONFLICTS as err:
        blockers = describe_blockers(conn)
        raise PublishBlocked(
            f"publishing gave up after {time.monotonic() - started:.0f} s (RECON_PUBLISH_LOCK_WAIT_SECONDS) of "
            "waiting for locks on the published tables; nothing of this run is kept, the previous tables stay "
            "published. Blocking sessions: "
            + ("; ".join(blockers) or "none left (they ended right after the last attempt)")
            + ". End their transactions (COMMIT or ROLLBACK in that session, or SELECT pg_terminate_backend(<pid>) "
            "as a superuser or a role with that user's privileges), then let Airflow retry the task "
            "(docs/operations.md)"
        ) from err
    log.debug("%.2f s  published tables swapped in", time.monotonic() - started)


def describe_blockers(conn: psycopg.Connection) -> list[str]:
    """Who holds (or waits for) a lock on a published table: pid, user, state and since when, the
    application and the locks; never the query text. A session of another user shows its state only when
    the pipeline's login has its privileges (migration 0011 grants those of recon_reader)."""
    sessions: dict[int, tuple[str, list[str]]] = {}
    for pid, user, state, state_change, xact_start, app, granted, mode, table in conn.execute(
        load("engine/blockers").text, {"tables": list(publish.PUBLISHED)}
    ):
        if state is not None and xact_start is None:
            continue  # its transaction ended between the two snapshots (pg_locks, pg_stat_activity)
        if pid not in sessions:
            if state is None:
                status = "state not visible to this login (it needs pg_read_all_stats or that user's privileges)"
            else:
                status = f"{state} since {_when(state_change)}, transaction open since {_when(xact_start)}"
            sessions[pid] = (f"pid {pid} (user {user}, {status}, application {app or '-'!r}", [])
        sessions[pid][1].append(f"{'holds' if granted else 'waits for'} {mode} on recon.{table}")
    return [f"{head}: {', '.join(locks)})" for head, locks in sessions.values()]


def _when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "-"


# the action a person's change is recorded as (recon.exception_events.action, as the workbench records it)
PERSON_ACTIONS = {"acknowledged": "acknowledge", "resolved": "resolve", "open": "reopen"}


def set_state(conn: psycopg.Connection, key: str, state: str, by: str, note: str | None = None) -> bool:
    """A person acknowledges, resolves or re-opens an exception; later runs keep that decision. Every call is
    kept in recon.exception_events (append-only), written in the same transaction by the queue's trigger,
    which takes the person and the note from the transaction's settings (migration 0017)."""
    if state not in {"acknowledged", "resolved", "open"}:
        raise ValueError("state must be acknowledged, resolved or open")
    by = (by or "").strip()
    if not by:
        raise ValueError("say who decided: a name or email, not empty")
    with conn.transaction():
        conn.execute(
            "SELECT set_config('recon.changed_by', %(by)s, true), set_config('recon.change_note', %(note)s, true),"
            " set_config('recon.change_action', %(action)s, true)",
            {"by": by, "note": note or "", "action": PERSON_ACTIONS[state]},
        )
        row = conn.execute(queue.SET_STATE, {"state": state, "by": by, "note": note, "key": key}).fetchone()
    return row is not None
