"""Load a generated scenario straight into raw and staging, through the same models and loader
the extraction uses (no HTTP: at a million returns the APIs' paging is not what is measured)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg

from recon_simulators.cin7 import sale_list_row
from recon_simulators.scenario import read_header_and_records
from returns_recon.extract.entities import ExtractSummary, load_stream
from returns_recon.models import cin7, reveni, sitoo

PLAN = {
    "reveni.returns": ("reveni", "returns", reveni.ReveniReturn, "id"),
    "cin7.products": ("cin7", "products", cin7.Product, "ID"),
    "cin7.locations": ("cin7", "locations", cin7.Location, "ID"),
    "cin7.stock_transfers": ("cin7", "stock_transfers", cin7.StockTransferRow, "TaskID"),
    "sitoo.products": ("sitoo", "products", sitoo.Product, "productid"),
    "sitoo.warehouses": ("sitoo", "warehouses", sitoo.Warehouse, "warehouseid"),
    "sitoo.stores": ("sitoo", "stores", sitoo.Store, "storeid"),
    "sitoo.warehouse_transactions": ("sitoo", "warehouse_transactions", sitoo.WarehouseTransaction,
                                     "warehousetransactionid"),
    "sitoo.orders": ("sitoo", "orders", sitoo.Order, "orderid"),
}  # fmt: skip


def _decimals(value: Any) -> Any:
    """JSON numbers as the API client reads them: exact decimals, never floats."""
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {k: _decimals(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decimals(v) for v in value]
    return value


def _of_kind(path: Path, kind: str) -> Iterator[dict]:
    _, records = read_header_and_records(path)
    return (_decimals(record) for k, record in records if k == kind)


def load_scenario(conn: psycopg.Connection, path: Path, run_id: str = "bench-load") -> dict[str, int]:
    counts: dict[str, int] = {}
    for kind, (source, entity, model, key) in PLAN.items():
        summary = load_stream(conn, ExtractSummary(source, entity), model, _of_kind(path, kind), run_id, key)
        counts[kind] = summary.fetched
    # Cin7 sales: the list row (headers) and the detail, as the extraction stores them
    rows = (sale_list_row(sale) for sale in _of_kind(path, "cin7.sales"))
    counts["cin7.sale_list"] = load_stream(conn, ExtractSummary("cin7", "sale_list"), cin7.SaleListRow, rows, run_id,
                                           "SaleID").fetched  # fmt: skip
    counts["cin7.sales"] = load_stream(conn, ExtractSummary("cin7", "sales"), cin7.Sale, _of_kind(path, "cin7.sales"),
                                       run_id, "ID").fetched  # fmt: skip
    return counts
