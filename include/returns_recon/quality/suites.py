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
from pathlib import Path
from typing import Any, Literal

from psycopg import sql

from returns_recon import sqlfiles
from returns_recon.models.reveni import STATUSES, VALIDATION_STATUSES

Severity = Literal["critical", "warning"]
SQL = Path(__file__).with_name("sql")  # the assets' own queries, one .sql file each


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


def _query(name: str, *index: str, **values: Any) -> Asset:
    """An asset whose query is quality/sql/<name>.sql, its parameters written in (GX runs text, not bound values),
    without the file's header comments (GX shows the query in Data Docs)."""
    text = sqlfiles.load(SQL, name).render(values)
    return Asset(name, "\n".join(line for line in text.splitlines() if not line.startswith("--")), index)


def table(name: str, *index: str) -> Asset:
    return Asset(name, sql.SQL("SELECT * FROM {}").format(sql.Identifier("staging", name)).as_string(), index)


def _orphans(name: str, child: str, parent: str, key: str, parent_key: str | None = None) -> Asset:
    """The rows of a staging table whose key names no row of its parent."""
    query = sql.SQL(
        "SELECT c.{key} FROM {child} AS c LEFT JOIN {parent} AS p ON c.{key} = p.{parent_key} "
        "WHERE p.{parent_key} IS NULL"
    ).format(
        key=sql.Identifier(key),
        child=sql.Identifier("staging", child),
        parent=sql.Identifier("staging", parent),
        parent_key=sql.Identifier(parent_key or key),
    )
    return Asset(name, query.as_string())


def _raw_vs_staging(entity: str, staging: str) -> Asset:
    """The records fetched of an entity against the rows staged from them."""
    query = sql.SQL(
        "SELECT (SELECT count(*) FROM raw.api_records WHERE entity = {entity}) AS source_rows, "
        "(SELECT count(*) FROM {staging}) AS staged_rows"
    ).format(entity=sql.Literal(entity), staging=sql.Identifier("staging", staging))
    return Asset(f"{staging}_vs_raw", query.as_string())


def mismatch_checks() -> list[Check]:
    """Business checks: SKUs known exactly to Cin7 Core and (store returns) Sitoo, return points mapped,
    mapped warehouses and locations real."""
    items_cin7 = _query("return_items_in_cin7", "item_id", "sku")
    items_sitoo = _query("store_return_items_in_sitoo", "item_id", "sku")
    points = _query("return_points_mapped", "return_id", "return_point_id")
    mapping = _query("location_map_targets", "return_point_id")
    suite = "master_data_mismatches"
    return [
        Check(suite, items_cin7, "ExpectColumnValuesToNotBeNull", {"column": "cin7_product_id"}, "warning"),
        Check(suite, items_sitoo, "ExpectColumnValuesToNotBeNull", {"column": "sitoo_product_id"}, "warning"),
        Check(suite, points, "ExpectColumnValuesToNotBeNull", {"column": "mapped_return_point"}, "warning"),
        Check(suite, mapping, "ExpectColumnValuesToBeNull", {"column": "problem"}, "warning"),
    ]


def structural_checks(currencies: tuple[str, ...], freshness_hours: float) -> list[Check]:
    c: Severity = "critical"
    w: Severity = "warning"
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
    freshness = _query("reveni_freshness", freshness_seconds=int(freshness_hours * 3600))
    # read leniently (models/reveni.py): a status outside the documented set is kept and raised here, not quarantined
    statuses = _query("reveni_return_statuses", "return_id")
    validations = _query("reveni_item_validation_statuses", "item_id", "return_id")
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
        (
            "reveni_structure",
            _orphans("return_items_without_return", "stg_reveni__return_items", "stg_reveni__returns", "return_id"),
            "ExpectTableRowCountToEqual",
            {"value": 0},
            c,
        ),
        (
            "reveni_structure",
            _raw_vs_staging("returns", "stg_reveni__returns"),
            "ExpectColumnPairValuesToBeEqual",
            {"column_A": "source_rows", "column_B": "staged_rows"},
            c,
        ),
        ("reveni_structure", freshness, "ExpectColumnValuesToBeInSet", {"column": "fresh", "value_set": [True]}, w),
        (
            "reveni_structure",
            statuses,
            "ExpectColumnValuesToBeInSet",
            {"column": "status", "value_set": [*STATUSES]},
            w,
        ),
        (
            "reveni_structure",
            validations,
            "ExpectColumnValuesToBeInSet",
            {"column": "validation_status", "value_set": [*VALIDATION_STATUSES]},
            w,
        ),
        ("cin7_structure", sales, "ExpectColumnValuesToBeUnique", {"column": "sale_id"}, c),
        ("cin7_structure", sales, "ExpectColumnValuesToBeInSet", {"column": "customer_currency", **currency}, w),
        (
            "cin7_structure",
            _raw_vs_staging("sale_list", "stg_cin7__sales"),
            "ExpectColumnPairValuesToBeEqual",
            {"column_A": "source_rows", "column_B": "staged_rows"},
            c,
        ),
        ("cin7_structure", notes, "ExpectColumnValuesToBeUnique", {"column": "task_id"}, c),
        ("cin7_structure", notes, "ExpectColumnValuesToBeBetween", {"column": "total", **money}, c),
        (
            "cin7_structure",
            _orphans("credit_notes_without_sale", "stg_cin7__credit_notes", "stg_cin7__sales", "sale_id"),
            "ExpectTableRowCountToEqual",
            {"value": 0},
            c,
        ),
        (
            "cin7_structure",
            _orphans(
                "credit_note_lines_without_credit_note",
                "stg_cin7__credit_note_lines",
                "stg_cin7__credit_notes",
                "task_id",
            ),
            "ExpectTableRowCountToEqual",
            {"value": 0},
            c,
        ),
        (
            "cin7_structure",
            note_lines,
            "ExpectColumnValuesToBeBetween",
            {"column": "quantity", "min_value": 0, "strict_min": True},
            c,
        ),
        (
            "cin7_structure",
            restocks,
            "ExpectColumnValuesToBeBetween",
            {"column": "quantity", "min_value": 0, "strict_min": True},
            c,
        ),
        ("cin7_structure", transfers, "ExpectColumnValuesToBeUnique", {"column": "task_id"}, c),
        ("cin7_structure", products, "ExpectColumnValuesToBeUnique", {"column": "product_id"}, c),
        ("cin7_structure", products, "ExpectColumnValuesToBeUnique", {"column": "sku"}, w),
        ("sitoo_structure", orders, "ExpectColumnValuesToBeUnique", {"column": "order_id"}, c),
        (
            "sitoo_structure",
            _raw_vs_staging("orders", "stg_sitoo__orders"),
            "ExpectColumnPairValuesToBeEqual",
            {"column_A": "source_rows", "column_B": "staged_rows"},
            c,
        ),
        ("sitoo_structure", txns, "ExpectColumnValuesToBeUnique", {"column": "transaction_id"}, c),
        (
            "sitoo_structure",
            _orphans(
                "transactions_without_warehouse",
                "stg_sitoo__warehouse_transactions",
                "stg_sitoo__warehouses",
                "warehouse_id",
            ),
            "ExpectTableRowCountToEqual",
            {"value": 0},
            w,
        ),
    ]
    return [Check(suite, asset, kind, kwargs, severity) for suite, asset, kind, kwargs, severity in checks]


LOCATION_MAP_CHECKS: list[tuple[str, dict[str, Any], Severity]] = [
    ("ExpectColumnValuesToBeUnique", {"column": "return_point_id"}, "critical"),
    ("ExpectColumnValuesToNotBeNull", {"column": "return_point_id"}, "critical"),
    ("ExpectColumnValuesToBeInSet", {"column": "kind", "value_set": ["store", "warehouse"]}, "warning"),
    ("ExpectColumnValuesToNotBeNull", {"column": "complete"}, "warning"),
]

CheckFactory = Callable[[], list[Check]]
