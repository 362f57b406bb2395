"""The pure parts of the posting actions (issue 19, item 3): the payload each action builds from a candidate,
how it reads the target's answer, what it adopts or completes, and the executor's per-run safety valves.
The database and the APIs are covered by tests/integration/test_postings.py and the fault suite."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from returns_recon.apis.errors import ApiError, TransientError
from returns_recon.postings.actions import FIXED_BY, REGISTRY
from returns_recon.postings.actions.credit_note import ZERO_GUID, CreateCreditNote, RefundedLine, ReturnedUnit
from returns_recon.postings.actions.sitoo import (
    ReturnedItem,
    SitooReturnRecord,
    SitooStoreStock,
    bulk_element,
    created_id,
)
from returns_recon.postings.actions.transfer import Transfer, TransferToHolding, TransferToSellable
from returns_recon.postings.execute import NotSent, not_sent_now
from returns_recon.postings.model import Candidate, Posting, ReadBack, Refused, Sent
from returns_recon.settings import ReconSettings

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)
CANDIDATE = Candidate(
    exception_key="refund_without_credit_note:r-1",
    exception_type="refund_without_credit_note",
    return_id="r-1234567890",
    item_id="i-1",
    sku="SKU-1",
    quantity=2,
    currency="EUR",
    order_external_id="#1001",
    return_point_id="rp-1",
    cin7_holding_location="Main: Holding",
    cin7_sellable_location="Main",
    sitoo_warehouse_id=42,
    validated_at=None,
    refunded=Decimal("97.33"),
    sale_id="sale-1",
    sale_type="Advanced Sale",
    sale_location="Store 3",
)
LINE = RefundedLine(
    item_id="i-1",
    sku="SKU-1",
    quantity=1,
    product_id="p-1",
    name="Shirt",
    price=Decimal("77.86"),
    discount=Decimal("0"),
    tax_rule="VAT 25%",
    document="INV-7",
    rate=Decimal("0.25"),
)
UNIT = ReturnedUnit(sku="SKU-1", quantity=1, product_id="p-1", name="Shirt", received_at=NOW)


def note(lines=(LINE,), units=(), threshold="1000", candidate=CANDIDATE):
    return CreateCreditNote().planned(candidate, list(lines), list(units), Decimal(threshold), NOW)


# --- payloads ---------------------------------------------------------------------------------------------


def test_credit_note_rounds_tax_half_up_as_the_invoice_does() -> None:
    planned = note()
    (line,) = planned.payload["Lines"]
    assert (line["Total"], line["Tax"]) == (Decimal("77.86"), Decimal("19.47"))  # 19.465 half up
    assert planned.amount == Decimal("97.33")


def test_credit_note_applies_the_line_discount() -> None:
    planned = note(lines=[replace(LINE, quantity=3, price=Decimal("10.00"), discount=Decimal("10"), rate=None)])
    (line,) = planned.payload["Lines"]
    assert (line["Total"], line["Tax"], planned.amount) == (Decimal("27.00"), Decimal("0.00"), Decimal("27.00"))


def test_credit_note_carries_our_memo_the_invoice_and_the_cin7_date() -> None:
    planned = note(lines=[LINE, replace(LINE, item_id="i-2", document="INV-8")])
    payload = planned.payload
    assert payload["Memo"] == planned.reference == "reveni:r-1234567890"
    assert payload["SaleID"] == "sale-1"
    assert payload["TaskID"] == ZERO_GUID
    assert payload["CreditNoteInvoiceNumber"] == "INV-7"
    assert payload["CreditNoteDate"] == "2026-03-04T05:06:07"
    assert (planned.action, planned.system, planned.item_id) == ("create_credit_note", "cin7", None)


@pytest.mark.parametrize(("threshold", "status"), [("97.33", "AUTHORISED"), ("97.32", "DRAFT")])
def test_credit_note_above_the_approval_threshold_is_a_draft(threshold: str, status: str) -> None:
    assert note(threshold=threshold).payload["Status"] == status


def test_credit_note_restocks_the_units_back_into_holding() -> None:
    assert "Restock" not in note().payload
    (restock,) = note(units=[UNIT]).payload["Restock"]
    assert restock["Location"] == "Store 3"
    assert restock["RestockLocation"] == "Main: Holding"
    assert restock["RestockDate"] == "2026-03-04T05:06:07"
    (restock,) = note(units=[UNIT], candidate=replace(CANDIDATE, sale_location=None)).payload["Restock"]
    assert restock["Location"] == "Main"


def test_posting_keys_depend_on_the_target_not_on_time() -> None:
    later = datetime(2027, 1, 1, tzinfo=UTC)
    action = CreateCreditNote()
    first = action.planned(CANDIDATE, [LINE], [], Decimal(1000), NOW)
    assert action.planned(CANDIDATE, [LINE], [], Decimal(1000), later).posting_key == first.posting_key
    other_sale = action.planned(replace(CANDIDATE, sale_id="sale-2"), [LINE], [], Decimal(1000), NOW)
    assert other_sale.posting_key != first.posting_key


def test_transfers_move_between_holding_and_sellable() -> None:
    to_sellable = TransferToSellable().planned(CANDIDATE, NOW)
    to_holding = TransferToHolding().planned(CANDIDATE, NOW)
    assert (to_sellable.payload["FromLocation"], to_sellable.payload["ToLocation"]) == ("Main: Holding", "Main")
    assert (to_holding.payload["FromLocation"], to_holding.payload["ToLocation"]) == ("Main", "Main: Holding")
    assert to_sellable.posting_key != to_holding.posting_key
    for planned in (to_sellable, to_holding):
        assert planned.reference == f"{planned.action}#{planned.posting_key[:12]}"
        assert planned.payload["Reference"] == f"reveni:r-1234567890:i-1 {planned.reference}"
        assert planned.payload["Lines"] == [{"SKU": "SKU-1", "TransferQuantity": 2}]
        assert planned.payload["CompletionDate"] == "2026-03-04T05:06:07"


def test_store_restock_reads_back_from_the_validation() -> None:
    planned = SitooStoreStock().planned(CANDIDATE, 10, NOW)
    assert planned.reference == planned.payload["externalid"] == "reveni:r-1234567890:i-1"
    assert planned.payload["items"] == [{"sku": "SKU-1", "decimalquantity": "2.000"}]
    assert planned.payload["description"] == "Reveni return r-123456 restock"
    assert planned.payload["not_before"] == NOW.isoformat()
    validated = datetime(2026, 2, 1, tzinfo=UTC)
    planned = SitooStoreStock().planned(replace(CANDIDATE, validated_at=validated), 10, NOW)
    assert planned.payload["not_before"] == validated.isoformat()
    assert SitooStoreStock.transaction(planned.payload) == {
        k: v for k, v in planned.payload.items() if k != "not_before"
    }
    assert "not_before" not in SitooStoreStock.transaction(planned.payload)


def test_refund_order_has_negative_quantities_and_no_payment() -> None:
    items = [ReturnedItem("SKU-1", "Shirt", 2, Decimal("38.9")), ReturnedItem("SKU-2", None, 1, None)]
    planned = SitooReturnRecord().planned(CANDIDATE, items, ReconSettings())
    assert planned.reference == planned.payload["externalid"] == "r-1234567890"
    assert planned.payload["payments"] == []
    assert planned.payload["orderitems"] == [
        {"productname": "Shirt", "sku": "SKU-1", "quantity": -2, "moneyrowprice": "38.90"},
        {"productname": "SKU-2", "sku": "SKU-2", "quantity": -1, "moneyrowprice": "0.00"},
    ]
    assert planned.amount == Decimal("97.33")


# --- answers and read-backs -------------------------------------------------------------------------------


def test_credit_note_answer_names_the_note() -> None:
    answer = {"SaleID": "sale-1", "CreditNotes": [{"TaskID": "t-9", "CreditNoteNumber": "CR-00009"}]}
    assert CreateCreditNote().sent(answer) == Sent("t-9", "CR-00009")
    assert CreateCreditNote().sent({"SaleID": "sale-1", "CreditNotes": []}) == Sent(None, None)
    assert CreateCreditNote().sent("") == Sent(None, None)


def test_transfer_and_sitoo_answers() -> None:
    assert TransferToSellable().sent({"TaskID": "t-1", "Number": "TR-1"}) == Sent("t-1", "TR-1")
    assert TransferToSellable().sent(None) == Sent(None, None)
    assert created_id(1234) == Sent("1234")
    assert created_id({"id": 1234}) == Sent(None)


def test_sitoo_batch_element_is_read_like_a_call() -> None:
    assert bulk_element(77) == 77
    assert bulk_element([{"statuscode": 200, "return": 77}]) == 77
    for status in (429, 500, 503):
        with pytest.raises(TransientError):
            bulk_element([{"statuscode": status, "return": "busy"}])
    with pytest.raises(ApiError) as refused:
        bulk_element([{"statuscode": 400, "return": "bad sku"}])
    assert refused.value.status == 400


def test_our_credit_note_is_adopted_when_finished_and_completed_when_not() -> None:
    ours = {"Memo": "reveni:r-1", "TaskID": "t-1", "Status": "AUTHORISED", "Lines": [{}]}
    other = {"Memo": "by phone", "TaskID": "t-0", "Status": "AUTHORISED"}
    authorised = {"Status": "AUTHORISED"}
    assert CreateCreditNote.ours([other, ours], authorised, "reveni:r-1") == ReadBack(target_ref="t-1")
    assert CreateCreditNote.ours([other], authorised, "reveni:r-1") == ReadBack()
    draft = {**ours, "Status": "DRAFT"}
    assert CreateCreditNote.ours([draft], {"Status": "DRAFT"}, "reveni:r-1") == ReadBack(target_ref="t-1")
    assert CreateCreditNote.ours([draft], authorised, "reveni:r-1") == ReadBack(unfinished=draft)
    empty_draft = {**draft, "Lines": []}
    assert CreateCreditNote.ours([empty_draft], {"Status": "DRAFT"}, "reveni:r-1") == ReadBack(unfinished=empty_draft)


def test_completing_our_draft_keeps_its_restock_lines() -> None:
    payload = note().payload
    drafted = {"SKU": "SKU-1", "Quantity": 1, "RestockLocation": "Main: Holding", "RestockStatus": "DRAFT"}
    body = CreateCreditNote.completing(payload, {"TaskID": "t-1", "Status": "DRAFT", "Restock": [drafted]})
    assert body["TaskID"] == "t-1"
    assert body["Restock"] == [{"SKU": "SKU-1", "Quantity": 1, "RestockLocation": "Main: Holding"}]
    assert body["Lines"] == payload["Lines"]
    assert "Restock" not in CreateCreditNote.completing(payload, {"TaskID": "t-1", "Status": "NOT AVAILABLE"})
    for status in ("AUTHORISED", "VOIDED"):
        with pytest.raises(Refused):
            CreateCreditNote.completing(payload, {"TaskID": "t-1", "Status": status, "CreditNoteNumber": "CR-1"})


def test_a_note_added_by_hand_since_the_plan_is_found() -> None:
    by_hand = {"Memo": "credited by phone", "TaskID": "t-2", "Status": "AUTHORISED"}
    ours = {"Memo": "reveni:r-1", "TaskID": "t-1", "Status": "DRAFT"}
    voided = {"Memo": None, "TaskID": "t-3", "Status": "VOIDED"}
    assert CreateCreditNote.note_by_hand([ours, voided, by_hand], known=set()) == by_hand
    assert CreateCreditNote.note_by_hand([ours, voided, by_hand], known={"t-2"}) is None


def test_a_transfer_made_by_hand_since_the_plan_is_found() -> None:
    ours = "reveni:r-1:i-1 transfer_to_sellable#abc"
    transfers = {ours: "t-1", "reveni:r-1:i-2 by hand": "t-2", "reveni:r-1:i-1 by hand": "t-3"}
    assert Transfer.transfer_by_hand(transfers, ours, known=set()) == ("reveni:r-1:i-1 by hand", "t-3")
    assert Transfer.transfer_by_hand(transfers, ours, known={"t-3"}) is None


def test_every_exception_type_has_one_stateless_action() -> None:
    assert set(FIXED_BY) == {
        "refund_without_credit_note",
        "credit_note_awaiting_approval",
        "inspected_not_released",
        "premature_restock",
        "rejected_item_in_sellable_stock",
        "sitoo_stock_missing",
        "sitoo_return_record_missing",
    }
    assert all(REGISTRY[action.name] is action for action in FIXED_BY.values())
    for action in REGISTRY.values():  # nothing carried from one call (one posting) to the next
        with pytest.raises(AttributeError):
            action._existing = {"TaskID": "t-1"}  # type: ignore[attr-defined]


# --- the executor's per-run safety valves -----------------------------------------------------------------

POSTING = Posting("k-1", "create_credit_note", "cin7", "x:r-1", "r-1", "reveni:r-1", {}, None, "planned")


def valve(posting=POSTING, held=None, refused=None, sent=0, **settings) -> NotSent | None:
    given = {"postings_dry_run": False, "postings_disabled": (), "max_postings_per_run": 200, **settings}
    return not_sent_now(posting, ReconSettings(**given), held or {}, refused or {}, sent)


def kept_back(*args, **kwargs) -> NotSent:
    decided = valve(*args, **kwargs)
    assert decided is not None, "no valve kept the posting back"
    return decided


def test_nothing_holds_a_posting_back_by_default() -> None:
    assert valve() is None
    assert valve(held={"sitoo": "no check"}, refused={"sitoo": "401"}, postings_disabled=("sitoo",)) is None


def test_dry_run_wins_over_every_other_valve() -> None:
    decided = valve(held={"cin7": "no check"}, postings_dry_run=True, max_postings_per_run=0)
    assert decided == NotSent("dry_run", "dry_run", "dry_run")


def test_held_keeps_an_earlier_attempt_ambiguous() -> None:
    assert valve(held={"cin7": "no check"}) == NotSent("held", "held", "held", "held: no check", {"reason": "no check"})
    for status in ("ambiguous", "sending"):
        assert kept_back(replace(POSTING, status=status), held={"cin7": "no check"}).status == status


def test_refused_credentials_leave_it_pending() -> None:
    decided = valve(refused={"cin7": "cin7 answered 401"})
    assert decided == NotSent(
        "pending_credentials", "planned", "pending", "cin7 answered 401", {"error": "cin7 answered 401"}
    )
    assert kept_back(replace(POSTING, status="ambiguous"), refused={"cin7": "401"}).status == "ambiguous"


def test_kill_switch_and_cap_skip() -> None:
    assert kept_back(postings_disabled=("cin7",)).error == "kill switch"
    assert valve(sent=3, max_postings_per_run=3) == NotSent(
        "skipped", "skipped", "skipped", "cap per run reached", {"reason": "cap per run reached"}
    )
    assert valve(sent=2, max_postings_per_run=3) is None
