"""TaskFlow wrappers shared by the DAGs: each is a few lines that resolve Airflow inputs
(connections, context, params) and call a plain function of the package."""

from __future__ import annotations

import logging

from airflow.sdk import get_current_context, task

from returns_recon.orchestration import assets
from returns_recon.orchestration.defaults import CIN7_POOL, REVENI_POOL, SITOO_POOL

log = logging.getLogger(__name__)


def _run_id() -> str:
    return str(get_current_context()["run_id"])


def _settings():  # -> ReconSettings (imported at run time, not at parse time)
    """The deployment's settings with this run's Params (the trigger form: dry run, trailing days) applied."""
    from returns_recon.settings import load_settings, with_run_params

    return with_run_params(load_settings(), get_current_context().get("params"))


@task
def check_connections() -> None:
    """Fail fast, naming each missing or malformed connection and the variable to set."""
    from returns_recon.connections import ALL_CONNECTIONS
    from returns_recon.orchestration.connections import require_connections

    require_connections(ALL_CONNECTIONS)
    log.info("all %d connections are present and well formed", len(ALL_CONNECTIONS))


@task
def migrate_warehouse() -> list[str]:
    """Apply pending warehouse migrations (idempotent, serialised by an advisory lock)."""
    from returns_recon.orchestration.connections import warehouse_connection
    from returns_recon.warehouse.migrate import apply_migrations

    with warehouse_connection() as conn:
        applied = apply_migrations(conn)
    log.info("migrations applied now: %s", applied or "none, already up to date")
    return applied


@task
def probe_apis() -> dict[str, str]:
    """One cheap authenticated call per API: unreachable or refused credentials fail here, clearly."""
    from returns_recon.extract.probe import probe
    from returns_recon.orchestration.connections import api_clients

    result = probe(api_clients())
    log.info("APIs reachable: %s", result)
    return result


@task(outlets=[assets.LOCATION_MAP])
def load_location_map() -> dict:
    from returns_recon.location_map import load_location_map as load
    from returns_recon.orchestration.connections import warehouse_connection

    settings = _settings()
    with warehouse_connection() as conn:
        result = load(conn, settings.location_map_path, _run_id(), settings.data_docs_dir)
    log.info("location map %s: %s", settings.location_map_path, result)
    return result


def _extract(system: str, mode: str, reference: bool | None = None) -> list[dict]:
    from returns_recon.extract import entities, run
    from returns_recon.orchestration.connections import api_clients, warehouse_connection, warehouse_dsn

    settings = _settings()
    clients = api_clients(warehouse_dsn())
    with warehouse_connection() as conn:
        if reference is None:
            reference = mode == "daily" or not entities.reference_loaded(conn)
        if system == "reveni":
            summaries = run.extract_reveni(conn, clients, _run_id(), mode, settings)
        elif system == "cin7":
            summaries = run.extract_cin7(conn, clients, _run_id(), mode, settings, reference)
        else:
            summaries = run.extract_sitoo(conn, clients, _run_id(), mode, settings, reference)
    rows = [s.as_dict() for s in summaries]
    for row in rows:
        log.info(
            "%(source)s.%(entity)s: fetched %(fetched)s, changed %(changed)s, quarantined %(quarantined)s, "
            "API calls %(api_calls)s (window from %(window_from)s)",
            row,
        )
    return rows


@task(outlets=assets.REVENI_STAGING, pool=REVENI_POOL)
def extract_reveni(mode: str) -> list[dict]:
    """Returns updated since the watermark (less the overlap window), keyset-paged."""
    return _extract("reveni", mode)


@task(outlets=[*assets.CIN7_STAGING, *assets.CIN7_REFERENCE], pool=CIN7_POOL)
def extract_cin7(mode: str) -> list[dict]:
    """Reference data (daily, or when never loaded), the sale list, return-related sale details, transfers."""
    return _extract("cin7", mode)


@task(outlets=[*assets.SITOO_STAGING, *assets.SITOO_REFERENCE], pool=SITOO_POOL)
def extract_sitoo(mode: str) -> list[dict]:
    """Reference data (daily, or when never loaded), refund orders and warehouse transactions by id."""
    return _extract("sitoo", mode)


@task
def data_quality() -> dict:
    """Great Expectations suites over staging: critical failures stop the run (nothing posts)."""
    from returns_recon.orchestration.connections import warehouse_connection, warehouse_sqlalchemy_url
    from returns_recon.quality.check import check_warehouse
    from returns_recon.quality.runner import enforce

    settings = _settings()
    with warehouse_connection() as conn:
        report = check_warehouse(conn, warehouse_sqlalchemy_url(), _run_id(), settings, settings.data_docs_dir)
    log.info("%s", report.summary())
    enforce(report)
    return {
        "expectations": len(report.outcomes),
        "critical_failures": len(report.critical_failures),
        "warnings": len(report.warnings),
        "data_docs": str(report.docs_index),
    }


@task(outlets=assets.RECON_PUBLISHED)
def reconcile_and_publish(mode: str) -> dict:
    """Compare what Reveni says with Cin7 Core and Sitoo, update the exception queue, publish the tables."""
    from returns_recon.orchestration.connections import warehouse_connection
    from returns_recon.reconcile.engine import reconcile

    with warehouse_connection() as conn:
        result = reconcile(conn, _run_id(), _settings(), mode)
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


@task(pool=CIN7_POOL)
def post_corrections() -> dict:
    """Plan the corrective postings for open auto-fixable exceptions and send them, exactly once.

    Refuses to post unless this run's data-quality checks passed."""
    from returns_recon.orchestration.connections import api_clients, warehouse_connection, warehouse_dsn
    from returns_recon.postings.execute import execute, quality_gate
    from returns_recon.postings.plan import plan

    settings = _settings()
    with warehouse_connection() as conn:
        quality_gate(conn, _run_id())
        planned = plan(conn, _run_id(), settings)
        report = execute(conn, api_clients(warehouse_dsn()), _run_id(), settings)
    log.info("postings planned %d; %s", len(planned), report.as_dict())
    return report.as_dict()


@task(pool=CIN7_POOL)
def golive_check() -> dict:
    """The read-only go-live check (docs/golive.md): one question per undocumented assumption, stored in
    recon.golive_checks. Fails, without retry, when a blocking check fails: that system's postings stay held."""
    from returns_recon.golive import cin7_pace, enforce, run_golive_check
    from returns_recon.orchestration.connections import (
        api_clients,
        lookup_connection,
        warehouse_connection,
        warehouse_dsn,
    )
    from returns_recon.settings import load_settings

    cin7 = lookup_connection("cin7_core_default")
    with warehouse_connection() as conn:
        report = run_golive_check(
            conn,
            api_clients(warehouse_dsn()),
            load_settings(),
            _run_id(),
            cin7_calls_per_minute=cin7_pace(cin7.extra_dejson if cin7 else None),
        )
    for line in report.render().splitlines():
        log.info("%s", line)
    enforce(report)
    return report.as_dict()


def _digest_failed(context: dict) -> None:
    """After the last retry: a digest SMTP did not take goes to the fallback alert channel."""
    from returns_recon.orchestration.alerts import digest_failure_alert

    digest_failure_alert(context)


@task(on_failure_callback=_digest_failed)
def send_exception_emails() -> dict:
    """One email per owner with new and still-open exceptions; nothing twice for the same day. When SMTP
    is down or refuses, the task fails naming the server and the error (``DigestNotSent``); a later run
    sends what was not sent, once."""
    from returns_recon.notify.digest import send_digests, smtp_sender
    from returns_recon.orchestration.connections import warehouse_connection

    settings = _settings()
    context = get_current_context()
    mail_date = context["logical_date"].date() if context.get("logical_date") else context["run_after"].date()
    send, from_email = smtp_sender()
    with warehouse_connection() as conn:
        outcome = send_digests(
            conn, send, mail_date, settings.email_recipients, from_email, _run_id(), settings.finance_all_clear_weekday
        )
    for owner, what in outcome.items():
        log.info("%s: %s", owner, what)
    return outcome
