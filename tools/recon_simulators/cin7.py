"""Cin7 Core External API v2 simulator (``/ExternalApi/v2/``).

Each behaviour comes from the vendor's blueprint (``shared/reference/vendor/dearinventory.apib``,
cited as ``apib Lnnn``); what the vendor does not document is a setting in ``behaviour.py``.
Two auth headers (403 otherwise, L33-L45), ``{Total, Page, <Key>}`` envelopes with ``Page``/``Limit``
(max 1000, L75-L112), case-insensitive paths and query keys, lists in a stable but meaningless
(hash) order, an HTML page with HTTP 200 for unknown paths (integrators' report), error bodies
``[{"ErrorCode", "Exception"}]`` (L31239), the credit-note rules (L24687-L24691: a POST is refused
unless the note is DRAFT or NOT AVAILABLE and unless the invoice is AUTHORISED or PAID; the zero
GUID creates; only the POST model's fields are read, L24578; the answer is ``{SaleID, CreditNotes}``),
the restock state served only on ``saleCreditNoteList`` rows (L20649, not on the notes of
``GET /sale``), ``stockTransferList`` ``Search`` over its documented fields only (L26299), stock
that moves when restocks and transfers are authorised, and the 60 calls/minute limit in any of its
three throttle forms. Webhooks (``/webhooks``, L27912-L28888): subscriptions here, the events of every change
(our own writes included) built here and delivered by ``webhooks.py``.
"""

from __future__ import annotations

import bisect
import copy
import hashlib
import uuid
from collections import OrderedDict
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from recon_simulators.http import HTML_PAGE, ServiceApp, read_json
from recon_simulators.timefmt import cin7_ts, parse_ts, require_ts
from recon_simulators.webhooks import CIN7_MAX_PER_TYPE, cin7_webhook_fields

if TYPE_CHECKING:
    from recon_simulators.webhooks import WebhookHub

ZERO_GUID = "00000000-0000-0000-0000-000000000000"
# apib L24578-L24591 (Sale Credit Note POST Model), L30576 (line model), L30638 (restock lines)
CREDIT_NOTE_POST_FIELDS = (
    "SaleID",
    "TaskID",
    "CombineAdditionalCharges",
    "CreditNoteInvoiceNumber",
    "Memo",
    "Status",
    "CreditNoteDate",
    "CreditNoteConversionRate",
    "Lines",
    "AdditionalCharges",
    "Restock",
)
LINE_FIELDS = (
    "ProductID",
    "SKU",
    "Name",
    "Quantity",
    "Price",
    "Discount",
    "Tax",
    "AverageCost",
    "TaxRule",
    "Account",
    "Comment",
    "Total",
)
RESTOCK_FIELDS = (
    "ProductID",
    "SKU",
    "Name",
    "Location",
    "LocationID",
    "Quantity",
    "BatchSN",
    "ExpiryDate",
    "NonInventory",
    "RestockLocation",
    "RestockLocationID",
    "RestockDate",
)
INTERNAL_NOTE_FIELDS = ("RestockStatus",)  # kept in the world, served only on saleCreditNoteList rows
# what each endpoint serves of a credit note beyond the fields both share: totals on GET /sale (Sale
# Credit Note Model, L30739-L30755), CombineAdditionalCharges on /sale/creditnote (partial model, L24564)
ONLY_ON_SALE = ("TotalBeforeTax", "Tax", "Total")
ONLY_ON_CREDIT_NOTE_ENDPOINT = ("CombineAdditionalCharges",)
MAX_LIMIT = 1000
CENT = Decimal("0.01")


def money(value: float | Decimal | str) -> float:
    return float(Decimal(str(value)).quantize(CENT, ROUND_HALF_UP))


def _order_key(key: str) -> str:
    return hashlib.sha1(key.encode()).hexdigest()  # noqa: S324 - ordering, not security


class Cin7State:
    def __init__(self, hub: WebhookHub | None = None, tenant_id: str | None = None) -> None:
        self.hub = hub
        self.tenant_id = tenant_id  # the account id (api-auth-accountid): the TenantID of webhook payloads
        self.products: dict[str, dict] = {}
        self.locations: dict[str, dict] = {}
        self.sales: dict[str, dict] = {}
        self.transfers: dict[str, dict] = {}
        self.stock: dict[tuple[str, str], float] = {}
        self._sales_by_updated: list[tuple[datetime, str]] = []
        self._sale_updated: dict[str, datetime] = {}
        self.version = 0
        self._cn_seq = 0
        self._tr_seq = 0

    # --- loading and mutation ------------------------------------------------------------
    def add_product(self, product: dict) -> None:
        self.products[product["ID"]] = product
        self.version += 1

    def add_location(self, location: dict) -> None:
        self.locations[location["ID"]] = location

    def location_name(self, location_id: str | None, name: str | None) -> str | None:
        if location_id and location_id in self.locations:
            return self.locations[location_id]["Name"]
        if name and any(loc["Name"] == name for loc in self.locations.values()):
            return name
        return None

    def location_id(self, name: str) -> str | None:
        return next((k for k, v in self.locations.items() if v["Name"] == name), None)

    def set_stock(self, product_id: str, location: str, on_hand: float, *, announce: bool = False) -> None:
        changed = self.stock.get((product_id, location)) != on_hand
        self.stock[(product_id, location)] = on_hand
        if announce and changed:
            self._announce_stock({(product_id, location)})

    def move_stock(self, product_id: str, location: str, delta: float) -> None:
        self.stock[(product_id, location)] = self.stock.get((product_id, location), 0.0) + delta

    def upsert_sale(self, sale: dict, *, touched_at: datetime | None = None, apply_stock: bool = True) -> None:
        sale = copy.deepcopy(sale)
        if touched_at is not None:
            sale["LastModifiedOn"] = touched_at.isoformat()
        updated = require_ts(sale["LastModifiedOn"])
        previous = self._sale_updated.get(sale["ID"])
        if previous is not None:
            index = bisect.bisect_left(self._sales_by_updated, (previous, sale["ID"]))
            del self._sales_by_updated[index]
        old = self.sales.get(sale["ID"])
        self.sales[sale["ID"]] = sale
        self._sale_updated[sale["ID"]] = updated
        bisect.insort(self._sales_by_updated, (updated, sale["ID"]))
        self.version += 1
        if touched_at is not None:  # a change, not a scenario's initial state
            self._announce_sale(old, sale)
        if apply_stock:
            self._announce_stock(self._apply_new_restocks(old, sale))
        for note in sale.get("CreditNotes", []):
            self._cn_seq = max(self._cn_seq, _seq(note.get("CreditNoteNumber")))

    # --- webhook events (apib L27989-L28509) -------------------------------------------------------------
    def _announce_sale(self, old: dict | None, new: dict) -> None:
        """``Sale/CreditNoteAuthorised`` for every credit note that became AUTHORISED, ``Sale/InvoiceAuthorised``
        for every invoice that became AUTHORISED (or PAID, which it passes through) with this change."""
        hub = self.hub
        if hub is None or not hub.subscriptions:  # nothing is built unless someone subscribed
            return
        customer = {
            "CustomerName": new.get("Customer"),
            "CustomerContactName": new.get("Contact"),
            "CustomerContactEmail": new.get("Email"),
        }
        order_number = (new.get("Order") or {}).get("SaleOrderNumber")

        def key(document: dict) -> str:
            return str(document.get("TaskID") or document.get("CreditNoteNumber") or document.get("InvoiceNumber"))

        before = {key(n): n.get("Status") for n in (old or {}).get("CreditNotes") or []}
        for note in new.get("CreditNotes") or []:
            if note.get("Status") == "AUTHORISED" and before.get(key(note)) != "AUTHORISED":
                # apib L28094-L28105
                payload: dict[str, Any] = {
                    "SaleID": new["ID"],
                    "SaleOrderNumber": order_number,
                    "CreditNoteNumber": note.get("CreditNoteNumber"),
                    "TaskID": note.get("TaskID"),
                    **customer,
                    "EventType": "Sale/CreditNoteAuthorised",
                }
                hub.cin7_event("Sale/CreditNoteAuthorised", payload.copy)
        authorised = {"AUTHORISED", "PAID"}
        before = {key(i): i.get("Status") for i in (old or {}).get("Invoices") or []}
        for invoice in new.get("Invoices") or []:
            if invoice.get("Status") in authorised and before.get(key(invoice)) not in authorised:
                # apib L28056-L28067: this type names the sale SaleTaskID and carries TenantID
                payload = {
                    "SaleTaskID": new["ID"],
                    "TenantID": self.tenant_id,
                    "OrderNumber": order_number,
                    "InvoiceNumber": invoice.get("InvoiceNumber"),
                    **customer,
                    "EventType": "Sale/InvoiceAuthorised",
                }
                hub.cin7_event("Sale/InvoiceAuthorised", payload.copy)

    def _announce_stock(self, keys: set[tuple[str, str]]) -> None:
        """``Stock/AvailableStockLevelChanged``: a bare array of availability rows (apib L28454-L28508), one row
        per product and location this change moved (vendor silent on which rows and how they are grouped)."""
        if not keys or self.hub is None or not self.hub.subscriptions:
            return

        def rows() -> list[dict]:
            out = []
            for product_id, location in sorted(keys):
                product = self.products.get(product_id, {})
                on_hand = self.stock.get((product_id, location), 0.0)
                out.append(
                    {
                        "ID": product_id,
                        "SKU": product.get("SKU"),
                        "Name": product.get("Name"),
                        "Barcode": product.get("Barcode"),
                        "Location": location,
                        "Bin": None,
                        "Batch": None,
                        "ExpiryDate": None,
                        "Category": product.get("Category"),
                        "OnHand": on_hand,
                        "Allocated": 0.0,
                        "Available": on_hand,
                        "OnOrder": 0.0,
                        "StockOnHand": money(on_hand * float(product.get("AverageCost", 0))),
                        "MaxRows": len(keys),
                    }
                )
            return out

        self.hub.cin7_event("Stock/AvailableStockLevelChanged", rows)

    def _apply_new_restocks(self, old: dict | None, new: dict) -> set[tuple[str, str]]:
        """Stock moves by the difference between the authorised restock lines before and after; returns the
        (product, location) pairs that moved."""

        def authorised(sale: dict | None) -> dict[tuple[str, str], float]:
            units: dict[tuple[str, str], float] = {}
            for note in (sale or {}).get("CreditNotes", []):
                if note.get("RestockStatus") != "AUTHORISED":
                    continue
                for line in note.get("Restock", []):
                    key = (line["ProductID"], line.get("RestockLocation") or line.get("Location"))
                    units[key] = units.get(key, 0.0) + float(line["Quantity"])
            return units

        before, after = authorised(old), authorised(new)
        moved = set()
        for key in set(before) | set(after):
            delta = after.get(key, 0.0) - before.get(key, 0.0)
            if delta:
                self.move_stock(key[0], key[1], delta)
                moved.add(key)
        return moved

    def add_transfer(self, transfer: dict, *, apply_stock: bool = True) -> None:
        self.transfers[transfer["TaskID"]] = transfer
        self._tr_seq = max(self._tr_seq, _seq(transfer.get("Number")))
        if apply_stock and transfer.get("Status") == "COMPLETED":
            moved = set()
            for line in transfer["Lines"]:
                self.move_stock(line["ProductID"], transfer["FromLocation"], -float(line["TransferQuantity"]))
                self.move_stock(line["ProductID"], transfer["ToLocation"], float(line["TransferQuantity"]))
                moved |= {(line["ProductID"], transfer["FromLocation"]), (line["ProductID"], transfer["ToLocation"])}
            self._announce_stock(moved)
        self.version += 1

    def next_credit_note_number(self) -> str:
        self._cn_seq += 1
        return f"CR-{self._cn_seq:05d}"

    def next_transfer_number(self) -> str:
        self._tr_seq += 1
        return f"TR-{self._tr_seq:05d}"

    def sales_updated_between(self, since: datetime | None, until: datetime | None) -> list[str]:
        lo = 0 if since is None else bisect.bisect_left(self._sales_by_updated, (since, ""))
        hi = len(self._sales_by_updated)
        if until is not None:
            hi = bisect.bisect_right(self._sales_by_updated, (until, "\uffff"))
        return [sale_id for _, sale_id in self._sales_by_updated[lo:hi]]


def _seq(number: str | None) -> int:
    if not number or "-" not in number:
        return 0
    tail = number.rsplit("-", 1)[1]
    return int(tail) if tail.isdigit() else 0


def sale_list_row(sale: dict) -> dict:
    invoices = sale.get("Invoices", [])
    notes = sale.get("CreditNotes", [])
    invoice_total = sum(i.get("Total", 0) for i in invoices)
    credited = sum(n.get("Total", 0) for n in notes if n.get("Status") == "AUTHORISED")
    return {
        "SaleID": sale["ID"],
        "OrderNumber": sale.get("Order", {}).get("SaleOrderNumber"),
        "Status": sale.get("Status"),
        "OrderDate": sale.get("SaleOrderDate"),
        "InvoiceDate": invoices[0].get("InvoiceDate") if invoices else None,
        "Customer": sale.get("Customer"),
        "CustomerID": sale.get("CustomerID"),
        "InvoiceNumber": invoices[0].get("InvoiceNumber") if invoices else None,
        "CustomerReference": sale.get("CustomerReference"),
        "InvoiceAmount": money(invoice_total - credited),
        "PaidAmount": money(sum(i.get("Paid", 0) for i in invoices)),
        "BaseCurrency": sale.get("BaseCurrency"),
        "CustomerCurrency": sale.get("CustomerCurrency"),
        "CreditNoteNumber": notes[-1].get("CreditNoteNumber") if notes else None,
        "Updated": cin7_ts(require_ts(sale["LastModifiedOn"]), sale["ID"]),
        "OrderStatus": sale.get("Order", {}).get("Status"),
        "CombinedInvoiceStatus": "INVOICED / CREDITED" if notes else ("INVOICED" if invoices else "NOT INVOICED"),
        "CreditNoteStatus": notes[-1].get("Status") if notes else "NOT AVAILABLE",
        "Type": sale.get("Type"),
        "SourceChannel": sale.get("SourceChannel"),
        "ExternalID": sale.get("ExternalID"),
        "OrderLocationID": sale.get("OrderLocationID"),
    }


def credit_note_list_row(sale: dict, note: dict, with_restock_status: bool = True) -> dict:
    """A note's ``saleCreditNoteList`` row: the sale list's fields, the note's number and status and
    (apib L20649) its restock state."""
    row = sale_list_row(sale)
    row.update({"CreditNoteNumber": note.get("CreditNoteNumber"), "CreditNoteStatus": note.get("Status")})
    if with_restock_status:
        row["RestockStatus"] = note.get("RestockStatus") or "NOT AVAILABLE"
    return row


def credit_note_list_rows(sale: dict) -> list[dict]:
    return [credit_note_list_row(sale, note) for note in sale.get("CreditNotes", [])]


class Cin7App(ServiceApp):
    name = "cin7"

    def __init__(self, world, faults, account_id: str, application_key: str) -> None:
        self.account_id = account_id
        self.application_key = application_key
        self._orderings: OrderedDict[tuple, list[str]] = OrderedDict()
        super().__init__(world, faults)

    @property
    def state(self) -> Cin7State:
        return self.world.cin7

    def register(self) -> None:
        base = "/externalapi/v2"
        self.route(f"{base}/salelist", "saleList", self.sale_list, ["GET"])
        self.route(f"{base}/sale", "sale", self.get_sale, ["GET"])
        self.route(f"{base}/salecreditnotelist", "saleCreditNoteList", self.credit_note_list, ["GET"])
        self.route(f"{base}/sale/creditnote", "sale/creditnote", self.credit_note, ["GET", "POST"])
        self.route(f"{base}/product", "product", self.product_list, ["GET"])
        self.route(f"{base}/ref/location", "ref/location", self.location_list, ["GET"])
        self.route(f"{base}/ref/productavailability", "ref/productavailability", self.availability, ["GET"])
        self.route(f"{base}/stocktransfer", "stockTransfer", self.stock_transfer, ["GET", "POST"])
        self.route(f"{base}/stocktransferlist", "stockTransferList", self.transfer_list, ["GET"])
        self.route(f"{base}/webhooks", "webhooks", self.webhooks, ["GET", "POST", "PUT", "DELETE"])

    def app(self, admin_routes: list[Route]) -> ASGIApp:
        inner = self.starlette(admin_routes)

        async def case_insensitive(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http":
                path = scope["path"]
                if not path.startswith("/_sim"):
                    scope = dict(scope, path=path.lower(), raw_path=path.lower().encode())
            await inner(scope, receive, send)

        inner.add_exception_handler(404, lambda request, exc: HTMLResponse(HTML_PAGE, status_code=200))
        return case_insensitive

    async def webhooks(self, request: Request) -> Response:
        return await _webhooks(self, request)

    # --- protocol --------------------------------------------------------------------------
    def authenticate(self, request: Request) -> Response | None:
        if (
            request.headers.get("api-auth-accountid") != self.account_id
            or request.headers.get("api-auth-applicationkey") != self.application_key
        ):
            return self.error(403, "Method authentication failed")
        return None

    def budget_key(self, request: Request) -> str:
        return request.headers.get("api-auth-applicationkey", "")

    def error(self, status: int, message: str) -> Response:
        return JSONResponse([{"ErrorCode": status, "Exception": message}], status_code=status)

    def throttled(self) -> Response:
        form = self.faults.config.throttle_form
        if form == "400":
            return self.error(400, "You have reached 60 calls per 60 seconds API limit.")
        return self.error(int(form), "You reached 60 calls per minute API limit")

    @staticmethod
    def params(request: Request) -> dict[str, str]:
        return {k.lower(): v for k, v in request.query_params.items()}

    def _paging(self, params: dict[str, str]) -> tuple[int, int] | Response:
        try:
            page = int(params.get("page", "1"))
            limit = int(params.get("limit", "100"))
        except ValueError:
            return self.error(400, "Page and Limit must be integers")
        if page < 1 or not 1 <= limit <= MAX_LIMIT:
            return self.error(400, f"Limit must be between 1 and {MAX_LIMIT}")
        return page, limit

    def _page(self, endpoint: str, params: dict[str, str], keys: list[str], render, list_key: str) -> Response:
        paging = self._paging(params)
        if isinstance(paging, Response):
            return paging
        page, limit = paging
        query = tuple(sorted((k, v) for k, v in params.items() if k not in {"page"}))
        signature = (self.world.generation, endpoint, query, self.state.version)
        ordered = self._orderings.get(signature)
        if ordered is None:
            ordered = sorted(keys, key=_order_key)
            self._orderings[signature] = ordered
            while len(self._orderings) > 64:
                self._orderings.popitem(last=False)
        offset = (page - 1) * limit
        if page > 1 and self.faults.chance(self.faults.config.shift_rate, "shift"):
            offset += -1 if self.faults.pick(2) else 1  # a row moved between page requests
        rows = [render(key) for key in ordered[max(offset, 0) : offset + limit]]
        if rows and self.faults.chance(self.faults.config.duplicate_rate, "duplicate"):
            rows.insert(self.faults.pick(len(rows)), rows[self.faults.pick(len(rows))])
        return JSONResponse({"Total": len(ordered), "Page": page, list_key: rows})

    def _dates(self, params: dict[str, str]) -> tuple[datetime | None, datetime | None] | Response:
        try:
            return parse_ts(params.get("updatedsince")), parse_ts(params.get("updateduntil"))
        except ValueError:
            return self.error(400, "UpdatedSince must be a date in yyyy-MM-ddTHH:mm:ss format")

    # --- sales -------------------------------------------------------------------------------
    def _malformed(self, sale: dict) -> dict:
        if self.faults.is_malformed("cin7:" + sale["ID"]):
            broken = copy.deepcopy(sale)
            broken["Invoices"] = "INV-???"
            broken["BaseCurrency"] = None
            return broken
        return sale

    def sale_list(self, request: Request) -> Response:
        params = self.params(request)
        dates = self._dates(params)
        if isinstance(dates, Response):
            return dates
        ids = self.state.sales_updated_between(*dates)
        if params.get("externalid"):  # declared (L20459); CustomerReference is not a filter (L20440-L20462)
            ids = [i for i in ids if self.state.sales[i].get("ExternalID") == params["externalid"]]
        if params.get("search"):
            needle = params["search"].lower()
            ids = [i for i in ids if needle in _searchable(self.state.sales[i])]

        def render(sale_id: str) -> dict:
            row = sale_list_row(self.state.sales[sale_id])
            if self.faults.is_malformed("cin7:" + sale_id):
                row["CustomerCurrency"] = None
                row["Updated"] = "31/02/2026"
            return row

        return self._page("saleList", params, ids, render, "SaleList")

    def get_sale(self, request: Request) -> Response:
        sale = self.state.sales.get(self.params(request).get("id", ""))
        if sale is None:
            return self.error(404, "Sale not found")
        body = dict(self._malformed(sale))
        body["LastModifiedOn"] = cin7_ts(require_ts(sale["LastModifiedOn"]), sale["ID"])
        if isinstance(body.get("CreditNotes"), list):
            body["CreditNotes"] = [served_note(n, on_sale=True) for n in body["CreditNotes"]]
        return JSONResponse(body)

    def credit_note_list(self, request: Request) -> Response:
        """One row per credit note: the sale list's fields with the note's number and status, and the
        restock state of the note (``RestockStatus``, apib L20649/L20683)."""
        params = self.params(request)
        dates = self._dates(params)
        if isinstance(dates, Response):
            return dates
        sales = self.state.sales
        keys = [
            f"{sale_id}|{index}"
            for sale_id in self.state.sales_updated_between(*dates)
            for index, _ in enumerate(sales[sale_id].get("CreditNotes", []))
        ]

        def note_of(key: str) -> tuple[dict, dict]:
            sale_id, index = key.split("|")
            return sales[sale_id], sales[sale_id]["CreditNotes"][int(index)]

        if params.get("creditnotestatus"):
            keys = [k for k in keys if note_of(k)[1].get("Status") == params["creditnotestatus"]]
        if params.get("status"):
            keys = [k for k in keys if note_of(k)[0].get("Status") == params["status"]]
        if params.get("search"):
            needle = params["search"].lower()
            keys = [k for k in keys if needle in _searchable(note_of(k)[0])]

        def render(key: str) -> dict:
            sale, note = note_of(key)
            return credit_note_list_row(sale, note, self.world.behaviour.cin7.credit_note_list_restock_status)

        return self._page("saleCreditNoteList", params, keys, render, "SaleList")

    async def credit_note(self, request: Request) -> Response:
        if request.method == "GET":
            sale = self.state.sales.get(self.params(request).get("saleid", ""))
            if sale is None:
                return self.error(404, "Sale not found")
            notes = [served_note(n) for n in sale.get("CreditNotes", [])]
            return JSONResponse({"SaleID": sale["ID"], "CreditNotes": notes})
        body = await read_json(request)
        if not isinstance(body, dict):
            return self.error(400, "Request body must be a JSON object")
        return self._post_credit_note(body)

    def _post_credit_note(self, body: dict) -> Response:
        body = {k: v for k, v in body.items() if k in CREDIT_NOTE_POST_FIELDS}  # anything else is not read
        sale = self.state.sales.get(body.get("SaleID") or "")
        if sale is None:
            return self.error(400, "Sale not found")
        for field in ("TaskID", "CreditNoteInvoiceNumber", "Status", "CreditNoteDate"):
            if not body.get(field):
                return self.error(400, f"Missing {field}")
        if body["Status"] not in {"DRAFT", "AUTHORISED"}:
            return self.error(400, "Status must be DRAFT or AUTHORISED")
        invoice = next(
            (i for i in sale.get("Invoices", []) if i.get("InvoiceNumber") == body["CreditNoteInvoiceNumber"]),
            None,
        )
        if invoice is None:
            return self.error(400, f"Invoice {body['CreditNoteInvoiceNumber']} not found")
        if invoice.get("Status") not in {"AUTHORISED", "PAID"}:
            return self.error(400, "Credit note can be created only for AUTHORISED or PAID invoice")
        sale = copy.deepcopy(sale)
        notes = sale.setdefault("CreditNotes", [])
        if body["TaskID"] == ZERO_GUID:
            if sale.get("Type") == "Simple Sale" and notes:
                return self.error(400, "Simple Sale can have only one credit note")
            note: dict = {
                "TaskID": sale["ID"] if sale.get("Type") == "Simple Sale" else str(uuid.uuid4()),
                "CreditNoteNumber": self.state.next_credit_note_number(),
                "Status": "NOT AVAILABLE",
                "RestockStatus": "NOT AVAILABLE",
                "Lines": [],
                "Restock": [],
                "AdditionalCharges": [],
            }
            notes.append(note)
        else:  # apib L24691: any other TaskID names the note this POST changes (a DRAFT authorised: L24703-L24707)
            found = next((n for n in notes if n["TaskID"] == body["TaskID"]), None)
            if found is None:
                return self.error(400, f"Credit note task {body['TaskID']} not found")
            note = found
        if note["Status"] not in {"DRAFT", "NOT AVAILABLE"}:  # apib L24689
            return self.error(400, f"Credit Note with status {note['Status']} cannot be changed")
        lines = self._credit_lines(body.get("Lines") or [])
        if isinstance(lines, Response):
            return lines
        note["Lines"] = lines
        note["Status"] = body["Status"]
        if "Restock" in body:  # vendor silent on an omitted array: the lines already there stay
            restock = self._restock_lines(body["Restock"] or [])
            if isinstance(restock, Response):
                return restock
            note["Restock"] = restock
        if note["Restock"]:
            with_note = self.world.behaviour.cin7.restock_authorised_with_note and note["Status"] == "AUTHORISED"
            if with_note or note.get("RestockStatus") != "AUTHORISED":
                note["RestockStatus"] = "AUTHORISED" if with_note else "DRAFT"
        else:
            note["RestockStatus"] = "NOT AVAILABLE"
        for field in ("Memo", "CreditNoteDate", "CreditNoteInvoiceNumber", "CombineAdditionalCharges"):
            if field in body:
                note[field] = body[field]
        note["CreditNoteConversionRate"] = body.get("CreditNoteConversionRate", 1)
        before_tax = sum(Decimal(str(line["Total"])) for line in note["Lines"])
        tax = sum(Decimal(str(line["Tax"])) for line in note["Lines"])
        note.update({"TotalBeforeTax": money(before_tax), "Tax": money(tax), "Total": money(before_tax + tax)})
        self.state.upsert_sale(sale, touched_at=self.world.clock.now())
        return JSONResponse({"SaleID": sale["ID"], "CreditNotes": [served_note(note)]})  # apib L24750-L24760

    def _credit_lines(self, lines: list) -> list[dict] | Response:
        result = []
        for line in lines:
            product = self._product(line)
            if product is None:
                return self.error(400, f"Product {line.get('SKU') or line.get('ProductID')} not found")
            quantity = Decimal(str(line.get("Quantity", 0)))
            if quantity <= 0:
                return self.error(400, "Quantity must be greater than zero")
            price = Decimal(str(line.get("Price", 0)))
            discount = Decimal(str(line.get("Discount", 0)))
            total = (quantity * price * (1 - discount / 100)).quantize(CENT, ROUND_HALF_UP)
            if "Total" in line and abs(Decimal(str(line["Total"])) - total) > CENT:
                return self.error(400, f"Line total for {product['SKU']} is incorrect")
            result.append(
                {
                    **{k: v for k, v in line.items() if k in LINE_FIELDS},
                    "ProductID": product["ID"],
                    "SKU": product["SKU"],
                    "Name": line.get("Name") or product["Name"],
                    "Quantity": float(quantity),
                    "Price": float(price),
                    "Discount": float(discount),
                    "Total": float(total),
                    "Tax": money(line.get("Tax", 0)),
                }
            )
        return result

    def _restock_lines(self, lines: list) -> list[dict] | Response:
        """apib L30638: Location or LocationID required; RestockLocation(ID) optional (the stock then
        comes back where it was picked, unless ``require_restock_location``); Quantity at least 1."""
        result = []
        for line in lines:
            if not isinstance(line, dict):
                return self.error(400, "Restock lines must be objects")
            product = self._product(line)
            if product is None:
                return self.error(400, f"Product {line.get('SKU') or line.get('ProductID')} not found")
            location = self.state.location_name(line.get("LocationID"), line.get("Location"))
            if location is None:
                return self.error(404, "Location was not found in Locations reference book")
            named_restock = line.get("RestockLocationID") or line.get("RestockLocation")
            if named_restock:
                restock_to = self.state.location_name(line.get("RestockLocationID"), line.get("RestockLocation"))
                if restock_to is None:
                    return self.error(404, "Location was not found in Locations reference book")
            elif self.world.behaviour.cin7.require_restock_location:
                return self.error(400, "Missing RestockLocation")
            else:
                restock_to = location
            quantity = Decimal(str(line.get("Quantity", 0)))
            if quantity < 1:
                return self.error(400, "Quantity must be at least 1")
            result.append(
                {
                    **{k: v for k, v in line.items() if k in RESTOCK_FIELDS},
                    "ProductID": product["ID"],
                    "SKU": product["SKU"],
                    "Name": line.get("Name") or product["Name"],
                    "Location": location,
                    "LocationID": self.state.location_id(location),
                    "RestockLocation": restock_to,
                    "RestockLocationID": self.state.location_id(restock_to),
                    "Quantity": float(quantity),
                }
            )
        return result

    def _product(self, line: dict) -> dict | None:
        if line.get("ProductID") in self.state.products:
            return self.state.products[line["ProductID"]]
        return next((p for p in self.state.products.values() if p["SKU"] == line.get("SKU")), None)

    # --- reference data ------------------------------------------------------------------------
    def product_list(self, request: Request) -> Response:
        params = self.params(request)
        products = self.state.products
        keys = list(products)
        if params.get("id"):
            keys = [k for k in keys if k == params["id"]]
        if params.get("sku"):  # the real filter is fuzzy: contains, any case
            needle = params["sku"].lower()
            keys = [k for k in keys if needle in products[k]["SKU"].lower()]
        return self._page("product", params, keys, lambda k: products[k], "Products")

    def location_list(self, request: Request) -> Response:
        params = self.params(request)
        locations = self.state.locations
        keys = [k for k in locations if locations[k]["Name"].startswith(params.get("name", ""))]
        return self._page("ref/location", params, keys, lambda k: locations[k], "LocationList")

    def availability(self, request: Request) -> Response:
        params = self.params(request)
        state = self.state
        keys = [f"{pid}|{loc}" for (pid, loc) in sorted(state.stock) if pid in state.products]
        if params.get("sku"):
            needle = params["sku"].lower()
            keys = [k for k in keys if needle in state.products[k.split("|")[0]]["SKU"].lower()]
        if params.get("location"):
            keys = [k for k in keys if k.split("|", 1)[1] == params["location"]]

        def render(key: str) -> dict:
            product_id, location = key.split("|", 1)
            product = state.products[product_id]
            on_hand = state.stock[(product_id, location)]
            return {
                "ID": product_id,
                "SKU": product["SKU"],
                "Name": product["Name"],
                "Barcode": product.get("Barcode"),
                "Location": location,
                "Bin": None,
                "Batch": None,
                "ExpiryDate": None,
                "OnHand": on_hand,
                "Allocated": 0.0,
                "Available": on_hand,
                "OnOrder": 0.0,
                "StockOnHand": money(on_hand * float(product.get("AverageCost", 0))),
                "InTransit": 0.0,
                "NextDeliveryDate": None,
            }

        return self._page("ref/productavailability", params, keys, render, "ProductAvailabilityList")

    # --- stock transfers -------------------------------------------------------------------------
    async def stock_transfer(self, request: Request) -> Response:
        if request.method == "GET":
            transfer = self.state.transfers.get(self.params(request).get("taskid", ""))
            if transfer is None:
                return self.error(404, "Stock transfer not found")
            return JSONResponse(transfer)
        body = await read_json(request)
        if not isinstance(body, dict):
            return self.error(400, "Request body must be a JSON object")
        return self._post_transfer(body)

    def _post_transfer(self, body: dict) -> Response:
        state = self.state
        source = state.location_name(body.get("From"), body.get("FromLocation"))
        target = state.location_name(body.get("To"), body.get("ToLocation"))
        if source is None or target is None:
            return self.error(404, "Location was not found in Locations reference book")
        status = body.get("Status")
        if status not in {"DRAFT", "IN TRANSIT", "COMPLETED"}:
            return self.error(400, "Status must be DRAFT, IN TRANSIT or COMPLETED")
        if not body.get("CompletionDate"):  # apib L26409
            return self.error(400, "Missing CompletionDate")
        lines = []
        for line in body.get("Lines") or []:
            product = self._product(line)
            quantity = float(line.get("TransferQuantity") or 0)
            if product is None:
                return self.error(400, f"Product {line.get('SKU') or line.get('ProductID')} not found")
            if quantity <= 0:
                return self.error(400, "TransferQuantity must be greater than zero")
            if status == "COMPLETED" and state.stock.get((product["ID"], source), 0.0) < quantity:
                return self.error(400, f"Not enough available quantity of {product['SKU']} at {source}")
            lines.append({**line, "ProductID": product["ID"], "SKU": product["SKU"], "TransferQuantity": quantity})
        if not lines:
            return self.error(400, "Lines are required")
        now = self.world.clock.now()
        transfer = {
            **body,
            "TaskID": str(uuid.uuid4()),
            "Number": state.next_transfer_number(),
            "From": next(k for k, v in state.locations.items() if v["Name"] == source),
            "FromLocation": source,
            "To": next(k for k, v in state.locations.items() if v["Name"] == target),
            "ToLocation": target,
            "Lines": lines,
            "CompletionDate": body["CompletionDate"],
            "LastModifiedOn": cin7_ts(now, "transfer"),
        }
        state.add_transfer(transfer)
        return JSONResponse(transfer)

    def transfer_list(self, request: Request) -> Response:
        params = self.params(request)
        transfers = self.state.transfers
        keys = list(transfers)
        if params.get("status"):
            keys = [k for k in keys if transfers[k].get("Status") == params["status"].upper()]
        if params.get("search"):  # apib L26299: only these fields are searched
            needle = params["search"].lower()
            fields = self.world.behaviour.cin7.transfer_search_fields
            keys = [k for k in keys if any(needle in str(transfers[k].get(f) or "").lower() for f in fields)]

        def render(key: str) -> dict:
            t = transfers[key]
            return {
                f: t.get(f)
                for f in (
                    "TaskID",
                    "From",
                    "FromLocation",
                    "To",
                    "ToLocation",
                    "Status",
                    "Number",
                    "CompletionDate",
                    "CostDistributionType",
                    "DepartureDate",
                    "Reference",
                    "LastModifiedOn",
                )
            }

        return self._page("stockTransferList", params, keys, render, "StockTransferList")


def served_note(note: dict, on_sale: bool = False) -> dict:
    """A credit note as GET /sale (``on_sale``) or /sale/creditnote serves it: never the restock state."""
    hidden = INTERNAL_NOTE_FIELDS + (ONLY_ON_CREDIT_NOTE_ENDPOINT if on_sale else ONLY_ON_SALE)
    return {k: v for k, v in note.items() if k not in hidden}


def _searchable(sale: dict) -> str:
    invoices = sale.get("Invoices") or []
    parts = [
        sale.get("Order", {}).get("SaleOrderNumber"),
        sale.get("Status"),
        sale.get("Customer"),
        sale.get("CustomerReference"),
        *(i.get("InvoiceNumber") for i in invoices if isinstance(i, dict)),
        *(n.get("CreditNoteNumber") for n in sale.get("CreditNotes", [])),
    ]
    return " ".join(str(p) for p in parts if p).lower()


def _webhooks_answer(subscriptions: list) -> Response:
    return JSONResponse({"Webhooks": [s.cin7_view() for s in subscriptions]})  # apib L28716, L28774, L28837


async def _webhooks(app: Cin7App, request: Request) -> Response:
    """apib L27935-L28888: GET lists every webhook, POST creates (at most 5 of one type, L27916), PUT (``ID``
    required, L27940) changes one (the other fields kept when omitted: vendor silent), DELETE ``?ID=`` removes
    one and answers ``{"Webhooks": []}`` (L28880-L28884). Validation messages are vendor silent."""
    hub = app.world.webhooks
    if request.method == "GET":
        return _webhooks_answer(hub.listing("cin7"))
    if request.method == "DELETE":
        if not hub.delete("cin7", app.params(request).get("id", "")):
            return app.error(400, "Webhook not found")
        return JSONResponse({"Webhooks": []})
    body = await read_json(request)
    if not isinstance(body, dict):
        return app.error(400, "Request body must be a JSON object")
    existing = None
    if request.method == "PUT":
        existing = next((s for s in hub.listing("cin7") if s.id == body.get("ID")), None)
        if existing is None:
            return app.error(400, "Missing ID" if not body.get("ID") else "Webhook not found")
    fields = cin7_webhook_fields(body, existing)
    if isinstance(fields, str):
        return app.error(400, fields)
    webhook_type = fields["types"][0]
    if hub.count_of_type(webhook_type, but=existing.id if existing else None) >= CIN7_MAX_PER_TYPE:
        return app.error(400, f"There is a limit of {CIN7_MAX_PER_TYPE} webhooks of the same type ({webhook_type})")
    if existing is not None:
        updated = hub.update(existing.id, **fields)
        return _webhooks_answer([updated] if updated else [])
    return _webhooks_answer([hub.subscribe("cin7", **fields)])
