"""The expectation suites, declared in code and versioned with the package.

Each ``Check`` is one expectation on one data asset (a staging table or a query over the
warehouse), with a severity: a failing *critical* check makes the data untrustworthy (the task
fails and nothing downstream posts); a failing *warning* is reported and the run goes on. SKU
and location mismatches are warnings here: they become exceptions for the data team and block
postings only for the returns they concern.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

Severity = Literal["critical", "warning"]


@dataclass(frozen=True)
class Asset:
    name: str
    query: str
    index_columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class Check:
    suite: str
    asset: Asset
    expectation: str  # class name in great_expectations.expectations
    kwargs: dict[str, Any] = field(default_factory=dict)
    severity: Severity = "critical"

    @property
    def label(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in sorted(self.kwargs.items()) if k != "value_set")
        if "value_set" in self.kwargs:
            args += (", " if args else "") + "value_set=[…]"
        return f"{self.expectation}({args}) on {self.asset.name}"


def table(name: str, *index: str) -> Asset:
    return Asset(name, f"SELECT * FROM staging.{name}", index)


def _orphans(name: str, child: str, parent: str, key: str, parent_key: str | None = None) -> Asset:
    return Asset(
        name,
        f"SELECT c.{key} FROM staging.{child} c LEFT JOIN staging.{parent} p ON p.{parent_key or key} = c.{key} "
        f"WHERE p.{parent_key or key} IS NULL",
    )


def _raw_vs_staging(entity: str, staging: str) -> Asset:
    return Asset(
        f"{staging}_vs_raw",
        f"SELECT (SELECT count(*) FROM raw.api_records WHERE entity = '{entity}') AS source_rows, "
        f"(SELECT count(*) FROM staging.{staging}) AS staged_rows",
    )


def mismatch_checks() -> list[Check]:
    """Business checks: SKUs known exactly to Cin7 Core and (store returns) Sitoo, return points mapped,
    mapped warehouses and locations real."""
    items_cin7 = Asset(
        "return_items_in_cin7",
        "SELECT i.item_id, i.return_id, i.sku, p.product_id AS cin7_product_id "
        "FROM staging.stg_reveni__return_items i LEFT JOIN LATERAL "
        "(SELECT product_id FROM staging.stg_cin7__products p WHERE p.sku = i.sku LIMIT 1) p ON true",
        ("item_id", "sku"),
    )
    items_sitoo = Asset(
        "store_return_items_in_sitoo",
        "SELECT i.item_id, i.return_id, i.sku, p.product_id AS sitoo_product_id "
        "FROM staging.stg_reveni__return_items i JOIN staging.stg_reveni__returns r USING (return_id) "
        "JOIN staging.int_location_map__checked m ON m.return_point_id = r.return_point_id AND m.kind = 'store' "
        "AND m.problem IS NULL "
        "LEFT JOIN LATERAL "
        "(SELECT product_id FROM staging.stg_sitoo__products p WHERE p.sku = i.sku LIMIT 1) p ON true",
        ("item_id", "sku"),
    )
    points = Asset(
        "return_points_mapped",
        "SELECT r.return_id, r.return_point_id, m.return_point_id AS mapped_return_point "
        "FROM staging.stg_reveni__returns r LEFT JOIN staging.dim_location_map m USING (return_point_id)",
        ("return_id", "return_point_id"),
    )
    mapping = Asset("location_map_targets", "SELECT * FROM staging.int_location_map__checked", ("return_point_id",))
    suite = "master_data_mismatches"
    return [
        Check(suite, items_cin7, "ExpectColumnValuesToNotBeNull", {"column": "cin7_product_id"}, "warning"),
        Check(suite, items_sitoo, "ExpectColumnValuesToNotBeNull", {"column": "sitoo_product_id"}, "warning"),
        Check(suite, points, "ExpectColumnValuesToNotBeNull", {"column": "mapped_return_point"}, "warning"),
        Check(suite, mapping, "ExpectColumnValuesToBeNull", {"column": "problem"}, "warning"),
    ]


def structural_checks(currencies: tuple[str, ...], freshness_hours: float) -> list[Check]:
    c = "critical"
    w = "warning"
    money = {"min_value": 0}
    positive = {"min_value": 1}
    currency = {"value_set": list(currencies)}
    returns = table("stg_reveni__returns", "return_id")
    items = table("stg_reveni__return_items", "item_id")
    refunds = table("stg_reveni__refunds", "refund_id")
    sales = table("stg_cin7__sales", "sale_id")
    notes = table("stg_cin7__credit_notes", "task_id")
    note_lines = table("stg_cin7__credit_note_lines", "task_id", "line_no")
    restocks = table("stg_cin7__restocks", "task_id", "line_no")
    transfers = table("stg_cin7__stock_transfers", "task_id")
    products = table("stg_cin7__products", "product_id")
    orders = table("stg_sitoo__orders", "order_id")
    txns = table("stg_sitoo__warehouse_transactions", "transaction_id")
    fresh = freshness_hours
    freshness = Asset(
        "reveni_freshness",
        f"SELECT max(updated_at) >= now() - make_interval(secs => {int(fresh * 3600)}) AS fresh "
        "FROM staging.stg_reveni__returns",
    )
    checks: list[tuple[str, Asset, str, dict, Severity]] = [
        ("reveni_structure", returns, "ExpectColumnValuesToBeUnique", {"column": "return_id"}, c),
        ("reveni_structure", returns, "ExpectColumnValuesToNotBeNull", {"column": "return_id"}, c),
        ("reveni_structure", returns, "ExpectColumnValuesToBeBetween", {"column": "amount", **money}, c),
        ("reveni_structure", returns, "ExpectColumnValuesToBeInSet", {"column": "currency", **currency}, w),
        ("reveni_structure", items, "ExpectColumnValuesToBeUnique", {"column": "item_id"}, c),
        ("reveni_structure", items, "ExpectColumnValuesToBeBetween", {"column": "quantity", **positive}, c),
        ("reveni_structure", refunds, "ExpectColumnValuesToBeUnique", {"column": "refund_id"}, c),
        ("reveni_structure", refunds, "ExpectColumnValuesToBeBetween", {"column": "amount", **money}, c),
        ("reveni_structure", refunds, "ExpectColumnValuesToBeInSet", {"column": "currency", **currency}, w),
        ("reveni_structure",
         _orphans("return_items_without_return", "stg_reveni__return_items", "stg_reveni__returns", "return_id"),
         "ExpectTableRowCountToEqual", {"value": 0}, c),
        ("reveni_structure", _raw_vs_staging("returns", "stg_reveni__returns"), "ExpectColumnPairValuesToBeEqual",
         {"column_A": "source_rows", "column_B": "staged_rows"}, c),
        ("reveni_structure", freshness, "ExpectColumnValuesToBeInSet", {"column": "fresh", "value_set": [True]}, w),
        ("cin7_structure", sales, "ExpectColumnValuesToBeUnique", {"column": "sale_id"}, c),
        ("cin7_structure", sales, "ExpectColumnValuesToBeInSet", {"column": "customer_currency", **currency}, w),
        ("cin7_structure", _raw_vs_staging("sale_list", "stg_cin7__sales"), "ExpectColumnPairValuesToBeEqual",
         {"column_A": "source_rows", "column_B": "staged_rows"}, c),
        ("cin7_structure", notes, "ExpectColumnValuesToBeUnique", {"column": "task_id"}, c),
        ("cin7_structure", notes, "ExpectColumnValuesToBeBetween", {"column": "total", **money}, c),
        ("cin7_structure", _orphans("credit_notes_without_sale", "stg_cin7__credit_notes", "stg_cin7__sales",
                                    "sale_id"), "ExpectTableRowCountToEqual", {"value": 0}, c),
        ("cin7_structure",
         _orphans("credit_note_lines_without_credit_note", "stg_cin7__credit_note_lines", "stg_cin7__credit_notes",
                  "task_id"),
         "ExpectTableRowCountToEqual", {"value": 0}, c),
        ("cin7_structure", note_lines, "ExpectColumnValuesToBeBetween", {"column": "quantity", "min_value": 0,
                                                                         "strict_min": True}, c),
        ("cin7_structure", restocks, "ExpectColumnValuesToBeBetween", {"column": "quantity", "min_value": 0,
                                                                       "strict_min": True}, c),
        ("cin7_structure", transfers, "ExpectColumnValuesToBeUnique", {"column": "task_id"}, c),
        ("cin7_structure", products, "ExpectColumnValuesToBeUnique", {"column": "product_id"}, c),
        ("cin7_structure", products, "ExpectColumnValuesToBeUnique", {"column": "sku"}, w),
        ("sitoo_structure", orders, "ExpectColumnValuesToBeUnique", {"column": "order_id"}, c),
        ("sitoo_structure", _raw_vs_staging("orders", "stg_sitoo__orders"), "ExpectColumnPairValuesToBeEqual",
         {"column_A": "source_rows", "column_B": "staged_rows"}, c),
        ("sitoo_structure", txns, "ExpectColumnValuesToBeUnique", {"column": "transaction_id"}, c),
        ("sitoo_structure", _orphans("transactions_without_warehouse", "stg_sitoo__warehouse_transactions",
                                     "stg_sitoo__warehouses", "warehouse_id"), "ExpectTableRowCountToEqual",
         {"value": 0}, w),
    ]  # fmt: skip
    return [Check(suite, asset, kind, kwargs, severity) for suite, asset, kind, kwargs, severity in checks]


LOCATION_MAP_CHECKS: list[tuple[str, dict[str, Any], Severity]] = [
    ("ExpectColumnValuesToBeUnique", {"column": "return_point_id"}, "critical"),
    ("ExpectColumnValuesToNotBeNull", {"column": "return_point_id"}, "critical"),
    ("ExpectColumnValuesToBeInSet", {"column": "kind", "value_set": ["store", "warehouse"]}, "warning"),
    ("ExpectColumnValuesToNotBeNull", {"column": "complete"}, "warning"),
]

CheckFactory = Callable[[], list[Check]]
