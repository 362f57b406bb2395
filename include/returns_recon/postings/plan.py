"""The planner: open auto-fixable exceptions become postings in the outbox, each under a
deterministic idempotency key, before anything is sent."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import psycopg
from psycopg import sql

from returns_recon.apis.client import encode_json
from returns_recon.reconcile.models import tax_rate
from returns_recon.settings import ReconSettings

ZERO_GUID = "00000000-0000-0000-0000-000000000000"
# missing_restock is not here: Cin7 Core takes restock lines only on a credit note being created or
# still DRAFT (apib L24689); the credit note we create carries them, anything else is for a person.
ACTIONS = {
    "refund_without_credit_note": ("create_credit_note", "cin7"),
    "inspected_not_released": ("transfer_to_sellable", "cin7"),
    "premature_restock": ("transfer_to_holding", "cin7"),
    "rejected_item_in_sellable_stock": ("transfer_to_holding", "cin7"),
    "sitoo_stock_missing": ("sitoo_store_stock", "sitoo"),
    "sitoo_return_record_missing": ("sitoo_return_record", "sitoo"),
}
BLOCKING = ("sale_not_found", "unmapped_location", "unknown_sku_cin7", "unknown_sku_sitoo", "invalid_record")
# A credit note made by hand on a sale that no return can be attributed (operating-model.md §1, §3): no credit
# note of ours for any return of that sale while its unattributed_credit_note is open, as crediting again could
# credit the customer twice. The other postings of those returns go ahead. The sales are found by the shop's
# order number (few rows).
UNATTRIBUTED_SALES = """unattributed_sales AS (
    SELECT DISTINCT coalesce(ur.order_external_id, '') AS order_ref, u.exception_key
    FROM recon.exceptions u JOIN staging.stg_reveni__returns ur USING (return_id)
    WHERE u.exception_type = 'unattributed_credit_note' AND u.state IN ('open', 'acknowledged')
)"""
MATCH_COLUMNS = {"CustomerReference": "customer_reference", "ExternalID": "external_id", "OrderNumber": "order_number"}

CANDIDATES = f"""
WITH {UNATTRIBUTED_SALES}
SELECT e.exception_key, e.exception_type, e.return_id, e.item_id, i.sku, i.quantity, r.currency,
       r.order_external_id, r.return_point_id, m.cin7_holding_location, m.cin7_sellable_location,
       m.sitoo_warehouse_id, i.validated_at,
       (SELECT sum(f.amount) FROM staging.stg_reveni__refunds f WHERE f.return_id = e.return_id AND f.status = 'paid')
           AS refunded,
       s.sale_id, s.sale_type, s.location AS sale_location
FROM recon.exceptions e
JOIN staging.stg_reveni__returns r ON r.return_id = e.return_id
LEFT JOIN staging.stg_reveni__return_items i ON i.item_id = e.item_id
LEFT JOIN staging.dim_location_map m ON m.return_point_id = r.return_point_id
LEFT JOIN LATERAL (
    SELECT sale_id, sale_type, location FROM staging.stg_cin7__sales x
    WHERE x.{{match_column}} = r.order_external_id AND coalesce(x.external_id, '') NOT LIKE 'reveni-exchange:%%'
    ORDER BY sale_id LIMIT 1
) s ON true
WHERE e.state IN ('open', 'acknowledged') AND e.exception_type = ANY(%(types)s)
  AND NOT EXISTS (SELECT 1 FROM recon.exceptions b
                  WHERE b.return_id = e.return_id AND b.state IN ('open', 'acknowledged')
                    AND b.exception_type = ANY(%(blocking)s))
  -- no credit note for the returns of a sale (by the shop's order number) with an open unattributed note
  AND (e.exception_type <> 'refund_without_credit_note'
       OR coalesce(r.order_external_id, '') NOT IN (SELECT order_ref FROM unattributed_sales))
ORDER BY e.first_seen_at, e.exception_key
"""

# Credit notes of ours still waiting in the outbox (planned, or held for the go-live check) for a return
# whose sale is now blocked: set aside as skipped, re-planned by a later run once nothing blocks them.
# An ambiguous or sending one is left to the executor, whose next attempt reads back first.
SET_ASIDE = f"""
WITH {UNATTRIBUTED_SALES}
UPDATE recon.postings p
SET status = 'skipped', last_run_id = %(run_id)s, updated_at = now(),
    last_error = 'blocked: open ' || (SELECT string_agg(DISTINCT b.exception_key, ', ') FROM unattributed_sales b
                                      WHERE b.order_ref = coalesce(r.order_external_id, ''))
                 || ' on the sale; a credit note now could credit the customer twice'
FROM staging.stg_reveni__returns r
WHERE r.return_id = p.return_id AND p.action = 'create_credit_note' AND p.status IN ('planned', 'held')
  AND coalesce(r.order_external_id, '') IN (SELECT order_ref FROM unattributed_sales)
RETURNING p.posting_key, p.last_error
"""

# the line's rate as the reconciliation reads it (reconcile/models.py tax_rate): our note's tax is the one it expects
REFUNDED_LINES = (
    """
SELECT i.item_id, i.sku, i.quantity, l.product_id, l.name, l.price, l.discount, l.tax_rule, l.document,
       """
    + tax_rate("l.tax", "l.total")
    + """ AS rate
FROM staging.stg_reveni__return_items i
JOIN staging.stg_reveni__returns r USING (return_id)
JOIN LATERAL (
    SELECT * FROM staging.stg_cin7__sale_lines l
    WHERE l.sale_id = %(sale_id)s AND l.document <> 'order' AND l.sku = i.sku ORDER BY l.document, l.line_no LIMIT 1
) l ON true
WHERE i.return_id = %(return_id)s AND i.exchange_sku IS NULL AND (r.is_instant OR i.validation_status = 'accepted')
ORDER BY i.line_no
"""
)

# The returned units of a received warehouse return, restocked into holding by the credit note we create.
RESTOCK_LINES = """
SELECT i.sku, i.quantity, l.product_id, l.name, r.received_at
FROM staging.stg_reveni__return_items i
JOIN staging.stg_reveni__returns r USING (return_id)
JOIN staging.dim_location_map m ON m.return_point_id = r.return_point_id AND m.kind = 'warehouse'
JOIN LATERAL (
    SELECT product_id, name FROM staging.stg_cin7__sale_lines l
    WHERE l.sale_id = %(sale_id)s AND l.sku = i.sku ORDER BY l.document, l.line_no LIMIT 1
) l ON true
WHERE i.return_id = %(return_id)s AND r.received_at IS NOT NULL AND m.cin7_holding_location IS NOT NULL
ORDER BY i.line_no
"""


@dataclass
class Planned:
    posting_key: str
    action: str
    system: str
    exception_key: str
    return_id: str
    item_id: str | None
    reference: str
    payload: dict[str, Any]
    amount: Decimal | None = None


def stored_json(payload: dict[str, Any]) -> str:
    """The payload as the outbox keeps it: amounts stay JSON numbers, digit for digit, so the body sent
    from the outbox carries numbers where the vendor documents numbers."""
    return encode_json(payload).decode()


def posting_key(action: str, return_id: str, item_id: str | None, target: str) -> str:
    """Deterministic: from the action, the return, the item and the target; never time or randomness."""
    return hashlib.sha256(f"{action}|{return_id}|{item_id or '-'}|{target}".encode()).hexdigest()[:32]


def _money(value: Decimal) -> Decimal:
    # half up, as the sale's own lines are rounded (and the reconciliation's round()): the default half-even
    # put a cent less on a line whose tax ends in a half cent (77.86 at 25%: 19.465 -> 19.46, invoiced 19.47),
    # so the note we created was raised as credit_note_amount_mismatch against the refund
    return value.quantize(Decimal("0.01"), ROUND_HALF_UP)


def plan(conn: psycopg.Connection, run_id: str, settings: ReconSettings) -> list[Planned]:
    """Write the postings that open auto-fixable exceptions call for; return the new or re-planned ones."""
    query = sql.SQL(CANDIDATES).format(match_column=sql.Identifier(MATCH_COLUMNS[settings.sale_match_field]))
    rows = conn.execute(query, {"types": list(ACTIONS), "blocking": list(BLOCKING)}).fetchall()
    columns = [c.name for c in conn.execute(query, {"types": [], "blocking": []}).description]
    planned = []
    for values in rows:
        row = dict(zip(columns, values, strict=True))
        posting = _build(conn, row, settings)
        if posting is not None:
            planned.append(posting)
    with conn.transaction(), conn.cursor() as cur:
        for p in planned:
            cur.execute(
                """INSERT INTO recon.postings AS t (posting_key, action, system, exception_key, return_id, item_id,
                                                   reference, payload, amount, status, planned_run_id, last_run_id)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, 'planned', %s, %s)
                   ON CONFLICT (posting_key) DO UPDATE SET
                     status = CASE WHEN t.status IN ('dry_run', 'skipped', 'superseded') THEN 'planned'
                                   ELSE t.status END,
                     last_run_id = EXCLUDED.last_run_id, updated_at = now()
                   RETURNING (xmax = 0)""",
                (p.posting_key, p.action, p.system, p.exception_key, p.return_id, p.item_id, p.reference,
                 stored_json(p.payload), p.amount, run_id, run_id),
            )  # fmt: skip
            if cur.fetchone()[0]:
                cur.execute(
                    "INSERT INTO recon.posting_log (posting_key, run_id, step, request) VALUES (%s, %s, 'planned', %s)",
                    (p.posting_key, run_id, stored_json(p.payload)),
                )
        for key, reason in cur.execute(SET_ASIDE, {"run_id": run_id}).fetchall():
            cur.execute(
                "INSERT INTO recon.posting_log (posting_key, run_id, step, outcome, response) "
                "VALUES (%s, %s, 'outcome', 'skipped', %s)",
                (key, run_id, stored_json({"reason": reason})),
            )
    return planned


def _build(conn: psycopg.Connection, row: dict[str, Any], settings: ReconSettings) -> Planned | None:
    action, system = ACTIONS[row["exception_type"]]
    rid, iid = row["return_id"], row["item_id"]
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if system == "cin7" and row["sale_id"] is None:
        return None
    if action == "create_credit_note":
        lines = conn.execute(REFUNDED_LINES, {"sale_id": row["sale_id"], "return_id": rid}).fetchall()
        if not lines:
            return None
        body_lines, amount = [], Decimal(0)
        for _, sku, quantity, product_id, name, price, discount, tax_rule, _, rate in lines:
            total = _money(price * quantity * (1 - discount / 100))
            tax = _money(total * (rate or 0))
            amount += total + tax
            body_lines.append({"ProductID": product_id, "SKU": sku, "Name": name, "Quantity": quantity,
                               "Price": price, "Discount": discount, "Tax": tax, "Total": total,
                               "TaxRule": tax_rule})  # fmt: skip
        approval = amount > settings.credit_note_approval_threshold
        payload = {
            "SaleID": row["sale_id"], "TaskID": ZERO_GUID, "CombineAdditionalCharges": False,
            "CreditNoteInvoiceNumber": lines[0][8], "Memo": f"reveni:{rid}",
            "Status": "DRAFT" if approval else "AUTHORISED", "CreditNoteDate": now, "Lines": body_lines,
        }  # fmt: skip
        restock = _restock_lines(conn, row)
        if restock:
            payload["Restock"] = restock
        target = row["sale_id"]
        return Planned(posting_key(action, rid, None, target), action, system, row["exception_key"], rid, None,
                       f"reveni:{rid}", payload, amount)  # fmt: skip
    if action in ("transfer_to_sellable", "transfer_to_holding"):
        source, target = row["cin7_holding_location"], row["cin7_sellable_location"]
        if action == "transfer_to_holding":
            source, target = target, source
        key = posting_key(action, rid, iid, target)
        reference = f"reveni:{rid}:{iid} {action}#{key[:12]}"
        payload = {"FromLocation": source, "ToLocation": target, "Status": "COMPLETED", "CompletionDate": now,
                   "CostDistributionType": "Cost", "Reference": reference, "SkipOrder": True,
                   "Lines": [{"SKU": row["sku"], "TransferQuantity": row["quantity"]}]}  # fmt: skip
        return Planned(key, action, system, row["exception_key"], rid, iid, f"{action}#{key[:12]}", payload)
    if action == "sitoo_store_stock":
        warehouse = int(row["sitoo_warehouse_id"])
        payload = {"warehouseid": warehouse, "transactiontype": settings.sitoo_restock_transaction_type,
                   "externalid": f"reveni:{rid}:{iid}", "description": f"Reveni return {rid[:8]} restock",
                   "items": [{"sku": row["sku"], "decimalquantity": f"{row['quantity']:.3f}"}],
                   "not_before": (row["validated_at"] or datetime.now(UTC)).isoformat()}  # fmt: skip
        return Planned(posting_key(action, rid, iid, str(warehouse)), action, system, row["exception_key"], rid,
                       iid, f"reveni:{rid}:{iid}", payload)  # fmt: skip
    # sitoo_return_record
    items = conn.execute(
        """SELECT i.sku, i.name, i.quantity, i.unit_price FROM staging.stg_reveni__return_items i
           JOIN staging.stg_reveni__returns r USING (return_id)
           WHERE i.return_id = %s AND i.exchange_sku IS NULL AND (r.is_instant OR i.validation_status = 'accepted')
           ORDER BY i.line_no""",
        (rid,),
    ).fetchall()
    payload = {"ordertypeid": settings.sitoo_return_order_type_id, "orderstateid": settings.sitoo_return_order_state_id,
               "paymentstateid": settings.sitoo_return_payment_state_id, "externalid": rid,
               "warehouseid": int(row["sitoo_warehouse_id"]), "currencycode": row["currency"], "payments": [],
               "additionaldata": {"reveni-return-id": rid, "source": "returns-recon"},
               "orderitems": [{"productname": name or sku, "sku": sku, "quantity": -int(quantity),
                               "moneyrowprice": f"{price or 0:.2f}"}
                              for sku, name, quantity, price in items]}  # fmt: skip
    return Planned(posting_key(action, rid, None, str(row["sitoo_warehouse_id"])), action, system,
                   row["exception_key"], rid, None, rid, payload, row["refunded"])  # fmt: skip


def _restock_lines(conn: psycopg.Connection, row: dict[str, Any]) -> list[dict[str, Any]]:
    """Restock lines (apib L30638) for the units already back at the warehouse: into holding."""
    rows = conn.execute(RESTOCK_LINES, {"sale_id": row["sale_id"], "return_id": row["return_id"]}).fetchall()
    return [{"ProductID": product_id, "SKU": sku, "Name": name, "Quantity": quantity,
             "Location": row["sale_location"] or row["cin7_sellable_location"],
             "RestockLocation": row["cin7_holding_location"], "RestockDate": received.strftime("%Y-%m-%dT%H:%M:%S")}
            for sku, quantity, product_id, name, received in rows]  # fmt: skip
