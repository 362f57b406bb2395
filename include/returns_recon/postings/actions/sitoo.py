"""``sitoo_store_stock`` (a warehouse transaction restocking a store) and ``sitoo_return_record`` (the refund
order of a return), both found again by their ``externalid``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.rows import class_row

from returns_recon import references
from returns_recon.apis.errors import ApiError, TransientError
from returns_recon.postings.actions.base import PostingAction
from returns_recon.postings.model import NOT_FOUND, Candidate, Context, Planned, Posting, ReadBack, Sent, posting_key
from returns_recon.settings import ReconSettings

PAGE = 1000

RETURNED_ITEMS = """
SELECT i.sku, i.name, i.quantity, i.unit_price FROM staging.stg_reveni__return_items i
JOIN staging.stg_reveni__returns r USING (return_id)
WHERE i.return_id = %(return_id)s AND i.exchange_sku IS NULL AND (r.is_instant OR i.validation_status = 'accepted')
ORDER BY i.line_no
"""


@dataclass(frozen=True)
class ReturnedItem:
    """A returned item the refund order carries (a row of ``RETURNED_ITEMS``)."""

    sku: str
    name: str | None
    quantity: int
    unit_price: Decimal | None


def bulk_element(response: Any) -> Any:
    """The answer to a one-element Sitoo write: a bare id, or a batch envelope ``[{statuscode, return}]``
    (schemas/batchResponse.yaml). An element's 5xx or 429 is transient, like the same status on the call:
    the posting is left ambiguous and its next attempt reads back first; any other non-2xx is final."""
    if not isinstance(response, list) or not response or not isinstance(response[0], dict):
        return response
    element = response[0]
    status = int(element.get("statuscode") or 0)
    if 200 <= status < 300:
        return element.get("return")
    if status == 429 or status >= 500:
        raise TransientError(f"sitoo answered {status} for the element: {str(element.get('return'))[:200]}")
    raise ApiError("sitoo", status, str(element.get("return")))


def created_id(response: Any) -> Sent:
    """Sitoo answers a create with the new id, bare."""
    return Sent(target_ref=str(response) if isinstance(response, int) else None)


class SitooStoreStock(PostingAction):
    """The units of a return validated at a store, put back in the store's Sitoo warehouse."""

    __slots__ = ()  # stateless (PostingAction)

    name = "sitoo_store_stock"
    system = "sitoo"
    fixes = ("sitoo_stock_missing",)

    def plan(
        self, conn: psycopg.Connection, candidate: Candidate, settings: ReconSettings, now: datetime
    ) -> Planned | None:
        return self.planned(candidate, settings.sitoo_restock_transaction_type, now)

    def planned(self, candidate: Candidate, transaction_type: int, now: datetime) -> Planned:
        warehouse = int(candidate.sitoo_warehouse_id)  # type: ignore[arg-type]  # mapped: the plan's join
        rid, iid = candidate.return_id, candidate.item_id
        reference = references.item_reference(rid, str(iid))
        payload = {
            "warehouseid": warehouse,
            "transactiontype": transaction_type,
            "externalid": reference,
            "description": f"Reveni return {rid[:8]} restock",
            "items": [{"sku": candidate.sku, "decimalquantity": f"{candidate.quantity:.3f}"}],
            "not_before": (candidate.validated_at or now).isoformat(),  # read back from a day before it
        }
        return Planned(
            posting_key=posting_key(self.name, rid, iid, str(warehouse)),
            action=self.name,
            system=self.system,
            exception_key=candidate.exception_key,
            return_id=rid,
            item_id=iid,
            reference=reference,
            payload=payload,
        )

    def read_back(self, ctx: Context, posting: Posting) -> ReadBack:
        sitoo, site = ctx.clients.sitoo_api()
        since = datetime.fromisoformat(posting.payload["not_before"]) - timedelta(days=1)
        path = f"sites/{site}/warehousetransactions.json"
        start = 0
        while True:
            params = {
                "warehouseid": posting.payload["warehouseid"],
                "sort": "warehousetransactionid",
                "datecreatedfrom": int(since.timestamp()),
                "start": start,
                "num": PAGE,
            }
            body = sitoo.get(path, params, label="warehousetransactions")
            for txn in body.get("items") or []:
                if txn.get("externalid") == posting.reference:
                    return ReadBack(target_ref=str(txn["warehousetransactionid"]))
            start += PAGE
            if start >= int(body.get("totalcount") or 0):
                return NOT_FOUND

    def prepare(self, ctx: Context, posting: Posting, found: ReadBack) -> list[dict[str, Any]]:
        return [self.transaction(posting.payload)]

    @staticmethod
    def transaction(payload: dict[str, Any]) -> dict[str, Any]:
        """The warehouse transaction as Sitoo reads it: the payload without our read-back hint."""
        return {k: v for k, v in payload.items() if k != "not_before"}

    def send(self, ctx: Context, posting: Posting, body: Any) -> Any:
        sitoo, site = ctx.clients.sitoo_api()
        path = f"sites/{site}/warehousetransactions.json"
        return bulk_element(sitoo.send("POST", path, json_body=body, label="warehousetransactions"))

    def sent(self, response: Any) -> Sent:
        return created_id(response)


class SitooReturnRecord(PostingAction):
    """The refund order of a return: negative quantities, ``externalid`` the return id, no payment."""

    __slots__ = ()  # stateless (PostingAction)

    name = "sitoo_return_record"
    system = "sitoo"
    fixes = ("sitoo_return_record_missing",)

    def plan(
        self, conn: psycopg.Connection, candidate: Candidate, settings: ReconSettings, now: datetime
    ) -> Planned | None:
        with conn.cursor(row_factory=class_row(ReturnedItem)) as cur:
            items = cur.execute(RETURNED_ITEMS, {"return_id": candidate.return_id}).fetchall()
        return self.planned(candidate, items, settings)

    def planned(self, candidate: Candidate, items: list[ReturnedItem], settings: ReconSettings) -> Planned:
        rid = candidate.return_id
        payload = {
            "ordertypeid": settings.sitoo_return_order_type_id,
            "orderstateid": settings.sitoo_return_order_state_id,
            "paymentstateid": settings.sitoo_return_payment_state_id,
            "externalid": rid,
            "warehouseid": int(candidate.sitoo_warehouse_id),  # type: ignore[arg-type]  # mapped: the plan's join
            "currencycode": candidate.currency,
            "payments": [],
            "additionaldata": {"reveni-return-id": rid, "source": "returns-recon"},
            "orderitems": [
                {
                    "productname": item.name or item.sku,
                    "sku": item.sku,
                    "quantity": -int(item.quantity),
                    "moneyrowprice": f"{item.unit_price or 0:.2f}",
                }
                for item in items
            ],
        }
        return Planned(
            posting_key=posting_key(self.name, rid, None, str(candidate.sitoo_warehouse_id)),
            action=self.name,
            system=self.system,
            exception_key=candidate.exception_key,
            return_id=rid,
            item_id=None,
            reference=rid,
            payload=payload,
            amount=candidate.refunded,
        )

    def read_back(self, ctx: Context, posting: Posting) -> ReadBack:
        sitoo, _ = ctx.clients.sitoo_api()
        body = sitoo.get("orders.json", {"externalid": posting.reference, "num": 10}, label="orders")
        items = body.get("items") or []
        return ReadBack(target_ref=str(items[0]["orderid"])) if items else NOT_FOUND

    def prepare(self, ctx: Context, posting: Posting, found: ReadBack) -> dict[str, Any]:
        return posting.payload

    def send(self, ctx: Context, posting: Posting, body: Any) -> Any:
        sitoo, site = ctx.clients.sitoo_api()
        path = f"sites/{site}/orders.json"
        return sitoo.send("POST", path, json_body=body, label="orders")

    def sent(self, response: Any) -> Sent:
        return created_id(response)
