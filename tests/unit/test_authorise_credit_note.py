"""``authorise_credit_note`` without a database or an API: planned only for an approved DRAFT of ours, its payload
(the DRAFT's, authorised, naming the approved note), what it adopts, and what it refuses to authorise. The whole
path (workbench approval, simulators over HTTP, the next reconciliation) is in
tests/integration/test_credit_note_approval.py."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, cast

import psycopg
import pytest

from returns_recon.postings.actions import FIXED_BY, REGISTRY
from returns_recon.postings.actions.authorise import AuthoriseCreditNote
from returns_recon.postings.actions.credit_note import ZERO_GUID, CreateCreditNote
from returns_recon.postings.model import Candidate, Context, Posting, ReadBack, Refused, Superseded, posting_key
from returns_recon.settings import ReconSettings

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
CANDIDATE = Candidate(
    exception_key="credit_note_awaiting_approval:r-1",
    exception_type="credit_note_awaiting_approval",
    return_id="r-1",
    item_id=None,
    sku=None,
    quantity=None,
    currency="EUR",
    order_external_id="#1001",
    return_point_id="rp-1",
    cin7_holding_location="Main: Holding",
    cin7_sellable_location="Main",
    sitoo_warehouse_id=None,
    validated_at=None,
    refunded=Decimal("1500.00"),
    sale_id="sale-1",
    sale_type="Advanced Sale",
    sale_location="Main",
)
DRAFT_PAYLOAD: dict[str, Any] = {
    "SaleID": "sale-1",
    "TaskID": ZERO_GUID,
    "CombineAdditionalCharges": False,
    "CreditNoteInvoiceNumber": "INV-7",
    "Memo": "reveni:r-1",
    "Status": "DRAFT",
    "CreditNoteDate": "2026-03-01T00:00:00",
    "Lines": [{"SKU": "SKU-1", "Quantity": 1, "Price": 1200, "Discount": 0, "Tax": 300, "Total": 1200}],
    "Restock": [{"SKU": "SKU-1", "Quantity": 1, "Location": "Main", "RestockLocation": "Main: Holding"}],
}
APPROVED: dict[str, Any] = {
    "payload": DRAFT_PAYLOAD,
    "amount": Decimal("1500.00"),
    "reference": "reveni:r-1",
    "target_ref": "t-1",
}


class FakeCursor:
    def __init__(self, row: dict[str, Any] | None) -> None:
        self.row = row

    def __enter__(self) -> FakeCursor:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def execute(self, query: str, params: dict[str, Any]) -> FakeCursor:
        assert params == {"exception_key": CANDIDATE.exception_key}
        return self

    def fetchone(self) -> dict[str, Any] | None:
        return self.row


@dataclass
class FakeConn:
    """The approved DRAFT the plan's query finds (None: no approval), and the notes the warehouse knows."""

    approved: dict[str, Any] | None = None
    known: list[str] = field(default_factory=list)

    def cursor(self, row_factory: Any = None) -> FakeCursor:
        return FakeCursor(self.approved)

    def execute(self, query: str, params: dict[str, Any]) -> list[tuple[str]]:
        return [(task_id,) for task_id in self.known]


@dataclass
class FakeView:
    notes: list[dict[str, Any]]

    def credit_notes(self, sale_id: str, live: bool = False) -> list[dict[str, Any]]:
        assert sale_id == "sale-1"
        return self.notes


def context(notes: list[dict[str, Any]], known: tuple[str, ...] = ("t-1",)) -> Context:
    return Context(cast(psycopg.Connection, FakeConn(known=list(known))), cast(Any, None), cast(Any, FakeView(notes)))


def planned(approved: dict[str, Any] | None = APPROVED):
    conn = cast(psycopg.Connection, FakeConn(approved=approved))
    return AuthoriseCreditNote().plan(conn, CANDIDATE, ReconSettings(), NOW)


def posting() -> Posting:
    p = planned()
    assert p is not None
    return Posting(
        p.posting_key, p.action, p.system, p.exception_key, p.return_id, p.reference, p.payload, p.amount, "planned"
    )


def draft(**changes: Any) -> dict[str, Any]:
    note = {
        "TaskID": "t-1",
        "CreditNoteNumber": "CR-00012",
        "Memo": "reveni:r-1",
        "Status": "DRAFT",
        "Lines": DRAFT_PAYLOAD["Lines"],
        "Restock": [{**DRAFT_PAYLOAD["Restock"][0], "LocationID": "loc-1", "RestockStatus": "DRAFT"}],
    }
    return {**note, **changes}


def test_it_fixes_the_approval_exception_under_its_own_name() -> None:
    action = REGISTRY["authorise_credit_note"]
    assert isinstance(action, AuthoriseCreditNote)
    assert FIXED_BY["credit_note_awaiting_approval"] is action
    assert (action.system, action.fixes) == ("cin7", ("credit_note_awaiting_approval",))


def test_nothing_is_planned_without_a_persons_approval() -> None:
    assert planned(approved=None) is None


def test_the_approved_draft_is_planned_authorised_naming_the_approved_note() -> None:
    p = planned()
    assert p is not None
    assert p.payload == {**DRAFT_PAYLOAD, "Status": "AUTHORISED", "TaskID": "t-1"}
    assert DRAFT_PAYLOAD["Status"] == "DRAFT", "the DRAFT's payload is left as it was"
    assert (p.action, p.system, p.reference, p.amount) == (
        "authorise_credit_note",
        "cin7",
        "reveni:r-1",
        Decimal("1500.00"),
    )
    assert (p.exception_key, p.return_id, p.item_id) == (CANDIDATE.exception_key, "r-1", None)
    assert p.posting_key == posting_key("authorise_credit_note", "r-1", None, "sale-1")
    assert p.posting_key != posting_key("create_credit_note", "r-1", None, "sale-1")
    # the same key on every later run; without the DRAFT's TaskID in its answer, the note is found by memo
    again = planned()
    assert again is not None
    assert again.posting_key == p.posting_key
    unnamed = planned(approved={**APPROVED, "target_ref": None})
    assert unnamed is not None
    assert unnamed.payload["TaskID"] == ZERO_GUID


def test_an_authorised_note_is_adopted_and_a_draft_completed() -> None:
    action, p = AuthoriseCreditNote(), posting()
    other = {"TaskID": "t-0", "Memo": "reveni:r-1", "Status": "VOIDED"}  # an earlier note of ours, voided
    assert action.read_back(context([other, draft(Status="AUTHORISED")]), p) == ReadBack(target_ref="t-1")
    assert action.read_back(context([other, draft()]), p) == ReadBack(unfinished=draft())
    assert action.read_back(context([other]), p) == ReadBack()
    unnamed = replace(p, payload={**p.payload, "TaskID": ZERO_GUID})
    assert action.read_back(context([draft()]), unnamed) == ReadBack(unfinished=draft())


def test_the_body_authorises_the_draft_keeping_its_restock_lines() -> None:
    action, p = AuthoriseCreditNote(), posting()
    body = action.prepare(context([draft()]), p, ReadBack(unfinished=draft()))
    assert body == CreateCreditNote.completing(p.payload, draft())
    assert (body["TaskID"], body["Status"], body["Memo"]) == ("t-1", "AUTHORISED", "reveni:r-1")
    assert body["Lines"] == DRAFT_PAYLOAD["Lines"]
    assert body["Restock"] == [{**DRAFT_PAYLOAD["Restock"][0], "LocationID": "loc-1"}]


def test_a_note_a_person_deleted_or_voided_is_refused_for_finance() -> None:
    action, p = AuthoriseCreditNote(), posting()
    with pytest.raises(Refused, match="a person deleted it"):
        action.prepare(context([]), p, ReadBack())
    voided = draft(Status="VOIDED")
    with pytest.raises(Refused, match="CR-00012 was VOIDED in Cin7 Core by a person"):
        action.prepare(context([voided]), p, ReadBack(unfinished=voided))
    unwritable = draft(Status="CREDITED")  # any status but DRAFT or NOT AVAILABLE (apib L24689)
    with pytest.raises(Refused, match="Cin7 Core refuses a change to it"):
        action.prepare(context([unwritable]), p, ReadBack(unfinished=unwritable))


def test_a_note_by_hand_since_the_plan_supersedes_the_authorisation() -> None:
    by_hand = {"TaskID": "t-9", "Memo": "goodwill", "Status": "AUTHORISED", "CreditNoteNumber": "CR-00013"}
    with pytest.raises(Superseded, match="CR-00013"):
        AuthoriseCreditNote().prepare(context([draft(), by_hand]), posting(), ReadBack(unfinished=draft()))
