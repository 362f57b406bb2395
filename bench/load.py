"""Load a generated scenario straight into raw and staging, through the same models and loader
the extraction uses (no HTTP: at a million returns the APIs' paging is not what is measured).

The scenario is split once into one file per collection; then two worker processes (one per core)
load the collections side by side, each over its own connection, largest first."""

from __future__ import annotations

import gzip
import json
import multiprocessing
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import psycopg

from recon_simulators.cin7 import credit_note_list_rows, sale_list_row
from returns_recon.extract.entities import ExtractSummary, credit_note_list_key, load_stream
from returns_recon.models import cin7, reveni, sitoo

# (scenario collection, source, entity, model, key field, row transform), largest first
JOBS: list[tuple[str, str, str, Any, Any, Callable[[dict], Any] | None]] = [
    ("reveni.returns", "reveni", "returns", reveni.ReveniReturn, "id", None),
    ("cin7.sales", "cin7", "sales", cin7.Sale, "ID", None),
    ("cin7.sales", "cin7", "sale_list", cin7.SaleListRow, "SaleID", sale_list_row),
    # the restock state of each note is served on its saleCreditNoteList row (one row per note)
    ("cin7.sales", "cin7", "credit_note_list", cin7.CreditNoteListRow, credit_note_list_key, credit_note_list_rows),
    (
        "sitoo.warehouse_transactions",
        "sitoo",
        "warehouse_transactions",
        sitoo.WarehouseTransaction,
        "warehousetransactionid",
        None,
    ),
    ("cin7.stock_transfers", "cin7", "stock_transfers", cin7.StockTransferRow, "TaskID", None),
    ("sitoo.orders", "sitoo", "orders", sitoo.Order, "orderid", None),
    ("cin7.products", "cin7", "products", cin7.Product, "ID", None),
    ("sitoo.products", "sitoo", "products", sitoo.Product, "productid", None),
    ("cin7.locations", "cin7", "locations", cin7.Location, "ID", None),
    ("sitoo.warehouses", "sitoo", "warehouses", sitoo.Warehouse, "warehouseid", None),
    ("sitoo.stores", "sitoo", "stores", sitoo.Store, "storeid", None),
]
WORKERS = 2


def split_by_collection(path: Path, into: Path) -> dict[str, Path]:
    """One pass over a streamed scenario, each line copied unparsed to its collection's file."""
    wanted = {job[0] for job in JOBS}
    into.mkdir(parents=True, exist_ok=True)
    files: dict[str, IO[bytes]] = {}
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        handle.readline()  # the header
        for line in handle:
            kind = line[6 : line.index(b'"', 6)].decode()  # lines start {"k":"<collection>",
            if kind in wanted:
                if kind not in files:
                    files[kind] = (into / f"{kind}.jsonl").open("wb")
                files[kind].write(line)
    for handle in files.values():
        handle.close()
    return {kind: into / f"{kind}.jsonl" for kind in files}


def rows_of(record: dict, transform: Callable[[dict], Any] | None) -> list[dict]:
    """The rows one scenario record gives an entity: itself, its transform, or (a list) several."""
    out = transform(record) if transform else record
    return out if isinstance(out, list) else [out]


def _records(path: Path, transform: Callable[[dict], Any] | None) -> Iterator[dict]:
    """Numbers read as the API client reads them: exact decimals, never floats."""
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line, parse_float=Decimal)["v"]
            yield from rows_of(record, transform)


def _load_job(url: str, path: Path, job: tuple, run_id: str) -> tuple[str, int]:
    _, source, entity, model, key, transform = job
    with psycopg.connect(url, autocommit=True) as conn:
        summary = load_stream(conn, ExtractSummary(source, entity), model, _records(path, transform), run_id, key)
    return f"{source}.{entity}", summary.fetched


def load_scenario(url: str, path: Path, work: Path, run_id: str = "bench-load") -> dict[str, int]:
    files = split_by_collection(path, work / "collections")
    with ProcessPoolExecutor(WORKERS, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(_load_job, url, files[job[0]], job, run_id) for job in JOBS if job[0] in files]
        return dict(future.result() for future in futures)
