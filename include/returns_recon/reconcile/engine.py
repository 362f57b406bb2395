"""Run one reconciliation: models, detection, queue merge, publication (write, audit, publish).

Everything up to the queue merge happens in one transaction; the published tables are built in a
shadow schema in that same transaction and swapped in before it commits, so readers see either
the previous tables or the new ones, never a half-built state.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import psycopg
from psycopg import sql

from returns_recon.errors import NotRetryable
from returns_recon.reconcile import detect, publish, queue
from returns_recon.reconcile.models import MODELS
from returns_recon.settings import ReconSettings

log = logging.getLogger(__name__)

MATCH_COLUMNS = {"CustomerReference": "customer_reference", "ExternalID": "external_id",
                 "OrderNumber": "order_number"}  # fmt: skip


RECONCILE_LOCK = 72_617_303
OPEN_BY_OWNER = "SELECT owner, count(*) FROM recon.exceptions WHERE state IN ('open', 'acknowledged') GROUP BY 1"
OPEN_BY_TYPE = (
    "SELECT exception_type, count(*) FROM recon.exceptions WHERE state IN ('open', 'acknowledged') GROUP BY 1"
)


class AuditFailed(NotRetryable):
    """A published table failed its audit; the previous tables stay in place."""


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


def statements(script: str) -> list[str]:
    """A script's statements (each ends with a semicolon at the end of a line)."""
    return [part.strip() for part in script.split(";\n") if part.strip().rstrip(";")]


def _run(conn: psycopg.Connection, script: str | sql.Composable, params: dict) -> None:
    text = script if isinstance(script, str) else script.as_string(conn)
    for statement in statements(text):
        started = time.perf_counter()
        conn.execute(statement, params)  # always bound, so %% in the SQL always means a literal %
        log.debug("%.2f s  %s", time.perf_counter() - started, " ".join(statement.split())[:90])


def _params(settings: ReconSettings, run_id: str, mode: str) -> dict:
    return {
        "run_id": run_id,
        "window_days": int(settings.recon_window_days),
        "tolerance": settings.money_tolerance,
        "release_sla": timedelta(hours=settings.release_sla_hours),
        "restock_sla": timedelta(hours=settings.restock_sla_hours),
        "match_field": settings.sale_match_field,
    }


def reconcile(
    conn: psycopg.Connection, run_id: str, settings: ReconSettings, mode: Literal["hourly", "daily"] = "daily"
) -> ReconResult:
    started = datetime.now(UTC)
    params = _params(settings, run_id, mode)
    match_column = sql.Identifier(MATCH_COLUMNS[settings.sale_match_field])
    with conn.transaction():
        # the hourly and daily DAGs may overlap: one reconciliation at a time
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (RECONCILE_LOCK,))
        conn.execute("SET LOCAL work_mem = '256MB'")
        conn.execute("SET LOCAL maintenance_work_mem = '512MB'")  # the published tables' keys
        # the models are big joins and aggregates: let PostgreSQL hand them to parallel workers
        conn.execute("SET LOCAL parallel_setup_cost = 10")
        conn.execute("SET LOCAL parallel_tuple_cost = 0.001")
        # the models live in a schema of this transaction only (rolled back with it on failure)
        search_path = conn.execute("SELECT current_setting('search_path')").fetchone()[0]
        conn.execute("CREATE SCHEMA recon_work")
        conn.execute("SET LOCAL search_path = recon_work")
        for script in MODELS:
            _run(conn, sql.SQL(script).format(match_column=match_column), params)
        _run(conn, detect.FOUND, params)
        started_merge = time.perf_counter()
        merged = conn.execute(queue.MERGE, params).fetchall()
        resolved = conn.execute(queue.AUTO_RESOLVE, params).rowcount
        log.debug("%.2f s  exception queue merged", time.perf_counter() - started_merge)
        _publish(conn, params)
        in_scope = conn.execute("SELECT count(*) FROM int_returns").fetchone()[0]
        found = conn.execute("SELECT count(*) FROM found").fetchone()[0]
        opened = sum(1 for inserted, _ in merged if inserted)
        conn.execute(
            """INSERT INTO recon.recon_runs (run_id, mode, started_at, returns_in_scope, exceptions_found, opened,
                                            auto_resolved)
               VALUES (%s, %s, %s, %s, %s, %s, %s)
               ON CONFLICT (run_id) DO UPDATE SET finished_at = now(), returns_in_scope = EXCLUDED.returns_in_scope,
                 exceptions_found = EXCLUDED.exceptions_found, opened = EXCLUDED.opened,
                 auto_resolved = EXCLUDED.auto_resolved""",
            (run_id, mode, started, in_scope, found, opened, resolved),
        )
        conn.execute("DROP SCHEMA recon_work CASCADE")
        conn.execute("SELECT set_config('search_path', %s, true)", (search_path,))
    by_owner = dict(conn.execute(OPEN_BY_OWNER).fetchall())
    by_type = dict(conn.execute(OPEN_BY_TYPE).fetchall())
    result = ReconResult(run_id, mode, in_scope, found, opened, resolved, by_owner, by_type)
    log.info("reconciliation %s", result.as_dict())
    return result


def _publish(conn: psycopg.Connection, params: dict) -> None:
    conn.execute("DROP SCHEMA IF EXISTS recon_build CASCADE")
    conn.execute("CREATE SCHEMA recon_build")
    for script in publish.BUILD:
        _run(conn, script, params)
    failures = []
    for name, query in publish.AUDITS.items():
        ok, detail = conn.execute(query).fetchone()
        if not ok:
            failures.append(f"{name} ({detail})")
    if failures:
        raise AuditFailed("published tables failed their audit, previous tables kept: " + "; ".join(failures))
    for table in publish.TABLES:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS recon.{}").format(sql.Identifier(table)))
        conn.execute(sql.SQL("ALTER TABLE recon_build.{} SET SCHEMA recon").format(sql.Identifier(table)))
        conn.execute(sql.SQL("GRANT SELECT ON recon.{} TO recon_reader").format(sql.Identifier(table)))
    conn.execute("DROP SCHEMA recon_build")


def set_state(conn: psycopg.Connection, key: str, state: str, by: str, note: str | None = None) -> bool:
    """A human acknowledges or resolves an exception; later runs keep that decision."""
    if state not in {"acknowledged", "resolved", "open"}:
        raise ValueError("state must be acknowledged, resolved or open")
    with conn.transaction():
        row = conn.execute(queue.SET_STATE, {"state": state, "by": by, "note": note, "key": key}).fetchone()
    return row is not None
