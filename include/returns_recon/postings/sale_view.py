"""The current state of Cin7 Core sales, read before writing at a cost of one call per run.

Reading a sale's credit notes one by one costs two calls per posting, which caps a 60 calls per
minute account at 30 postings a minute. Instead: the extraction's copy of each sale detail
(``raw.api_records``) is current unless the sale changed since; one ``saleList`` call filtered by
``UpdatedSince`` (paged, 1000 a page) names every sale that did. Those sales, sales whose stored detail
is older than their list row, sales this run has written to, and postings with an earlier attempt
are read live, one by one. Stored amounts come back as Decimals, as the API client reads them.
The changed-sales list is read again once it is ``refresh_seconds`` old, so a credit note a person adds
while the executor runs is seen before any send made that long after it. A
sale's live credit notes are read again once that old, or once this run has written to the sale.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg

from returns_recon.apis.client import ApiClient

# The stored copy keeps amounts as exact decimal strings; a note sent back must carry numbers.
NUMERIC_FIELDS = frozenset(
    {"Quantity", "Price", "Discount", "Tax", "Total", "TotalBeforeTax", "AverageCost", "CreditNoteConversionRate"}
)


def with_numbers(value: Any) -> Any:
    """A stored document with its amount fields as Decimals again (as the API client reads them)."""
    if isinstance(value, dict):
        return {
            k: Decimal(v) if k in NUMERIC_FIELDS and isinstance(v, str) else with_numbers(v) for k, v in value.items()
        }
    if isinstance(value, list):
        return [with_numbers(v) for v in value]
    return value


# Cin7 Core's timestamps and ours may differ by a little; read changes from a little earlier.
MARGIN = timedelta(minutes=5)
PAGE = 1000
REFRESH_SECONDS = 15.0  # how old a re-read of the target may be at a send (docs/postings.md)


class SaleView:
    def __init__(self, conn: psycopg.Connection, cin7: ApiClient, refresh_seconds: float = REFRESH_SECONDS) -> None:
        self._conn = conn
        self._cin7 = cin7
        self._refresh_seconds = refresh_seconds
        self._read_at: float | None = None
        self._changed: set[str] = set()
        self._written: set[str] = set()
        self._live_transfers: dict[str, str] | None = None
        self._live_notes: dict[str, tuple[float, list[dict]]] = {}  # sale -> (read at, its notes)
        self.calls = 0

    def _since(self) -> str | None:
        row = self._conn.execute(
            "SELECT watermark FROM raw.extract_watermarks WHERE source = 'cin7' AND entity = 'sale_list'"
        ).fetchone()
        if row is None:
            return None
        return (datetime.fromisoformat(row[0]) - MARGIN).strftime("%Y-%m-%dT%H:%M:%S")

    def _refresh(self) -> bool:
        """Read which sales changed since the extraction; False when there is nothing to compare to."""
        if self._read_at is not None and time.monotonic() - self._read_at < self._refresh_seconds:
            return True
        since = self._since()
        if since is None:
            return False
        changed: set[str] = set()
        page = 1
        while True:
            body = self._cin7.get("saleList", {"UpdatedSince": since, "Page": page, "Limit": PAGE}, label="saleList")
            self.calls += 1
            rows = body.get("SaleList") or []
            changed.update(str(row.get("SaleID")) for row in rows)
            if len(rows) < PAGE:
                break
            page += 1
        self._changed, self._read_at = changed, time.monotonic()
        return True

    def _stored(self, sale_id: str) -> dict | None:
        row = self._conn.execute(
            """SELECT a.payload FROM raw.api_records a
               JOIN staging.stg_cin7__sales s ON s.sale_id = a.natural_key
               WHERE a.source = 'cin7' AND a.entity = 'sales' AND a.natural_key = %s
                 AND s.detail_updated_at >= date_trunc('second', s.updated_at)""",
            (sale_id,),
        ).fetchone()
        return with_numbers(row[0]) if row else None

    def stored_if_current(self, sale_id: str, live: bool = False) -> dict | None:
        """The stored sale detail when it is known to be current, else None (read it live)."""
        if live or sale_id in self._written or not self._refresh() or sale_id in self._changed:
            return None
        return self._stored(sale_id)

    def credit_notes(self, sale_id: str, live: bool = False) -> list[dict]:
        stored = self.stored_if_current(sale_id, live)
        if stored is not None:
            return stored.get("CreditNotes") or []
        read_at, notes = self._live_notes.get(sale_id, (0.0, []))
        if time.monotonic() - read_at >= self._refresh_seconds:
            body = self._cin7.get("sale/creditnote", {"SaleID": sale_id}, label="sale/creditnote")
            notes = body.get("CreditNotes") or []
            self._live_notes[sale_id] = (time.monotonic(), notes)
        return notes

    def sale(self, sale_id: str, live: bool = False) -> dict[str, Any]:
        stored = self.stored_if_current(sale_id, live)
        if stored is not None:
            return stored
        return self._cin7.get("sale", {"ID": sale_id}, label="sale")

    def transfer(self, reference: str) -> str | None:
        """The TaskID of the extracted transfer with this exact reference, if any."""
        row = self._conn.execute(
            "SELECT task_id FROM staging.stg_cin7__stock_transfers WHERE reference = %s ORDER BY task_id LIMIT 1",
            (reference,),
        ).fetchone()
        return row[0] if row else None

    def live_transfers(self) -> dict[str, str]:
        """Reference → TaskID of every transfer, read live once per executor run (after its plan): the whole
        ``stockTransferList``, paged, since its ``Search`` does not read ``Reference`` (apib L26299) and the
        list has no ``UpdatedSince``; re-reading it before every send would cost a page per 1000 transfers."""
        if self._live_transfers is None:
            found: dict[str, str] = {}
            page = 1
            while True:
                body = self._cin7.get("stockTransferList", {"Page": page, "Limit": PAGE}, label="stockTransferList")
                self.calls += 1
                rows = body.get("StockTransferList") or []
                for row in rows:
                    if isinstance(row, dict) and row.get("Reference") and row.get("TaskID"):
                        found.setdefault(str(row["Reference"]), str(row["TaskID"]))
                if len(rows) < PAGE:
                    break
                page += 1
            self._live_transfers = found
        return self._live_transfers

    def transfers_extracted(self) -> bool:
        """Whether the transfer list has been read at least once (else read live)."""
        row = self._conn.execute(
            "SELECT 1 FROM raw.extract_runs WHERE source = 'cin7' AND entity = 'stock_transfers' LIMIT 1"
        ).fetchone()
        return row is not None

    def written(self, sale_id: str) -> None:
        """This run wrote to the sale: its stored copy is out of date from now on."""
        self._written.add(sale_id)
        self._live_notes.pop(sale_id, None)
