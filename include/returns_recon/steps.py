"""The body of every DAG task, as a plain function with explicit inputs (a warehouse connection, API
clients, the run id, settings, mode, paths). The tasks in ``returns_recon.orchestration.tasks`` only turn
Airflow's connections, context and Params into these inputs and call one of these; the integration tests
chain the same functions in the DAG's order (``tests/fixtures/pipeline.py``). Nothing here imports Airflow.

Each returns what its task returns (the task's XCom), except ``post_corrections``, which returns the
executor's report (its task returns ``report.as_dict()``). Heavy modules (Great Expectations) are
imported inside the functions, so a task imports only what it runs."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg

    from returns_recon.connections import ConnectionLike, ConnectionSpec
    from returns_recon.extract.entities import ExtractSummary, Mode
    from returns_recon.extract.run import Clients
    from returns_recon.notify.digest import Sender
    from returns_recon.postings.execute import ExecutionReport
    from returns_recon.settings import ReconSettings

log = logging.getLogger(__name__)


def check_connections(
    lookup: Callable[[str], ConnectionLike | None], specs: Sequence[ConnectionSpec] | None = None
) -> None:
    """Fail fast, naming each missing or malformed connection and the variable to set (``specs``: the merchant's
    connections; default every connection of the single merchant, ``ALL_CONNECTIONS``)."""
    from returns_recon.connections import ALL_CONNECTIONS
    from returns_recon.connections import check_connections as check

    specs = ALL_CONNECTIONS if specs is None else specs
    check(specs, lookup)
    log.info("all %d connections are present and well formed", len(specs))


def migrate_warehouse(conn: psycopg.Connection, reader_role: str | None = None) -> list[str]:
    """Apply pending warehouse migrations (idempotent, serialised by an advisory lock); with ``reader_role`` (a
    merchants file's merchant), make it the database's only reader (``warehouse.roles``)."""
    from returns_recon.warehouse.migrate import apply_migrations

    applied = apply_migrations(conn, reader_role=reader_role)
    log.info("migrations applied now: %s", applied or "none, already up to date")
    return applied


def probe_apis(clients: Clients) -> dict[str, str]:
    """One cheap authenticated call per API: unreachable or refused credentials fail here, clearly."""
    from returns_recon.extract.probe import probe

    result = probe(clients)
    log.info("APIs reachable: %s", result)
    return result


def load_location_map(conn: psycopg.Connection, path: Path, run_id: str, docs_dir: Path | None) -> dict[str, object]:
    """Check and load the merchant's location map CSV (``returns_recon.location_map``)."""
    from returns_recon.location_map import load_location_map as load

    result = load(conn, path, run_id, docs_dir)
    log.info("location map %s: %s", path, result)
    return result


def _logged(summaries: list[ExtractSummary]) -> list[dict[str, Any]]:
    rows = [s.as_dict() for s in summaries]
    for row in rows:
        log.info(
            "%(source)s.%(entity)s: fetched %(fetched)s, changed %(changed)s, quarantined %(quarantined)s, "
            "API calls %(api_calls)s (window from %(window_from)s)",
            row,
        )
    return rows


def _reference(conn: psycopg.Connection, mode: Mode) -> bool:
    """Reference data is extracted daily, or whenever some of it has never been loaded."""
    from returns_recon.extract import entities

    return mode == "daily" or not entities.reference_loaded(conn)


def extract_reveni(
    conn: psycopg.Connection, clients: Clients, run_id: str, mode: Mode, settings: ReconSettings
) -> list[dict[str, Any]]:
    """Returns updated since the watermark (less the overlap window), keyset-paged; without a list endpoint
    (``clients.reveni_list_endpoint``), the returns not yet final and those the webhooks named, by id."""
    from returns_recon.extract import run

    return _logged(run.extract_reveni(conn, clients, run_id, mode, settings))


def extract_cin7(
    conn: psycopg.Connection, clients: Clients, run_id: str, mode: Mode, settings: ReconSettings
) -> list[dict[str, Any]]:
    """Reference data (daily, or when never loaded), the sale list, return-related sale details, transfers."""
    from returns_recon.extract import run

    return _logged(run.extract_cin7(conn, clients, run_id, mode, settings, _reference(conn, mode)))


def extract_sitoo(
    conn: psycopg.Connection, clients: Clients, run_id: str, mode: Mode, settings: ReconSettings
) -> list[dict[str, Any]]:
    """Reference data (daily, or when never loaded), refund orders and warehouse transactions by id."""
    from returns_recon.extract import run

    return _logged(run.extract_sitoo(conn, clients, run_id, mode, settings, _reference(conn, mode)))


def data_quality(
    conn: psycopg.Connection, warehouse_url: str, run_id: str, settings: ReconSettings, docs_dir: Path | None
) -> dict[str, Any]:
    """Great Expectations suites over staging: critical failures stop the run (``DataQualityFailed``)."""
    from returns_recon.quality.check import check_warehouse
    from returns_recon.quality.runner import enforce

    report = check_warehouse(conn, warehouse_url, run_id, settings, docs_dir)
    log.info("%s", report.summary())
    enforce(report)
    return {
        "expectations": len(report.outcomes),
        "critical_failures": len(report.critical_failures),
        "warnings": len(report.warnings),
        "data_docs": str(report.docs_index),
    }


def reconcile_and_publish(conn: psycopg.Connection, run_id: str, settings: ReconSettings, mode: Mode) -> dict[str, Any]:
    """Compare what Reveni says with Cin7 Core and Sitoo, update the exception queue, publish the tables."""
    from returns_recon.reconcile.engine import reconcile

    result = reconcile(conn, run_id, settings, mode)
    log.info(
        "reconciled %d returns: %d exceptions found (%d new, %d auto-resolved); open by owner %s; by type %s",
        result.returns_in_scope,
        result.exceptions_found,
        result.opened,
        result.auto_resolved,
        result.open_by_owner,
        result.open_by_type,
    )
    return result.as_dict()


def post_corrections(
    conn: psycopg.Connection, clients: Clients, run_id: str, settings: ReconSettings
) -> ExecutionReport:
    """Refuse unless this run's data-quality checks passed; plan the corrective postings for open
    auto-fixable exceptions and send them, exactly once."""
    from returns_recon.postings.execute import execute, quality_gate
    from returns_recon.postings.plan import plan

    quality_gate(conn, run_id)
    planned = plan(conn, run_id, settings)
    report = execute(conn, clients, run_id, settings)
    log.info("postings planned %d; %s", len(planned), report.as_dict())
    return report


def read_events(conn: psycopg.Connection, clients: Clients, run_id: str, settings: ReconSettings) -> dict[str, Any]:
    """The events DAG: read again what the pending webhook events name (Reveni returns by id, the Cin7 Core
    sales of returns) and load it; which inbox rows were read goes to ``reconcile_events``."""
    from returns_recon.events import read_changed

    result = read_changed(conn, clients, run_id, settings)
    log.info(
        "%d pending events read: %d returns and %d sales read again",
        len(result["inbox_ids"]),
        result["returns"],
        result["sales"],
    )
    return result


def reconcile_events(
    conn: psycopg.Connection, run_id: str, settings: ReconSettings, inbox_ids: list[int]
) -> dict[str, Any]:
    """The events DAG: reconcile only the returns the events read concern (the same rules and exception keys as
    the batch runs; the published tables are left to them) and mark those events processed, in one transaction."""
    from returns_recon.events import reconcile_claimed

    return reconcile_claimed(conn, run_id, settings, inbox_ids)


def post_event_corrections(
    conn: psycopg.Connection, clients: Clients, run_id: str, settings: ReconSettings, return_ids: list[str]
) -> dict[str, Any]:
    """The events DAG: refuse unless this run's data-quality checks passed; plan and send the corrective postings
    of the returns just reconciled under the same safety valves; another run posting leaves them to the next."""
    from returns_recon.events import post

    outcome = post(conn, clients, run_id, settings, return_ids)
    log.info("postings for %d returns: %s", len(return_ids), outcome)
    return outcome


def golive_check(
    conn: psycopg.Connection,
    clients: Clients,
    settings: ReconSettings,
    run_id: str,
    cin7_extra: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The read-only go-live check (docs/golive.md), paced as the Cin7 Core connection's extra says; fails
    (``GoliveCheckFailed``) when a blocking check failed."""
    from returns_recon.golive import cin7_pace, enforce, run_golive_check

    report = run_golive_check(conn, clients, settings, run_id, cin7_calls_per_minute=cin7_pace(cin7_extra))
    for line in report.render().splitlines():
        log.info("%s", line)
    enforce(report)
    return report.as_dict()


def send_exception_emails(
    conn: psycopg.Connection, send: Sender, from_email: str, mail_date: date, run_id: str, settings: ReconSettings
) -> dict[str, str]:
    """One email per owner with new and still-open exceptions; nothing twice for the same day. Each exception line
    links to its page in the workbench: ``RECON_WORKBENCH_URL``, else Airflow's ``[api] base_url`` as configured
    when the task runs (``workbench/links.py``), else no links."""
    from returns_recon.notify.digest import send_digests
    from returns_recon.workbench.links import workbench_base

    base = workbench_base(settings.workbench_url)
    log.info("exception mails link to %s", f"the workbench at {base}" if base else "nothing (no workbench URL)")
    outcome = send_digests(
        conn,
        send,
        mail_date,
        settings.email_recipients,
        from_email,
        run_id,
        settings.finance_all_clear_weekday,
        workbench_url=base,
        merchant=(settings.merchant_id, settings.merchant_name),
    )
    for owner, what in outcome.items():
        log.info("%s: %s", owner, what)
    return outcome
