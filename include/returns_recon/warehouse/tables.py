"""Column order of each staging table as the models emit rows, and how each is loaded."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TableSpec:
    name: str
    columns: tuple[str, ...]
    key: tuple[str, ...]
    parent_key: str | None = None  # child tables: replaced whole for each changed parent
    update_columns: tuple[str, ...] | None = None  # parents: columns an upsert may change

    @property
    def updatable(self) -> tuple[str, ...]:
        return self.update_columns or tuple(c for c in self.columns if c not in self.key)


def _t(name: str, columns: str, key: str, parent_key: str | None = None, update: str | None = None) -> TableSpec:
    return TableSpec(
        name,
        tuple(columns.split()),
        tuple(key.split()),
        parent_key,
        tuple(update.split()) if update else None,
    )


_SALE_COLUMNS = (
    "sale_id customer_reference external_id order_number status sale_type order_status location tax_calculation "
    "base_currency customer_currency source_channel sale_order_date updated_at _run_id credit_note_number "
    "detail_updated_at"
)

TABLES: dict[str, TableSpec] = {
    spec.name: spec
    for spec in (
        _t(
            "stg_reveni__returns",
            "return_id order_id order_external_id return_type is_instant status amount "
            "currency refund_method return_point_id return_point_type return_point_name received_at created_at "
            "updated_at _run_id",
            "return_id",
        ),
        _t(
            "stg_reveni__return_items",
            "item_id return_id line_no sku name quantity unit_price return_reason "
            "exchange_sku validation_status restock validated_at",
            "item_id",
            parent_key="return_id",
        ),
        _t(
            "stg_reveni__refunds",
            "refund_id return_id amount currency status method refunded_at",
            "refund_id",
            parent_key="return_id",
        ),
        _t("stg_cin7__sales", _SALE_COLUMNS, "sale_id"),
        # a saleList row updates the header and leaves what only the detail holds
        _t(
            "stg_cin7__sales:list",
            _SALE_COLUMNS,
            "sale_id",
            update="customer_reference external_id order_number status sale_type order_status base_currency "
            "customer_currency source_channel sale_order_date updated_at _run_id credit_note_number",
        ),
        _t(
            "stg_cin7__sale_lines",
            "sale_id document line_no invoice_status product_id sku name quantity price discount tax total tax_rule",
            "sale_id document line_no",
            parent_key="sale_id",
        ),
        _t(
            "stg_cin7__credit_notes",
            "task_id sale_id credit_note_number invoice_number memo status "
            "credit_note_date total_before_tax tax total currency",
            "task_id",
            parent_key="sale_id",
        ),
        _t(
            "stg_cin7__credit_note_list",
            "sale_id credit_note_number credit_note_status restock_status sale_type updated_at _run_id",
            "sale_id credit_note_number",
        ),
        _t(
            "stg_cin7__credit_note_lines",
            "task_id line_no sale_id product_id sku quantity price discount tax total tax_rule",
            "task_id line_no",
            parent_key="sale_id",
        ),
        _t(
            "stg_cin7__restocks",
            "task_id line_no sale_id product_id sku quantity location restock_location restock_date",
            "task_id line_no",
            parent_key="sale_id",
        ),
        _t(
            "stg_cin7__stock_transfers",
            "task_id number status from_location to_location reference completion_date updated_at _run_id",
            "task_id",
        ),
        _t("stg_cin7__products", "product_id sku name status product_type _run_id", "product_id"),
        _t("stg_cin7__locations", "location_id name is_deprecated _run_id", "location_id"),
        _t(
            "stg_cin7__availability",
            "product_id location sku on_hand allocated available _run_id",
            "product_id location",
        ),
        _t("stg_sitoo__products", "product_id sku title active_pos _run_id", "product_id"),
        _t(
            "stg_sitoo__warehouses",
            "warehouse_id warehouse_type use_type store_id sellable name external_id _run_id",
            "warehouse_id",
        ),
        _t("stg_sitoo__stores", "store_id name external_id _run_id", "store_id"),
        _t(
            "stg_sitoo__warehouse_items",
            "warehouse_id sku decimal_total decimal_available date_last_modified _run_id",
            "warehouse_id sku",
        ),
        _t(
            "stg_sitoo__warehouse_transactions",
            "transaction_id warehouse_id transaction_type external_id description reason_code date_created _run_id",
            "transaction_id",
        ),
        _t(
            "stg_sitoo__warehouse_transaction_items",
            "transaction_id line_no sku quantity",
            "transaction_id line_no",
            parent_key="transaction_id",
        ),
        _t(
            "stg_sitoo__orders",
            "order_id external_id credit_order_id order_date order_state payment_state order_type "
            "warehouse_id currency total_gross payments_total _run_id",
            "order_id",
        ),
        _t(
            "stg_sitoo__order_items",
            "order_id line_no sku product_name quantity total_net total_vat",
            "order_id line_no",
            parent_key="order_id",
        ),
    )
}
