"""Attribution of credit notes made by hand (operating-model.md §1) and the over-credit they may carry
(`unattributed_credit_note`, §3; issue 16 item 2): a note without our memo on the sale of a refunded
return is that return's when exactly one refunded return of the sale matches it by SKUs, quantities and
total (±0.01, same currency); any other AUTHORISED one is raised, even beside our own note, and blocks
the credit note we would create for the sale's returns. Each case is planted by hand into a clean
generated scenario (no defect planted), served by the simulators and run through the real pipeline."""

from __future__ import annotations

import copy
import json
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from returns_recon.postings.plan import plan
from tests.fixtures.pipeline import SETTINGS, cycle
from tests.fixtures.scenarios import answer_key, scenario
from tests.integration.test_reconciliation import open_exceptions, run_pipeline

pytestmark = pytest.mark.integration

UNATTRIBUTED = "unattributed_credit_note"


# --- planting ---------------------------------------------------------------------------------------------
def clean(tmp_path: Path, seed: int) -> tuple[Path, dict]:
    """A generated scenario with no defect planted (its answer key is empty), as a document to edit."""
    path = scenario(tmp_path, seed, returns=120, rates={})
    assert answer_key(path) == set()
    return path, json.loads(path.read_text())


def save(path: Path, doc: dict) -> Path:
    path.write_text(json.dumps(doc))
    return path


def refunded(ret: dict) -> Decimal:
    return sum((Decimal(f["amount"]) for f in ret["refunds"] if f["status"] == "paid"), Decimal(0))


def sale_of(doc: dict, ret: dict) -> dict:
    return next(s for s in doc["cin7"]["sales"] if s["CustomerReference"] == ret["order"]["external_id"])


def our_note(sale: dict, ret: dict) -> dict:
    (note,) = [n for n in sale["CreditNotes"] if n["Memo"] == f"reveni:{ret['id']}" and n["Status"] == "AUTHORISED"]
    return note


def returns_by_order(doc: dict) -> dict[str, list[dict]]:
    orders = defaultdict(list)
    for ret in doc["reveni"]["returns"]:
        orders[ret["order"]["external_id"]].append(ret)
    return orders


def single_refunded_return(doc: dict, kind: str | None = None, advanced: bool = True) -> tuple[dict, dict]:
    """The first refunded return alone on its sale, credited by our one AUTHORISED note (in the sale's currency)."""
    for rets in returns_by_order(doc).values():
        ret = rets[0]
        if len(rets) != 1 or refunded(ret) == 0 or (kind and ret["return_point"]["type"] != kind):
            continue
        sale = sale_of(doc, ret)
        if advanced and sale["Type"] != "Advanced Sale":
            continue
        notes = [n for n in sale["CreditNotes"] if n["Memo"] == f"reveni:{ret['id']}" and n["Status"] == "AUTHORISED"]
        if len(notes) == 1 and ret["refunds"][0]["currency"] == sale["CustomerCurrency"]:
            return ret, sale
    raise AssertionError("the clean scenario has no such return")


def not_yet_received(ret: dict) -> bool:
    """An instant warehouse refund still on its way: no stock leg is due yet."""
    on_its_way = ret["status"] in ("in_progress", "shipped") and ret["return_point"]["type"] == "warehouse"
    return refunded(ret) > 0 and ret["instant"] and ret["type"] == "refund" and on_its_way


def by_hand(sale: dict, number: str, lines: list[dict], memo: str = "goodwill, ticket 4411") -> dict:
    """An AUTHORISED credit note a person made in Cin7 Core: no reveni memo, totals from its lines."""
    before = sum(Decimal(str(line["Total"])) for line in lines)
    tax = sum(Decimal(str(line["Tax"])) for line in lines)
    return {
        "TaskID": f"0000{number.lower()}-hand-made-note-{sale['ID'][:8]}",
        "CreditNoteNumber": number,
        "CreditNoteInvoiceNumber": sale["Invoices"][0]["InvoiceNumber"],
        "Memo": memo,
        "Status": "AUTHORISED",
        "CreditNoteDate": "2026-11-30T00:00:00",
        "CreditNoteConversionRate": 1,
        "Lines": copy.deepcopy(lines),
        "AdditionalCharges": [],
        "Restock": [],
        "RestockStatus": "NOT AVAILABLE",
        "TotalBeforeTax": float(before),
        "Tax": float(tax),
        "Total": float(before + tax),
    }


def goodwill_lines(note: dict, amount: str = "10.00") -> list[dict]:
    """One line of the note's first SKU, one unit, at a goodwill amount: another total than any refund."""
    line = copy.deepcopy(note["Lines"][0])
    line.update({"Quantity": 1, "Price": float(amount), "Total": float(amount), "Tax": 0.0})
    return [line]


# --- reading back -----------------------------------------------------------------------------------------
def evidence(db, key: str) -> dict:
    with db.connect() as conn:
        row = conn.execute(
            "SELECT evidence, owner, severity FROM recon.exceptions WHERE exception_key = %s", (key,)
        ).fetchone()
    assert row is not None, f"{key} not in the queue"
    return {**row[0], "_owner": row[1], "_severity": row[2]}


def credit_note_legs(db, return_id: str) -> set[str]:
    with db.connect() as conn:
        rows = conn.execute(
            "SELECT credit_note_leg FROM recon.fct_return_reconciliation WHERE return_id = %s", (return_id,)
        ).fetchall()
    return {leg for (leg,) in rows}


def planned_actions(db, run_id: str) -> dict[str, set[str]]:
    """Plan from the queue as it stands; the actions in the outbox per return."""
    with psycopg.connect(db.url, autocommit=True) as conn:
        plan(conn, run_id, SETTINGS)
        rows = conn.execute("SELECT return_id, action FROM recon.postings WHERE status = 'planned'").fetchall()
    actions: dict[str, set[str]] = defaultdict(set)
    for return_id, action in rows:
        actions[return_id].add(action)
    return actions


# --- the cases --------------------------------------------------------------------------------------------
def test_a_hand_made_note_of_another_total_beside_ours_is_raised(
    simulators, clients_for, warehouse_db, tmp_path
) -> None:
    path, doc = clean(tmp_path, 1601)
    ret, sale = single_refunded_return(doc)
    extra = by_hand(sale, "CR-HAND-A", goodwill_lines(our_note(sale, ret)))
    sale["CreditNotes"].append(extra)
    simulators.load(save(path, doc))
    run_pipeline(warehouse_db, clients_for(), path, "attr-a")
    assert open_exceptions(warehouse_db) == {(UNATTRIBUTED, ret["id"], None)}
    found = evidence(warehouse_db, f"{UNATTRIBUTED}:{ret['id']}")
    assert (found["_owner"], found["_severity"]) == ("finance", "high")
    assert found["order_external_id"] == ret["order"]["external_id"]
    assert found["sale_order_number"] == sale["Order"]["SaleOrderNumber"]
    assert [(n["number"], Decimal(str(n["total"])), n["currency"]) for n in found["credit_notes"]] == [
        ("CR-HAND-A", Decimal("10.00"), sale["CustomerCurrency"])
    ]
    assert credit_note_legs(warehouse_db, ret["id"]) == {"unattributed"}
    with warehouse_db.connect() as conn:
        journal = conn.execute(
            "SELECT sum(cin7_unattributed_notes), sum(cin7_unattributed_credited) FROM recon.refund_journal"
        ).fetchone()
    assert journal == (1, Decimal("10.00"))


def test_b_two_hand_made_notes_one_matching_the_other_raised(simulators, clients_for, warehouse_db, tmp_path) -> None:
    path, doc = clean(tmp_path, 1602)
    ret, sale = single_refunded_return(doc)
    ours = our_note(sale, ret)
    ours["Memo"] = ""  # the exact credit made by hand instead of by us: SKUs, quantities and total match
    sale["CreditNotes"].append(by_hand(sale, "CR-HAND-B", goodwill_lines(ours, "25.00")))
    simulators.load(save(path, doc))
    run_pipeline(warehouse_db, clients_for(), path, "attr-b")
    # the matching one is the return's (no refund_without_credit_note, no duplicate), the other is raised
    assert open_exceptions(warehouse_db) == {(UNATTRIBUTED, ret["id"], None)}
    found = evidence(warehouse_db, f"{UNATTRIBUTED}:{ret['id']}")
    assert [n["number"] for n in found["credit_notes"]] == ["CR-HAND-B"]
    assert planned_actions(warehouse_db, "attr-b").get(ret["id"], set()) == set()


def test_b_two_hand_made_notes_matching_nothing_block_our_credit_note_only(
    simulators, clients_for, warehouse_db, tmp_path
) -> None:
    path, doc = clean(tmp_path, 1603)
    ret, sale = single_refunded_return(doc, kind="store")
    ours = our_note(sale, ret)
    sale["CreditNotes"].remove(ours)
    # the customer credited by hand in two notes that add up to the refund: neither matches it
    first, second = goodwill_lines(ours, "5.00"), copy.deepcopy(ours["Lines"])
    second[0]["Total"] = round(second[0]["Total"] - 5.0, 2)
    sale["CreditNotes"] += [by_hand(sale, "CR-HAND-B1", first), by_hand(sale, "CR-HAND-B2", second)]
    # and the store's return record is missing: its posting is not ours to block
    doc["sitoo"]["orders"] = [o for o in doc["sitoo"]["orders"] if o["externalid"] != ret["id"]]
    simulators.load(save(path, doc))
    clients = clients_for()
    run_pipeline(warehouse_db, clients, path, "attr-b2")
    rid = ret["id"]
    assert open_exceptions(warehouse_db) == {
        ("refund_without_credit_note", rid, None),
        (UNATTRIBUTED, rid, None),
        ("sitoo_return_record_missing", rid, None),
    }
    found = evidence(warehouse_db, f"{UNATTRIBUTED}:{rid}")
    assert sorted(n["number"] for n in found["credit_notes"]) == ["CR-HAND-B1", "CR-HAND-B2"]
    # crediting again could credit the customer twice: no credit note; the Sitoo record goes out as usual
    assert planned_actions(warehouse_db, "attr-b2")[rid] == {"sitoo_return_record"}

    # finance voids both notes: the block lifts, our credit note is planned
    for note in sale["CreditNotes"]:
        if note["CreditNoteNumber"].startswith("CR-HAND-"):
            note["Status"] = "VOIDED"
    simulators.upsert("cin7.sales", sale)
    run_pipeline(warehouse_db, clients, path, "attr-b2-voided")
    with warehouse_db.connect() as conn:
        state = conn.execute(
            "SELECT state FROM recon.exceptions WHERE exception_key = %s", (f"{UNATTRIBUTED}:{rid}",)
        ).fetchone()[0]
    assert state == "auto_resolved"
    assert "create_credit_note" in planned_actions(warehouse_db, "attr-b2-voided")[rid]


def test_c_a_hand_made_note_matching_one_refunded_return_is_attributed(
    simulators, clients_for, warehouse_db, tmp_path
) -> None:
    path, doc = clean(tmp_path, 1601)
    # two refunded returns on one sale; the first one's credit note was made by hand, exactly
    rets = next(r for r in returns_by_order(doc).values() if len(r) == 2 and all(refunded(x) for x in r))
    sale = sale_of(doc, rets[0])
    our_note(sale, rets[0])["Memo"] = ""
    our_note(sale, rets[1])  # the other keeps ours
    simulators.load(save(path, doc))
    run_pipeline(warehouse_db, clients_for(), path, "attr-c")
    assert open_exceptions(warehouse_db) == set()
    assert credit_note_legs(warehouse_db, rets[0]["id"]) == {"ok"}
    with warehouse_db.connect() as conn:
        matched = conn.execute(
            "SELECT count(*) FROM recon.refund_journal WHERE cin7_unattributed_notes > 0"
        ).fetchone()[0]
    assert matched == 0


def test_d_a_hand_made_note_matching_two_refunded_returns_is_unattributed(
    simulators, clients_for, warehouse_db, tmp_path
) -> None:
    path, doc = clean(tmp_path, 1604)
    # an instant warehouse return not yet received (no stock leg due), alone on its sale ...
    ret = next(r[0] for r in returns_by_order(doc).values() if len(r) == 1 and not_yet_received(r[0]))
    sale = sale_of(doc, ret)
    # ... and a second return of the same items on the same sale, refunded the same
    twin = copy.deepcopy(ret)
    twin["id"] = "d" * 32
    for n, item in enumerate(twin["return_items"]):
        item["item_id"] = f"{n:032d}"
    for n, refund in enumerate(twin["refunds"]):
        refund["id"] = f"{n + 1:0>32}"
    doc["reveni"]["returns"].append(twin)
    ours = our_note(sale, ret)
    # one note by hand that matches both by SKUs, quantities and total: whose is it? nobody can say
    sale["CreditNotes"].remove(ours)
    sale["CreditNotes"].append(by_hand(sale, "CR-HAND-D", ours["Lines"], memo=""))
    simulators.load(save(path, doc))
    run_pipeline(warehouse_db, clients_for(), path, "attr-d")
    expected = {
        (kind, rid, None) for kind in ("refund_without_credit_note", UNATTRIBUTED) for rid in (ret["id"], twin["id"])
    }
    assert open_exceptions(warehouse_db) == expected
    found = evidence(warehouse_db, f"{UNATTRIBUTED}:{twin['id']}")
    assert [(n["number"], n["returns_matched"]) for n in found["credit_notes"]] == [("CR-HAND-D", 2)]
    actions = planned_actions(warehouse_db, "attr-d")
    assert "create_credit_note" not in actions.get(ret["id"], set()) | actions.get(twin["id"], set())


def test_a_hand_made_note_in_another_currency_than_the_refund_is_unattributed(
    simulators, clients_for, warehouse_db, tmp_path
) -> None:
    path, doc = clean(tmp_path, 1605)
    ret, sale = single_refunded_return(doc)
    our_note(sale, ret)["Memo"] = ""  # same SKUs, quantities and total ...
    other = "GBP" if sale["CustomerCurrency"] != "GBP" else "SEK"
    for refund in ret["refunds"]:
        refund["currency"] = other  # ... but the refund was paid in another currency
    simulators.load(save(path, doc))
    run_pipeline(warehouse_db, clients_for(), path, "attr-e")
    assert open_exceptions(warehouse_db) == {
        ("refund_without_credit_note", ret["id"], None),
        (UNATTRIBUTED, ret["id"], None),
    }


def test_a_planned_credit_note_is_not_sent_once_a_note_by_hand_is_unattributed(
    simulators, clients_for, warehouse_db, tmp_path
) -> None:
    path, doc = clean(tmp_path, 1606)
    ret, sale = single_refunded_return(doc)
    ours = our_note(sale, ret)
    sale["CreditNotes"].remove(ours)
    simulators.load(save(path, doc))
    clients = clients_for()
    rid = ret["id"]
    # run 1: the refund has no credit note; ours is planned but not sent (say postings were held)
    cycle(warehouse_db, clients, path, "outbox-1", post=False)
    assert planned_actions(warehouse_db, "outbox-1")[rid] == {"create_credit_note"}
    # before run 2 a person credits part of it by hand
    sale["CreditNotes"].append(by_hand(sale, "CR-HAND-F", goodwill_lines(ours)))
    simulators.upsert("cin7.sales", sale)
    report = cycle(warehouse_db, clients, path, "outbox-2")
    assert report is not None
    with warehouse_db.connect() as conn:
        status, why = conn.execute(
            "SELECT status, last_error FROM recon.postings WHERE return_id = %s AND action = 'create_credit_note'",
            (rid,),
        ).fetchone()
    assert status == "skipped", (status, why)
    assert UNATTRIBUTED in why
    notes = simulators.cin7_session().get(f"{simulators.cin7}/sale", params={"ID": sale["ID"]}, timeout=30).json()
    assert [n for n in notes["CreditNotes"] if n.get("Memo") == f"reveni:{rid}"] == []
