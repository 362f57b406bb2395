"""Data minimisation by allow-list: a stored payload keeps only the fields the pipeline reads.

The APIs send customers' names, e-mail addresses, phone numbers, postal addresses, national ids
(Sitoo ``personalid``), companies, bank details and free-text notes alongside what we need. The raw
tables (``raw.api_records``, ``raw.quarantine``) keep, per entity, only the fields declared in
``ALLOWED`` below: what the staging loads read (the pydantic models in ``returns_recon.models``), plus
what the postings read back from the stored Cin7 Core sale (``postings/sale_view.py``,
``postings/actions/credit_note.py``). Everything else is dropped, at any depth; an entity without a declared list
cannot be stored at all (``UndeclaredEntity``). ``tests/unit/test_privacy_allowlist.py`` compares each list
with its model, so a field added to a model (to staging) without being allowed here fails a test.

A quarantined (invalid) payload keeps its allowed fields too, plus the *names* of the keys dropped from
it (``_dropped_keys``), never their values: enough to see why a record was refused.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

KEEP = True
DROPPED_KEYS = "_dropped_keys"  # in a quarantined payload: the paths of the keys dropped from it
MAX_DROPPED_NAMES = 200
MAX_NAME_LENGTH = 120

# A shape: {key: KEEP (a scalar value), a nested shape (an object) or [shape] (a list of objects)}
Shape = dict[str, Any]


class UndeclaredEntity(KeyError):
    """A payload of an entity with no allow-list: it is not stored (declare its fields in ``ALLOWED``)."""


def fields(keep: str, **nested: Any) -> Shape:
    """A shape: the space-separated scalar fields of ``keep`` and the nested objects or lists."""
    return {**dict.fromkeys(keep.split(), KEEP), **nested}


_CIN7_LINE = fields("ProductID SKU Name Quantity Price Discount Tax Total TaxRule")
# a restock line as the credit-note POST model has it (apib L30638): the credit-note action copies the lines of
# our DRAFT note from the stored sale when it completes the note (postings/actions/credit_note.py)
_CIN7_RESTOCK = fields(
    "ProductID SKU Name Location LocationID Quantity BatchSN ExpiryDate RestockLocation RestockLocationID RestockDate"
)

ALLOWED: dict[tuple[str, str], Shape] = {
    ("reveni", "returns"): fields(
        "id type instant status amount currency refund_method received_at created_at updated_at",
        order=fields("id external_id"),
        return_point=fields("id type name"),
        return_items=[
            fields(
                "item_id sku name quantity price return_reason validation_status restock validated_at",
                exchange=fields("sku"),
            )
        ],
        refunds=[fields("id amount currency status method refunded_at")],
    ),
    ("cin7", "sale_list"): fields(
        "SaleID OrderNumber Status CustomerReference ExternalID CustomerCurrency BaseCurrency Type OrderStatus "
        "CreditNoteNumber SourceChannel OrderDate Updated"
    ),
    ("cin7", "credit_note_list"): fields("SaleID CreditNoteNumber CreditNoteStatus RestockStatus Type Updated"),
    ("cin7", "sales"): fields(
        "ID CustomerReference ExternalID Status Type Location TaxCalculation BaseCurrency CustomerCurrency "
        "SourceChannel SaleOrderDate LastModifiedOn",
        Order=fields("SaleOrderNumber Status", Lines=[_CIN7_LINE]),
        Invoices=[fields("InvoiceNumber Status", Lines=[_CIN7_LINE])],
        CreditNotes=[
            fields(
                "TaskID CreditNoteNumber CreditNoteInvoiceNumber Memo Status CreditNoteDate TotalBeforeTax Tax Total",
                Lines=[_CIN7_LINE],
                Restock=[_CIN7_RESTOCK],
            )
        ],
    ),
    ("cin7", "stock_transfers"): fields(
        "TaskID Number Status FromLocation ToLocation Reference CompletionDate LastModifiedOn"
    ),
    ("cin7", "products"): fields("ID SKU Name Status Type"),
    ("cin7", "locations"): fields("ID Name IsDeprecated"),
    ("cin7", "availability"): fields("ID SKU Location Bin Batch OnHand Allocated Available"),
    ("sitoo", "products"): fields("productid sku title activepos"),
    ("sitoo", "warehouses"): fields("warehouseid warehousetype usetype storeid sellable name externalid"),
    ("sitoo", "stores"): fields("storeid name externalid"),
    ("sitoo", "warehouse_items"): fields("warehouseid sku decimaltotal decimalavailable datelastmodified"),
    ("sitoo", "warehouse_transactions"): fields(
        "warehousetransactionid warehouseid transactiontype externalid description reasoncode datecreated",
        items=[fields("sku decimalquantity")],
    ),
    ("sitoo", "orders"): fields(
        "orderid externalid creditorderid orderdate orderstateid paymentstateid ordertypeid warehouseid currencycode "
        "moneytotal_gross_all",
        orderitems=[fields("sku productname quantity moneyitemtotal_net moneyitemtotal_vat")],
        payments=[fields("name moneyamount")],
        # free-form in Sitoo (CRM ids, staff names, refund comments): only what our own refund orders write
        additionaldata=fields("reveni-return-id source"),
    ),
    # the merchant's location map (returns_recon/location_map.py COLUMNS): invalid rows are quarantined
    ("merchant", "location_map"): fields(
        "return_point_id return_point_name kind sitoo_warehouse_id cin7_holding_location cin7_sellable_location"
    ),
}


# Webhook events as stored in raw.webhook_inbox (returns_recon.webhooks), per source: what the events DAG needs to
# know which returns and sales changed. Reveni's envelope (reference/reveni_api.md §1 "Webhooks") may carry the
# return itself in data.object: it keeps what a polled return keeps. Cin7 Core's events (apib L28000-L28520) carry
# CustomerName, CustomerContactName, CustomerContactEmail, SaleRepEmail, tracking numbers, free-text Changes: only
# the document ids and numbers are kept; Stock/AvailableStockLevelChanged posts a bare array of availability rows,
# each kept as a polled availability row is.
WEBHOOK_ALLOWED: dict[str, Shape] = {
    "reveni": fields(
        "id event created",
        data=fields("resource resource_id status amount currency", object=ALLOWED["reveni", "returns"]),
    ),
    "cin7": {
        **fields(
            "EventType SaleID SaleTaskID TaskID TenantID SaleOrderNumber OrderNumber CreditNoteNumber InvoiceNumber "
            "DocumentNumber DocumentType"
        ),
        **ALLOWED["cin7", "availability"],
    },
}


def allowed(source: str, entity: str) -> Shape:
    try:
        return ALLOWED[source, entity]
    except KeyError:
        raise UndeclaredEntity(
            f"{source}.{entity}: no allow-list in returns_recon.privacy.ALLOWED; "
            "nothing of it is stored until its fields are declared"
        ) from None


def digest(shape: Shape) -> str:
    """A fingerprint of an allow-list: stored payloads are minimised again when it changes."""
    return hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:16]


def _filter(value: Any, shape: Any, path: str, dropped: list[str]) -> Any:
    """``value`` with only what ``shape`` allows. An allowed key keeps a scalar value whatever its shape
    says (an invalid payload may hold one where an object belongs); objects keep their allowed keys only,
    and an object where a scalar belongs keeps none."""
    if isinstance(shape, list):  # a list of objects (or, in an invalid payload, one object alone)
        shape = shape[0]
    if isinstance(value, dict):
        nested = shape if isinstance(shape, dict) else {}
        kept = {}
        for key, item in value.items():
            name = f"{path}.{key}" if path else str(key)
            if key in nested:
                kept[key] = _filter(item, nested[key], name, dropped)
            else:
                dropped.append(name)
        return kept
    if isinstance(value, list):
        return [_filter(item, shape, f"{path}[]", dropped) for item in value]
    return value


def minimise(payload: Any, shape: Shape) -> Any:
    """A copy of ``payload`` with only the allowed fields, at every depth."""
    return _filter(payload, shape, "", [])


def minimise_invalid(payload: Any, shape: Shape) -> dict[str, Any]:
    """An invalid payload as quarantined: its allowed fields and the names of the keys dropped from it."""
    dropped: list[str] = []
    earlier = payload.get(DROPPED_KEYS) if isinstance(payload, dict) else None
    if isinstance(payload, dict):
        payload = {k: v for k, v in payload.items() if k != DROPPED_KEYS}
    kept = _filter(payload, shape, "", dropped)
    if not isinstance(kept, dict):
        kept = {"_payload_type": type(payload).__name__}  # not an object: its values are not kept
    if isinstance(earlier, list):  # minimised before (under an earlier allow-list)
        dropped += [name for name in earlier if isinstance(name, str)]
    names = sorted({name[:MAX_NAME_LENGTH] for name in dropped})
    if names:
        kept[DROPPED_KEYS] = names[:MAX_DROPPED_NAMES]
    return kept
