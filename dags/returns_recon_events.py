"""The event-driven returns-reconciliation DAG, one per merchant of the merchants file whose webhooks are on
(``events: true``: ``returns_recon_<merchant>_events``) or, without the file, ``returns_recon_events``; its
documentation is returns_recon.orchestration.docs.EVENTS."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag

from returns_recon.merchants import Merchant, load_merchants
from returns_recon.orchestration.alerts import dag_failure_alert
from returns_recon.orchestration.assets import webhook_inbox
from returns_recon.orchestration.defaults import DEFAULT_ARGS, EVENTS_RUN_TIMEOUT, TAGS_COMMON
from returns_recon.orchestration.docs import EVENTS, for_merchant
from returns_recon.orchestration.structure import build_events


def events(merchant: Merchant | None) -> None:
    inbox = webhook_inbox(merchant.id, merchant.connections.warehouse) if merchant else webhook_inbox(None)

    @dag(
        dag_id=merchant.dag_id("events") if merchant else "returns_recon_events",
        schedule=[inbox],  # the inbox's watcher signals pending webhook events
        start_date=datetime(2026, 1, 1),
        catchup=False,
        max_active_runs=1,
        # the triggerer runs the watcher only for an unpaused DAG: events flow as soon as the DAG is deployed
        is_paused_upon_creation=False,
        default_args=DEFAULT_ARGS,
        on_failure_callback=dag_failure_alert,
        dagrun_timeout=EVENTS_RUN_TIMEOUT,
        tags=[*TAGS_COMMON, "events", *([f"merchant:{merchant.id}"] if merchant else [])],
        doc_md=for_merchant(EVENTS, merchant),
    )
    def returns_recon_events() -> None:
        build_events(merchant)

    returns_recon_events()


merchants = load_merchants()  # the file only: no network or database at parse time
for each in [m for m in merchants.merchants if m.events] if merchants else [None]:
    events(each)
