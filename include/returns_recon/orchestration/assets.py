"""Airflow Assets for the warehouse tables the DAGs refresh, so the UI shows lineage and one
DAG can be scheduled on another's output."""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass(frozen=True)
class MerchantAssets:
    """One merchant's warehouse tables as Assets (a merchants file gives each merchant its own warehouse): the same
    tables as above, named ``<merchant>.<schema>.<table>``, so lineage and scheduling never mix two merchants."""

    reveni_staging: list[Asset]
    cin7_staging: list[Asset]
    cin7_reference: list[Asset]
    sitoo_staging: list[Asset]
    sitoo_reference: list[Asset]
    location_map: Asset
    recon_published: list[Asset]

    @property
    def exceptions(self) -> Asset:
        return self.recon_published[0]


def _of(merchant_id: str, assets: list[Asset]) -> list[Asset]:
    return [
        Asset(name=f"{merchant_id}.{a.name}", uri=a.uri.replace("://", f"://{merchant_id}/", 1), group=a.group)
        for a in assets
    ]


def merchant_assets(merchant_id: str | None) -> MerchantAssets:
    """The Assets of a merchant's DAGs (``None``: the single merchant's, the module's constants)."""

    def of(assets: list[Asset]) -> list[Asset]:
        return assets if merchant_id is None else _of(merchant_id, assets)

    return MerchantAssets(
        reveni_staging=of(REVENI_STAGING),
        cin7_staging=of(CIN7_STAGING),
        cin7_reference=of(CIN7_REFERENCE),
        sitoo_staging=of(SITOO_STAGING),
        sitoo_reference=of(SITOO_REFERENCE),
        location_map=of([LOCATION_MAP])[0],
        recon_published=of(RECON_PUBLISHED),
    )


def webhook_inbox(merchant_id: str | None, warehouse_conn_id: str = "recon_warehouse") -> Asset:
    """The inbox Asset a merchant's events DAG is scheduled on, watched in that merchant's warehouse."""
    if merchant_id is None:
        return WEBHOOK_INBOX
    return Asset(
        name=f"{merchant_id}.raw.webhook_inbox",
        uri=f"recon-warehouse://{merchant_id}/raw/webhook_inbox",
        group="raw",
        watchers=[
            AssetWatcher(
                name=f"returns_recon_{merchant_id}_inbox_pending",
                trigger=InboxPendingTrigger(conn_id=warehouse_conn_id),
            )
        ],
    )
