"""Airflow Assets for the warehouse tables the DAGs refresh, so the UI shows lineage and one
DAG can be scheduled on another's output."""

from __future__ import annotations

from airflow.sdk import Asset, AssetWatcher

from returns_recon.orchestration.triggers import InboxPendingTrigger


def table_asset(schema: str, table: str) -> Asset:
    return Asset(name=f"{schema}.{table}", uri=f"recon-warehouse://{schema}/{table}", group=schema)


REVENI_STAGING = [
    table_asset("staging", t) for t in ("stg_reveni__returns", "stg_reveni__return_items", "stg_reveni__refunds")
]
CIN7_STAGING = [
    table_asset("staging", t)
    for t in (
        "stg_cin7__sales",
        "stg_cin7__sale_lines",
        "stg_cin7__credit_notes",
        "stg_cin7__credit_note_lines",
        "stg_cin7__restocks",
        "stg_cin7__credit_note_list",
        "stg_cin7__stock_transfers",
    )
]
CIN7_REFERENCE = [
    table_asset("staging", t) for t in ("stg_cin7__products", "stg_cin7__locations", "stg_cin7__availability")
]
SITOO_STAGING = [
    table_asset("staging", t)
    for t in (
        "stg_sitoo__orders",
        "stg_sitoo__order_items",
        "stg_sitoo__warehouse_transactions",
        "stg_sitoo__warehouse_transaction_items",
    )
]
SITOO_REFERENCE = [
    table_asset("staging", t)
    for t in ("stg_sitoo__products", "stg_sitoo__warehouses", "stg_sitoo__stores", "stg_sitoo__warehouse_items")
]
LOCATION_MAP = table_asset("staging", "dim_location_map")
RECON_PUBLISHED = [
    table_asset("recon", t)
    for t in ("exceptions", "fct_returns", "fct_return_reconciliation", "daily_summary", "refund_journal")
]
EXCEPTIONS = RECON_PUBLISHED[0]

# The webhook inbox (migration 0021): the receiver stores each verified event there; the watcher's trigger runs in
# the triggerer, LISTENs for new rows and polls as a fallback, and each signal is an asset event that schedules
# returns_recon_events (which reads the pending rows themselves, not the event's payload).
WEBHOOK_INBOX = Asset(
    name="raw.webhook_inbox",
    uri="recon-warehouse://raw/webhook_inbox",
    group="raw",
    watchers=[AssetWatcher(name="returns_recon_inbox_pending", trigger=InboxPendingTrigger())],
)
