"""The event-driven returns-reconciliation DAG; its documentation is returns_recon.orchestration.docs.EVENTS."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag

from returns_recon.orchestration.alerts import dag_failure_alert
from returns_recon.orchestration.assets import WEBHOOK_INBOX
from returns_recon.orchestration.defaults import DEFAULT_ARGS, EVENTS_RUN_TIMEOUT, TAGS_COMMON
from returns_recon.orchestration.docs import EVENTS
from returns_recon.orchestration.structure import build_events


@dag(
    dag_id="returns_recon_events",
    schedule=[WEBHOOK_INBOX],  # the inbox's watcher signals pending webhook events
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    # the triggerer runs the watcher only for an unpaused DAG: events flow as soon as the DAG is deployed
    is_paused_upon_creation=False,
    default_args=DEFAULT_ARGS,
    on_failure_callback=dag_failure_alert,
    dagrun_timeout=EVENTS_RUN_TIMEOUT,
    tags=[*TAGS_COMMON, "events"],
    doc_md=EVENTS,
)
def returns_recon_events() -> None:
    build_events()


returns_recon_events()
