"""``authorise_credit_note``: authorise our DRAFT credit note (held above the approval threshold) once a person has
approved it in the workbench (``recon.credit_note_approvals``, migration 0023)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.rows import dict_row

from returns_recon.postings.actions.credit_note import ZERO_GUID, CreateCreditNote
from returns_recon.postings.model import Candidate, Context, Planned, Posting, ReadBack, Refused, posting_key
from returns_recon.settings import ReconSettings

# The approved DRAFT of a credit_note_awaiting_approval exception: the create_credit_note posting its evidence names
# (found.sql), with a person's approval; none without one.
APPROVED_DRAFT = """
SELECT p.payload, p.amount, p.reference, p.target_ref
FROM recon.exceptions AS e
JOIN recon.credit_note_approvals AS a ON a.posting_key = e.evidence ->> 'posting_key'
JOIN recon.postings AS p ON p.posting_key = a.posting_key
WHERE e.exception_key = %(exception_key)s AND p.action = 'create_credit_note' AND p.status IN ('done', 'adopted')
  AND p.payload ->> 'Status' = 'DRAFT'
"""


class AuthoriseCreditNote(CreateCreditNote):
    """The credit note of ours left DRAFT above the approval threshold, authorised after a person's approval: a
    ``POST /sale/creditnote`` naming the DRAFT's ``TaskID`` changes that note (apib L24691: only the zero GUID
    creates one; the documented example, L24703-L24707) to ``Status`` ``AUTHORISED`` (L24586), which Cin7 Core
    accepts while it is DRAFT (L24689). The same memo, lines and restock lines as the DRAFT; sent and blocked as
    ``create_credit_note`` is (an unattributed credit note on the sale blocks it: authorising credits the
    customer)."""

    __slots__ = ()  # stateless (PostingAction)

    name = "authorise_credit_note"
    system = "cin7"
    fixes = ("credit_note_awaiting_approval",)

    def plan(
        self, conn: psycopg.Connection, candidate: Candidate, settings: ReconSettings, now: datetime
    ) -> Planned | None:
        with conn.cursor(row_factory=dict_row) as cur:
            draft = cur.execute(APPROVED_DRAFT, {"exception_key": candidate.exception_key}).fetchone()
        if draft is None:  # not approved (yet): it waits for a person
            return None
        return self.planned_from(candidate, draft["payload"], draft["reference"], draft["target_ref"], draft["amount"])

    def planned_from(
        self, candidate: Candidate, draft: dict[str, Any], reference: str, task_id: str | None, amount: Decimal | None
    ) -> Planned:
        """The DRAFT's own payload, authorised, naming the approved note (its ``TaskID``, when the answer or the
        read-back gave it)."""
        payload = {**draft, "Status": "AUTHORISED", "TaskID": task_id or draft.get("TaskID") or ZERO_GUID}
        return Planned(
            posting_key=posting_key(self.name, candidate.return_id, None, str(payload["SaleID"])),
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
        """Our note (by memo, and by the approved note's ``TaskID`` when known): AUTHORISED is done (adopted);
        otherwise it is handed to ``prepare`` (``unfinished``), or nothing when it is gone."""
        notes = ctx.view.credit_notes(posting.payload["SaleID"], live=ctx.live)
        return self.ours(self.approved_note(notes, posting.payload), posting.payload, posting.reference)

    @staticmethod
    def approved_note(notes: list[dict[str, Any]], payload: dict[str, Any]) -> list[dict[str, Any]]:
        """The sale's notes that can be the one approved: the one with its ``TaskID`` when the plan knew it."""
        task_id = payload.get("TaskID")
        if not task_id or task_id == ZERO_GUID:
            return notes
        return [note for note in notes if note.get("TaskID") == task_id]

    def prepare(self, ctx: Context, posting: Posting, found: ReadBack) -> dict[str, Any]:
        """The body that authorises the DRAFT (``completing``: its TaskID, the restock lines drafted on it). A note
        a person deleted or voided since the approval is refused, for finance: nothing is authorised."""
        note = found.unfinished
        if note is None:
            raise Refused(
                f"our DRAFT credit note ({posting.reference}) is no longer on sale {posting.payload['SaleID']}: "
                "a person deleted it in Cin7 Core after it was approved; nothing was authorised"
            )
        if note.get("Status") == "VOIDED":
            raise Refused(
                f"our DRAFT credit note {note.get('CreditNoteNumber') or note.get('TaskID')} was VOIDED in Cin7 Core "
                "by a person after it was approved; nothing was authorised"
            )
        self.check_no_note_by_hand(ctx, posting.payload["SaleID"])
        return self.completing(posting.payload, note)
