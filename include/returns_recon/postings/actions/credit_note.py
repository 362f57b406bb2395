"""``create_credit_note``: the Cin7 Core credit note of a refunded return (or the completion of our DRAFT)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import psycopg
from psycopg.rows import class_row

from returns_recon import references
from returns_recon.postings.actions.base import PostingAction
from returns_recon.postings.model import (
    Candidate,
    Context,
    Planned,
    Posting,
    ReadBack,
    Refused,
    Sent,
    Superseded,
    posting_key,
)
from returns_recon.reconcile.models import tax_rate
from returns_recon.settings import ReconSettings

log = logging.getLogger(__name__)

ZERO_GUID = "00000000-0000-0000-0000-000000000000"
# apib L24578-L24591: the fields a credit-note POST reads; L30638: those of a restock line
RESTOCK_LINE_FIELDS = (
    "ProductID",
    "SKU",
    "Name",
    "Location",
    "LocationID",
    "Quantity",
    "BatchSN",
    "ExpiryDate",
    "RestockLocation",
    "RestockLocationID",
    "RestockDate",
)
WRITABLE_NOTE_STATUSES = ("DRAFT", "NOT AVAILABLE")  # apib L24689: a POST to any other is refused
CIN7_TIME = "%Y-%m-%dT%H:%M:%S"

# A credit note made by hand on a sale that no return can be attributed (operating-model.md §1, §3): no credit
# note of ours for any return of that sale while its unattributed_credit_note is open, as crediting again could
# credit the customer twice. The other postings of those returns go ahead. The sales are found by the shop's
# order number (few rows).
UNATTRIBUTED_SALES = """unattributed_sales AS (
    SELECT DISTINCT coalesce(ur.order_external_id, '') AS order_ref, u.exception_key
    FROM recon.exceptions u JOIN staging.stg_reveni__returns ur USING (return_id)
    WHERE u.exception_type = 'unattributed_credit_note' AND recon.is_open(u.state)
)"""

# An unattributed credit note opened since the plan on the sale of this return.
BLOCKED_CREDIT_NOTE = f"""WITH {UNATTRIBUTED_SALES}
SELECT string_agg(DISTINCT b.exception_key, ', ') FROM unattributed_sales b
JOIN staging.stg_reveni__returns r ON coalesce(r.order_external_id, '') = b.order_ref
WHERE r.return_id = %(return_id)s"""

# The refunded lines, priced from the sale's invoice line of the same SKU, at the line's rate as the
# reconciliation reads it (reconcile/models.py tax_rate): our note's tax is the one it expects.
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
RETURNED_UNITS = """
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

KNOWN_NOTES = "SELECT task_id FROM staging.stg_cin7__credit_notes WHERE sale_id = %(sale_id)s"


@dataclass(frozen=True)
class RefundedLine:
    """A refunded return item with the sale's invoice line it credits (a row of ``REFUNDED_LINES``)."""

    item_id: str
    sku: str
    quantity: int
    product_id: str | None
    name: str | None
    price: Decimal
    discount: Decimal
    tax_rule: str | None
    document: str
    rate: Decimal | None


@dataclass(frozen=True)
class ReturnedUnit:
    """A unit back at the warehouse, restocked into holding by our credit note (a row of ``RETURNED_UNITS``)."""

    sku: str
    quantity: int
    product_id: str | None
    name: str | None
    received_at: datetime


def money(value: Decimal) -> Decimal:
    # half up, as the sale's own lines are rounded (and the reconciliation's round()): the default half-even
    # put a cent less on a line whose tax ends in a half cent (77.86 at 25%: 19.465 -> 19.46, invoiced 19.47),
    # so the note we created was raised as credit_note_amount_mismatch against the refund
    return value.quantize(Decimal("0.01"), ROUND_HALF_UP)


class CreateCreditNote(PostingAction):
    """The credit note of a refunded return, with the restock lines of the units already back (in the
    same POST: Cin7 Core refuses changes to an authorised note). Read back through the ``SaleView``:
    the stored copy when it is known current, else live ``GET /sale/creditnote``."""

    __slots__ = ()  # stateless (PostingAction)

    name = "create_credit_note"
    system = "cin7"
    fixes = ("refund_without_credit_note",)

    def plan(
        self, conn: psycopg.Connection, candidate: Candidate, settings: ReconSettings, now: datetime
    ) -> Planned | None:
        if candidate.sale_id is None:
            return None
        params = {"sale_id": candidate.sale_id, "return_id": candidate.return_id}
        with conn.cursor(row_factory=class_row(RefundedLine)) as cur:
            lines = cur.execute(REFUNDED_LINES, params).fetchall()
        if not lines:
            return None
        with conn.cursor(row_factory=class_row(ReturnedUnit)) as cur:
            units = cur.execute(RETURNED_UNITS, params).fetchall()
        return self.planned(candidate, lines, units, settings.credit_note_approval_threshold, now)

    def planned(
        self,
        candidate: Candidate,
        lines: list[RefundedLine],
        units: list[ReturnedUnit],
        approval_threshold: Decimal,
        now: datetime,
    ) -> Planned:
        """The note for these refunded lines: lines and tax from the invoice lines; DRAFT above the approval
        threshold; the restock into holding of the units already back."""
        assert candidate.sale_id is not None
        body_lines, amount = [], Decimal(0)
        for line in lines:
            total = money(line.price * line.quantity * (1 - line.discount / 100))
            tax = money(total * (line.rate or 0))
            amount += total + tax
            body_lines.append(
                {
                    "ProductID": line.product_id,
                    "SKU": line.sku,
                    "Name": line.name,
                    "Quantity": line.quantity,
                    "Price": line.price,
                    "Discount": line.discount,
                    "Tax": tax,
                    "Total": total,
                    "TaxRule": line.tax_rule,
                }
            )
        reference = references.credit_note_memo(candidate.return_id)
        payload: dict[str, Any] = {
            "SaleID": candidate.sale_id,
            "TaskID": ZERO_GUID,
            "CombineAdditionalCharges": False,
            "CreditNoteInvoiceNumber": lines[0].document,
            "Memo": reference,
            "Status": "DRAFT" if amount > approval_threshold else "AUTHORISED",
            "CreditNoteDate": now.strftime(CIN7_TIME),
            "Lines": body_lines,
        }
        if units:  # apib L30638, into the holding location
            payload["Restock"] = [
                {
                    "ProductID": unit.product_id,
                    "SKU": unit.sku,
                    "Name": unit.name,
                    "Quantity": unit.quantity,
                    "Location": candidate.sale_location or candidate.cin7_sellable_location,
                    "RestockLocation": candidate.cin7_holding_location,
                    "RestockDate": unit.received_at.strftime(CIN7_TIME),
                }
                for unit in units
            ]
        key = posting_key(self.name, candidate.return_id, None, candidate.sale_id)
        return Planned(
            posting_key=key,
            action=self.name,
            system=self.system,
            exception_key=candidate.exception_key,
            return_id=candidate.return_id,
            item_id=None,
            reference=reference,
            payload=payload,
            amount=amount,
        )

    def read_back(self, ctx: Context, posting: Posting) -> ReadBack:
        notes = ctx.view.credit_notes(posting.payload["SaleID"], live=ctx.live)
        return self.ours(notes, posting.payload, posting.reference)

    @staticmethod
    def ours(notes: list[dict[str, Any]], payload: dict[str, Any], reference: str) -> ReadBack:
        """Our note among the sale's (by its memo): finished when authorised, or when we meant a DRAFT and it has
        its lines; otherwise still ours to complete."""
        note = next((n for n in notes if n.get("Memo") == reference), None)
        if note and (note.get("Status") == "AUTHORISED" or (payload["Status"] == "DRAFT" and note.get("Lines"))):
            return ReadBack(target_ref=note["TaskID"])
        return ReadBack(unfinished=note)

    def blocker(self, ctx: Context, posting: Posting) -> str | None:
        """An unattributed credit note on the sale blocks ours (operating-model.md §3)."""
        row = ctx.conn.execute(BLOCKED_CREDIT_NOTE, {"return_id": posting.return_id}).fetchone()
        return row[0] if row else None

    def prepare(self, ctx: Context, posting: Posting, found: ReadBack) -> dict[str, Any]:
        sale_id = posting.payload["SaleID"]
        self.check_no_note_by_hand(ctx, sale_id)
        if found.unfinished is None:
            sale = ctx.view.sale(sale_id, live=ctx.live)
            if sale.get("Type") == "Simple Sale" and (
                sale.get("CreditNotes") or ctx.view.credit_notes(sale_id, ctx.live)
            ):
                raise Refused("the sale is a Simple Sale that already has a credit note; Cin7 Core allows one")
            return posting.payload
        return self.completing(posting.payload, found.unfinished)

    def check_no_note_by_hand(self, ctx: Context, sale_id: str) -> None:
        """Raises ``Superseded`` when a note by hand appeared on the sale since the plan (``note_by_hand``)."""
        known = {task_id for (task_id,) in ctx.conn.execute(KNOWN_NOTES, {"sale_id": sale_id})}
        by_hand = self.note_by_hand(ctx.view.credit_notes(sale_id, live=ctx.live), known)
        if by_hand is not None:
            raise Superseded(
                f"credit note {by_hand.get('CreditNoteNumber') or by_hand.get('TaskID')} "
                f"({by_hand.get('Status')}) was added to the sale by hand since the plan"
            )

    @staticmethod
    def note_by_hand(notes: list[dict[str, Any]], known: set[str]) -> dict[str, Any] | None:
        """A note without our memo that the reconciliation has not seen yet (a person's, made since the plan):
        whether it credits this return is for the next reconciliation to say (attributed, or
        ``unattributed_credit_note``); crediting now could credit the customer twice."""
        return next(
            (
                note
                for note in notes
                if references.return_of_memo(str(note.get("Memo") or "")) is None
                and note.get("Status") != "VOIDED"
                and note.get("TaskID") not in known
            ),
            None,
        )

    @staticmethod
    def completing(payload: dict[str, Any], note: dict[str, Any]) -> dict[str, Any]:
        """The body that completes our DRAFT rather than adding a second note; restock lines already drafted on
        it stay."""
        if note.get("Status") not in WRITABLE_NOTE_STATUSES:
            raise Refused(
                f"our credit note {note.get('CreditNoteNumber')} is {note.get('Status')}; "
                "Cin7 Core refuses a change to it"
            )
        body = {**payload, "TaskID": note["TaskID"]}
        drafted = [{k: v for k, v in line.items() if k in RESTOCK_LINE_FIELDS} for line in note.get("Restock") or []]
        if drafted:
            body["Restock"] = drafted
        return body

    def send(self, ctx: Context, posting: Posting, body: Any) -> Any:
        ctx.view.written(posting.payload["SaleID"])  # its stored copy is out of date from now on
        response = ctx.clients.cin7.send("POST", "sale/creditnote", json_body=body, label="sale/creditnote")
        if body.get("Status") == "DRAFT":
            log.warning(
                "credit note for return %s (%s) is above the approval threshold: posted as DRAFT",
                posting.return_id,
                posting.amount,
            )
        return response

    def sent(self, response: Any) -> Sent:
        """The note in the documented answer ``{SaleID, CreditNotes: [...]}`` (apib L24750)."""
        notes = response.get("CreditNotes") if isinstance(response, dict) else None
        note = notes[0] if isinstance(notes, list) and notes and isinstance(notes[0], dict) else {}
        return Sent(target_ref=note.get("TaskID"), target_number=note.get("CreditNoteNumber"))
