"""TaskFlow wrappers shared by the DAGs: each resolves Airflow inputs (the run id from the context, the
settings with the run's Params, connections through ``orchestration.connections``) and calls the plain
function of ``returns_recon.steps`` that does the work and logs it. No logic here (tests/unit/test_task_wrappers.py):
the integration tests run the same steps."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from airflow.sdk import get_current_context, task

from returns_recon.orchestration import assets
from returns_recon.orchestration.defaults import CIN7_POOL, REVENI_POOL, SITOO_POOL

if TYPE_CHECKING:  # not imported at DAG-parse time
    from returns_recon.extract.entities import Mode


def _run_id() -> str:
    return str(get_current_context()["run_id"])


def _settings():  # -> ReconSettings (imported at run time, not at parse time)
    """The deployment's settings (with the merchant's overrides, from a merchants file) and this run's Params (the
    trigger form: dry run, trailing days) applied."""
    from returns_recon.orchestration.merchant import merchant_settings
    from returns_recon.settings import load_settings, with_run_params

    return with_run_params(merchant_settings(load_settings()), get_current_context().get("params"))


def _mail_date() -> date:
    """The day the run's mails are for: its logical date (a manual run has none: when it was triggered)."""
    context = get_current_context()
    # the context has no run_after of its own (a KeyError): the run's, from its dag_run
    return context["logical_date"].date() if context.get("logical_date") else context["dag_run"].run_after.date()


@task
def check_connections() -> None:
    """Fail fast, naming each missing or malformed connection and the variable to set."""
    from returns_recon import steps
    from returns_recon.orchestration.connections import lookup_connection
    from returns_recon.orchestration.merchant import required_specs

    steps.check_connections(lookup_connection, required_specs())


@task
def migrate_warehouse() -> list[str]:
    """Apply pending warehouse migrations (idempotent, serialised by an advisory lock)."""
    from returns_recon import steps
    from returns_recon.orchestration.connections import warehouse_connection
    from returns_recon.orchestration.merchant import reader_role

    with warehouse_connection() as conn:
        return steps.migrate_warehouse(conn, reader_role())


@task
def probe_apis() -> dict[str, str]:
    """One cheap authenticated call per API: unreachable or refused credentials fail here, clearly."""
    from returns_recon import steps
    from returns_recon.orchestration.connections import api_clients

    return steps.probe_apis(api_clients())


@task(outlets=[assets.LOCATION_MAP])
def load_location_map() -> dict:
    """Check and load the merchant's location map (RECON_LOCATION_MAP_PATH)."""
    from returns_recon import steps
    from returns_recon.orchestration.connections import warehouse_connection

    settings = _settings()
    with warehouse_connection() as conn:
        return steps.load_location_map(conn, settings.location_map_path, _run_id(), settings.data_docs_dir)


@task(outlets=assets.REVENI_STAGING, pool=REVENI_POOL)
def extract_reveni(mode: Mode) -> list[dict]:
    """Returns updated since the watermark (less the overlap window), keyset-paged."""
    from returns_recon import steps
    from returns_recon.orchestration.connections import api_clients, warehouse_connection, warehouse_dsn

    settings, clients = _settings(), api_clients(warehouse_dsn())
    with warehouse_connection() as conn:
        return steps.extract_reveni(conn, clients, _run_id(), mode, settings)


@task(outlets=[*assets.CIN7_STAGING, *assets.CIN7_REFERENCE], pool=CIN7_POOL)
def extract_cin7(mode: Mode) -> list[dict]:
    """Reference data (daily, or when never loaded), the sale list, return-related sale details, transfers."""
    from returns_recon import steps
    from returns_recon.orchestration.connections import api_clients, warehouse_connection, warehouse_dsn

    settings, clients = _settings(), api_clients(warehouse_dsn())
    with warehouse_connection() as conn:
        return steps.extract_cin7(conn, clients, _run_id(), mode, settings)


@task(outlets=[*assets.SITOO_STAGING, *assets.SITOO_REFERENCE], pool=SITOO_POOL)
def extract_sitoo(mode: Mode) -> list[dict]:
    """Reference data (daily, or when never loaded), refund orders and warehouse transactions by id."""
    from returns_recon import steps
    from returns_recon.orchestration.connections import api_clients, warehouse_connection, warehouse_dsn

    settings, clients = _settings(), api_clients(warehouse_dsn())
    with warehouse_connection() as conn:
        return steps.extract_sitoo(conn, clients, _run_id(), mode, settings)


@task
def data_quality() -> dict:
    """Great Expectations suites over staging: critical failures stop the run (nothing posts)."""
    from returns_recon import steps
    from returns_recon.orchestration.connections import warehouse_connection, warehouse_sqlalchemy_url

    settings = _settings()
    with warehouse_connection() as conn:
        return steps.data_quality(conn, warehouse_sqlalchemy_url(), _run_id(), settings, settings.data_docs_dir)


@task(outlets=assets.RECON_PUBLISHED)
def reconcile_and_publish(mode: Mode) -> dict:
    """Compare what Reveni says with Cin7 Core and Sitoo, update the exception queue, publish the tables."""
    from returns_recon import steps
    from returns_recon.orchestration.connections import warehouse_connection

    with warehouse_connection() as conn:
        return steps.reconcile_and_publish(conn, _run_id(), _settings(), mode)


@task(pool=CIN7_POOL)
def post_corrections() -> dict:
    """Plan the corrective postings for open auto-fixable exceptions and send them, exactly once.

    Refuses to post unless this run's data-quality checks passed."""
    from returns_recon import steps
    from returns_recon.orchestration.connections import api_clients, warehouse_connection, warehouse_dsn

    settings, clients = _settings(), api_clients(warehouse_dsn())
    with warehouse_connection() as conn:
        return steps.post_corrections(conn, clients, _run_id(), settings).as_dict()


@task(outlets=[*assets.REVENI_STAGING, *assets.CIN7_STAGING], pool=REVENI_POOL)
def read_events() -> dict:
    """Read again what the pending webhook events name (Reveni returns by id, the Cin7 Core sales of returns)
    and load it; at most RECON_EVENTS_PER_RUN events (the rest go to the next run). Cin7 Core's calls are paced
    by its shared budget."""
    from returns_recon import steps
    from returns_recon.orchestration.connections import api_clients, warehouse_connection, warehouse_dsn

    settings, clients = _settings(), api_clients(warehouse_dsn())
    with warehouse_connection() as conn:
        return steps.read_events(conn, clients, _run_id(), settings)


@task(outlets=[assets.EXCEPTIONS])
def reconcile_events(events: dict) -> dict:
    """Reconcile only the returns those events concern, update the exception queue at once and mark the events
    processed (one transaction); the published tables are the batch runs'."""
    from returns_recon import steps
    from returns_recon.orchestration.connections import warehouse_connection

    with warehouse_connection() as conn:
        return steps.reconcile_events(conn, _run_id(), _settings(), events["inbox_ids"])


@task(pool=CIN7_POOL)
def post_event_corrections(reconciled: dict) -> dict:
    """The corrective postings of the returns just reconciled, as post_corrections sends them (quality gate, every
    safety valve); while another run is posting they wait in the outbox for the next run, and this task succeeds."""
    from returns_recon import steps
    from returns_recon.orchestration.connections import api_clients, warehouse_connection, warehouse_dsn

    settings, clients = _settings(), api_clients(warehouse_dsn())
    with warehouse_connection() as conn:
        return steps.post_event_corrections(conn, clients, _run_id(), settings, reconciled["returns"])


@task(pool=CIN7_POOL)
def golive_check() -> dict:
    """The read-only go-live check (docs/golive.md): one question per undocumented assumption, stored in
    recon.golive_checks. Fails, without retry, when a blocking check fails: that system's postings stay held."""
    from returns_recon import steps
    from returns_recon.orchestration.connections import (
        api_clients,
        connection_extra,
        warehouse_connection,
        warehouse_dsn,
    )
    from returns_recon.orchestration.merchant import current_ids

    cin7_extra = connection_extra(current_ids().cin7)
    with warehouse_connection() as conn:
        return steps.golive_check(conn, api_clients(warehouse_dsn()), _settings(), _run_id(), cin7_extra)


def _digest_failed(context: dict) -> None:
    """After the last retry: a digest SMTP did not take goes to the fallback alert channel."""
    from returns_recon.orchestration.alerts import digest_failure_alert

    digest_failure_alert(context)


@task(on_failure_callback=_digest_failed)
def send_exception_emails() -> dict:
    """One email per owner with new and still-open exceptions; nothing twice for the same day. When SMTP
    is down or refuses, the task fails naming the server and the error (``DigestNotSent``); a later run
    sends what was not sent, once."""
    from returns_recon import steps
    from returns_recon.notify.digest import smtp_sender
    from returns_recon.orchestration.connections import warehouse_connection
    from returns_recon.orchestration.merchant import current_ids

    settings, mail_date = _settings(), _mail_date()
    send, from_email = smtp_sender(current_ids().smtp)
    with warehouse_connection() as conn:
        return steps.send_exception_emails(conn, send, from_email, mail_date, _run_id(), settings)
