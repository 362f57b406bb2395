"""The generator: every exception type planted, deterministic, and an answer key that the raw
data bears out case by case."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from recon_simulators.generate import main, parse_args
from recon_simulators.generator import (
    EXCEPTION_TYPES,
    INCOMPATIBLE,
    ITEM_LEVEL,
    MESSY_DEFAULTS,
    MESSY_SHAPES,
    MULTI_DEFECTS,
    NO_POINT_COMPATIBLE,
    PLANTABLE,
    GeneratorConfig,
    generate,
)
from recon_simulators.scenario import read_header_and_records
from recon_simulators.timefmt import parse_ts

pytestmark = pytest.mark.unit

CLOCK = datetime(2026, 11, 20, 12, tzinfo=UTC)
CENT = Decimal("0.01")


def load(path: Path) -> tuple[dict, dict[str, list[dict]]]:
    header, records = read_header_and_records(path)
    grouped: dict[str, list[dict]] = defaultdict(list)
    for kind, record in records:
        grouped[kind].append(record)
    return header, grouped


@pytest.fixture(scope="module")
def scenario(tmp_path_factory) -> tuple[dict, dict[str, list[dict]]]:
    path = tmp_path_factory.mktemp("gen") / "s.jsonl.gz"
    generate(GeneratorConfig(returns=1500, seed=5, clock=CLOCK), path)
    return load(path)


def test_every_exception_type_is_planted_and_clean_returns_dominate(scenario) -> None:
    _, data = scenario
    planted = {e["type"] for e in data["expected_exceptions"]}
    assert planted == set(EXCEPTION_TYPES)
    broken = {e["return_id"] for e in data["expected_exceptions"]}
    assert len(broken) < len(data["reveni.returns"]) / 2
    for entry in data["expected_exceptions"]:
        assert (entry["item_id"] is not None) == (entry["type"] in ITEM_LEVEL)


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "c.json"
    generate(GeneratorConfig(returns=200, seed=3, clock=CLOCK), a)
    generate(GeneratorConfig(returns=200, seed=3, clock=CLOCK), b)
    generate(GeneratorConfig(returns=200, seed=4, clock=CLOCK), c)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()


def test_both_encodings_hold_the_same_scenario(tmp_path: Path) -> None:
    doc, stream = tmp_path / "s.json", tmp_path / "s.jsonl"
    generate(GeneratorConfig(returns=120, seed=8, clock=CLOCK), doc)
    generate(GeneratorConfig(returns=120, seed=8, clock=CLOCK), stream)
    assert load(doc) == load(stream)


def test_realistic_variety(scenario) -> None:
    _, data = scenario
    returns = data["reveni.returns"]
    assert {r["status"] for r in returns} >= {"in_progress", "received", "accepted", "partly_accepted", "rejected"}
    assert {r["currency"] for r in returns if r["currency"]} == {"EUR", "GBP", "SEK"}
    assert {r["instant"] for r in returns} == {True, False}
    assert {r["type"] for r in returns} == {"refund", "exchange", "mixed"}
    assert {s["Type"] for s in data["cin7.sales"]} >= {"Simple Sale", "Advanced Sale"}
    orders = defaultdict(int)
    for r in returns:
        orders[r["order"]["external_id"]] += 1
    assert max(orders.values()) >= 2  # several returns on one order
    assert any(len(r["refunds"]) == 2 for r in returns)  # refund paid in parts
    assert any(n["Memo"] == "" for s in data["cin7.sales"] for n in s["CreditNotes"])  # by-hand credit notes


class Raw:
    """Indexes over the raw scenario that each check below reads."""

    def __init__(self, header: dict, data: dict[str, list[dict]]) -> None:
        self.now = parse_ts(header["clock"])
        self.release_sla = timedelta(hours=header["config"]["release_sla_hours"])
        self.returns = {r["id"]: r for r in data["reveni.returns"]}
        self.sales_by_ref = defaultdict(list)
        self.notes_by_memo = defaultdict(list)
        self.sale_of: dict[str, dict] = {}
        self.exchange_sales = {}
        for sale in data["cin7.sales"]:
            self.sales_by_ref[sale["CustomerReference"]].append(sale)
            if (sale.get("ExternalID") or "").startswith("reveni-exchange:"):
                self.exchange_sales[sale["ExternalID"].split(":", 1)[1]] = sale
            for note in sale["CreditNotes"]:
                self.notes_by_memo[note["Memo"]].append(note)
                self.sale_of[note["TaskID"]] = sale
        self.transfers = {t["Reference"]: t for t in data["cin7.stock_transfers"]}
        self.cin7_skus = {p["SKU"] for p in data["cin7.products"]}
        self.sitoo_skus = {p["sku"] for p in data["sitoo.products"]}
        self.sitoo_orders = {o["externalid"]: o for o in data["sitoo.orders"]}
        self.sitoo_txns = {t["externalid"]: t for t in data["sitoo.warehouse_transactions"]}
        self.mapped = {row["return_point_id"]: row for row in data["location_map"]}
        self.returns_of_order = defaultdict(list)
        for ret in data["reveni.returns"]:
            self.returns_of_order[ret["order"]["external_id"]].append(ret["id"])

    def notes(self, rid: str, status: str | None = "AUTHORISED") -> list[dict]:
        return [n for n in self.notes_by_memo[f"reveni:{rid}"] if status is None or n["Status"] == status]

    def refunded(self, ret: dict) -> Decimal:
        return sum((Decimal(r["amount"]) for r in ret["refunds"] if r["status"] == "paid"), Decimal(0))

    def notes_by_hand(self, ret: dict) -> list[dict]:
        """AUTHORISED notes without our memo on the return's sale."""
        return [
            n
            for sale in self.sales_by_ref[ret["order"]["external_id"]]
            for n in sale["CreditNotes"]
            if n["Status"] == "AUTHORISED" and not n["Memo"].startswith("reveni:")
        ]


def quantities(lines: list[dict], sku: str = "SKU", quantity: str = "Quantity") -> dict[str, Decimal]:
    """SKU -> quantity, summed: what a note made by hand is attributed by (with its total)."""
    summed: dict[str, Decimal] = defaultdict(Decimal)
    for line in lines:
        summed[line[sku]] += Decimal(str(line[quantity]))
    return dict(summed)


def attributable(note: dict, ret: dict, refunded: Decimal) -> bool:
    """The note matches the return by SKUs, quantities and total (operating-model.md §1)."""
    items = [i for i in ret["return_items"] if not i["exchange"]]
    items = [i for i in items if ret["instant"] or i["validation_status"] == "accepted"]
    same_items = quantities(note["Lines"]) == quantities(items, "sku", "quantity")
    return same_items and abs(Decimal(str(note["Total"])) - refunded) <= CENT


def holds(raw: Raw, kind: str, rid: str, iid: str | None) -> bool:
    ret = raw.returns[rid]
    item = next((i for i in ret["return_items"] if i["item_id"] == iid), None)
    ref = f"reveni:{rid}:{iid}"
    point = ret.get("return_point") or {}  # none: the no_return_point overlay (LENIENT_SHAPES)
    mapped = raw.mapped.get(point.get("id"), {})
    notes = raw.notes(rid)
    if kind == "refund_without_credit_note":
        return raw.refunded(ret) > 0 and not notes
    if kind == "credit_note_amount_mismatch":
        return len(notes) == 1 and abs(Decimal(str(notes[0]["Total"])) - raw.refunded(ret)) > Decimal("0.01")
    if kind == "credit_note_tax_mismatch":
        note = notes[0]
        expected = sum(Decimal(str(round(line["Total"] * 0.2, 2))) for line in note["Lines"])
        same_total = abs(Decimal(str(note["Total"])) - raw.refunded(ret)) <= Decimal("0.01")
        return (same_total and any(line["Price"] * line["Quantity"] != line["Total"] for line in note["Lines"])) or (
            same_total and Decimal(str(note["Tax"])) != expected
        )
    if kind == "credit_note_without_refund":
        return raw.refunded(ret) == 0 and len(notes) >= 1
    if kind == "duplicate_credit_note":
        return len(notes) >= 2
    if kind == "double_refund":
        order = raw.sitoo_orders.get(rid)
        return order is not None and any(Decimal(p["moneyamount"]) != 0 for p in order["payments"])
    if kind == "sale_not_found":
        return not raw.sales_by_ref.get(ret["order"]["external_id"])
    if kind == "missing_restock":
        restocked = {line["SKU"] for n in raw.notes(rid, None) for line in n["Restock"]}
        return point.get("type") == "warehouse" and item["sku"] not in restocked
    if kind == "premature_restock":
        lines = [line for n in raw.notes(rid, None) for line in n["Restock"] if line["SKU"] == item["sku"]]
        return item["validation_status"] == "pending" and any(
            line["RestockLocation"] == mapped["cin7_sellable_location"] for line in lines
        )
    if kind == "inspected_not_released":
        due = parse_ts(item["validated_at"]) + raw.release_sla
        return (
            item["validation_status"] == "accepted" and item["restock"] and due < raw.now and ref not in raw.transfers
        )
    if kind == "rejected_item_in_sellable_stock":
        return (item["validation_status"] == "rejected" or not item["restock"]) and ref in raw.transfers
    if kind == "sitoo_stock_missing":
        return item["validation_status"] == "accepted" and item["restock"] and ref not in raw.sitoo_txns
    if kind == "sitoo_stock_wrong_location":
        return str(raw.sitoo_txns[ref]["warehouseid"]) != mapped["sitoo_warehouse_id"]
    if kind == "sitoo_return_record_missing":
        return raw.refunded(ret) > 0 and rid not in raw.sitoo_orders
    if kind == "restock_latency_breach":
        done = parse_ts(raw.transfers[ref]["CompletionDate"])
        return done > parse_ts(item["validated_at"]) + raw.release_sla
    if kind == "unknown_sku_cin7":
        near = item["sku"].strip().upper()
        return item["sku"] not in raw.cin7_skus and near in raw.cin7_skus
    if kind == "unknown_sku_sitoo":
        return item["sku"] not in raw.sitoo_skus and item["sku"] in raw.cin7_skus
    if kind == "unmapped_location":
        return point.get("id") not in raw.mapped
    if kind == "exchange_order_missing":
        return any(i["exchange"] for i in ret["return_items"]) and rid not in raw.exchange_sales
    if kind == "exchange_order_held":
        return raw.exchange_sales[rid]["Order"]["Status"] == "DRAFT"
    if kind == "unattributed_credit_note":
        # our note credits the refund exactly; a note by hand on the sale matches no refunded return (operating-model
        # §1: SKUs, quantities and total), and the return is alone on its sale (no other return is raised)
        unmatched = [n for n in raw.notes_by_hand(ret) if not attributable(n, ret, raw.refunded(ret))]
        ours = abs(Decimal(str(notes[0]["Total"])) - raw.refunded(ret)) <= CENT if len(notes) == 1 else False
        return bool(unmatched) and ours and raw.returns_of_order[ret["order"]["external_id"]] == [rid]
    if kind == "invalid_record":
        try:
            Decimal(ret["amount"])
        except ArithmeticError:
            return True
        return ret["currency"] is None
    raise AssertionError(f"no check for {kind}")


def test_answer_key_is_borne_out_by_the_raw_data(scenario) -> None:
    header, data = scenario
    raw = Raw(header, data)
    failures = [
        entry
        for entry in data["expected_exceptions"]
        if not holds(raw, entry["type"], entry["return_id"], entry["item_id"])
    ]
    assert failures == []


def test_notes_by_hand_are_planted_at_their_rate_and_attributable_only_where_the_key_says(tmp_path: Path) -> None:
    path = tmp_path / "hand.json"
    generate(
        GeneratorConfig(
            returns=400, seed=16, clock=CLOCK, rates={"unattributed_credit_note": 0.05}, plant_each_type_once=False
        ),
        path,
    )
    header, data = load(path)
    raw = Raw(header, data)
    planted = {e["return_id"] for e in data["expected_exceptions"]}
    assert {e["type"] for e in data["expected_exceptions"]} == {"unattributed_credit_note"}
    assert 8 <= len(planted) <= 35  # 5% of 400
    # every note by hand on the sale of a refunded return matches exactly one refunded return of the sale, except
    # on the planted returns' sales: the answer key is the rule of operating-model.md §1, read off the raw data
    for order, rids in raw.returns_of_order.items():
        rets = [raw.returns[rid] for rid in rids if raw.refunded(raw.returns[rid]) > 0]
        for note in raw.notes_by_hand(raw.returns[rids[0]]):
            matching = [r for r in rets if attributable(note, r, raw.refunded(r))]
            assert (len(matching) != 1) == any(rid in planted for rid in rids), (order, note["CreditNoteNumber"])
    assert all(holds(raw, "unattributed_credit_note", rid, None) for rid in planted)


# --- messy shapes ---------------------------------------------------------------------------------------------
MESSY = {**MESSY_DEFAULTS, "multi_defect": 0.08, "multi_return_sale": 0.08, "note_by_hand_other_total": 0.05}


@pytest.fixture(scope="module")
def messy(tmp_path_factory) -> tuple[dict, dict[str, list[dict]], dict]:
    path = tmp_path_factory.mktemp("messy") / "m.jsonl.gz"
    summary = generate(GeneratorConfig(returns=600, seed=23, clock=CLOCK, messy=dict(MESSY)), path)
    header, data = load(path)
    return header, data, summary


def key_of(data: dict[str, list[dict]], own: bool = True) -> dict[str, list[tuple[str, str | None]]]:
    """The answer key by return; ``own``: without the unmapped_location of a return Reveni shows no return point for
    (the no_return_point overlay, checked on its own below), so each shape's test sees the shape's own key."""
    pointless = {r["id"] for r in data["reveni.returns"] if "return_point" not in r}
    by_return = defaultdict(list)
    for e in data["expected_exceptions"]:
        if own and e["type"] == "unmapped_location" and e["return_id"] in pointless:
            continue
        by_return[e["return_id"]].append((e["type"], e["item_id"]))
    return by_return


def nothing_but_unattributed(key: dict, rid: str) -> bool:
    """Nothing raised for the return, unless a note by hand on its sale is unattributed (note_by_hand_other_total
    on another return of the sale: unattributed_credit_note on every refunded return of the sale, §1)."""
    return key.get(rid, [("unattributed_credit_note", None)]) == [("unattributed_credit_note", None)]


def sale_of_return(raw: Raw, ret: dict) -> dict:
    return raw.sales_by_ref[ret["order"]["external_id"]][0]


def test_messy_shapes_are_off_by_default_and_each_is_planted_when_its_rate_is_on(messy, tmp_path: Path) -> None:
    summary = generate(GeneratorConfig(returns=300, seed=5, clock=CLOCK), tmp_path / "clean.json")
    assert summary["messy"] == {}
    _, _, summary = messy
    assert set(MESSY_SHAPES) <= set(summary["messy"])
    assert {f"multi_defect:{name}" for name, *_ in MULTI_DEFECTS} <= set(summary["messy"])
    assert {f"multi_return_sale:{n}:{kind}" for n in (2, 3) for kind in ("simple", "advanced")} <= set(summary["messy"])
    for shape in (
        "instant_received_later:static",
        "instant_received_later:event",
        "void_and_draft_notes:ours_draft",
        "void_and_draft_notes:by_hand_draft",
    ):
        assert shape in summary["messy"]
    with pytest.raises(ValueError, match="unknown messy shapes"):
        generate(GeneratorConfig(returns=10, seed=1, clock=CLOCK, messy={"no_such_shape": 0.1}), tmp_path / "x.json")


def test_messy_scenarios_are_deterministic_per_seed(tmp_path: Path) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    generate(GeneratorConfig(returns=200, seed=9, clock=CLOCK, messy=dict(MESSY)), a)
    generate(GeneratorConfig(returns=200, seed=9, clock=CLOCK, messy=dict(MESSY)), b)
    assert a.read_bytes() == b.read_bytes()


def test_the_combination_table_plants_only_compatible_defects() -> None:
    for name, defects, _, _ in MULTI_DEFECTS:
        assert 2 <= len(defects) <= 3, name
        types = [t for t, _ in defects]
        assert set(types) <= set(EXCEPTION_TYPES), name
        for (a, ia), (b, ib) in ((x, y) for i, x in enumerate(defects) for y in defects[i + 1 :]):
            if a in ITEM_LEVEL and b in ITEM_LEVEL:
                assert ia != ib or ia == "all", (name, a, b)  # each item-level defect on its own item
            for (first, second), _why in INCOMPATIBLE.items():
                pair = {first, second.removesuffix(" same item")}
                if "*" not in first + second and {a, b} == pair:
                    assert second.endswith(" same item"), (name, a, b)
                    assert ia != ib, (name, a, b)
            assert not {a, b} & {"sale_not_found", "unmapped_location", "invalid_record"}, name


def messy_holds(raw: Raw, kind: str, rid: str, iid: str | None) -> bool:
    """``holds`` for the messy shapes: a note by hand of another total is unattributed on every refunded return
    of its sale, and a refund in another currency than its note is an amount mismatch (§1, §2)."""
    ret = raw.returns[rid]
    if kind == "unattributed_credit_note":
        rets = [raw.returns[r] for r in raw.returns_of_order[ret["order"]["external_id"]]]
        rets = [r for r in rets if raw.refunded(r) > 0]
        unmatched = [n for n in raw.notes_by_hand(ret) if sum(attributable(n, r, raw.refunded(r)) for r in rets) != 1]
        return raw.refunded(ret) > 0 and bool(unmatched)
    if kind == "credit_note_amount_mismatch":
        notes, sale = raw.notes(rid), sale_of_return(raw, ret)
        other = {r["currency"] for r in ret["refunds"]} != {sale["CustomerCurrency"]}
        return holds(raw, kind, rid, iid) or (len(notes) == 1 and other)
    return holds(raw, kind, rid, iid)


def test_messy_answer_key_is_borne_out_by_the_raw_data(messy) -> None:
    header, data, _ = messy
    raw = Raw(header, data)
    failures = [e for e in data["expected_exceptions"] if not messy_holds(raw, e["type"], e["return_id"], e["item_id"])]
    assert failures == []
    for entry in data["expected_exceptions"]:
        assert (entry["item_id"] is not None) == (entry["type"] in ITEM_LEVEL)
    keys = [(e["type"], e["return_id"], e["item_id"]) for e in data["expected_exceptions"]]
    assert len(keys) == len(set(keys))


def test_multi_defect_returns_carry_every_defect_of_their_combination(messy) -> None:
    header, data, summary = messy
    raw, key = Raw(header, data), key_of(data)
    for name, defects, (kind, instant, _), _ in MULTI_DEFECTS:
        for rid in summary["messy_samples"][f"multi_defect:{name}"]:
            ret = raw.returns[rid]
            assert (ret["return_point"]["type"], ret["instant"]) == (kind, instant), name
            items = [i["item_id"] for i in ret["return_items"]]
            wanted = sorted((t, items[i] if isinstance(i, int) else None) for t, i in defects if i != "all")
            wanted += [(t, item) for t, i in defects if i == "all" for item in items]
            assert sorted(key[rid]) == sorted(wanted), (name, rid)
            # the return is alone on its sale: nothing else there is raised
            assert raw.returns_of_order[ret["order"]["external_id"]] == [rid]
    # two (three) missing restocks on one return: none of those items has a restock line anywhere
    for rid in summary["messy_samples"]["multi_defect:missing_restock_x3"]:
        restocked = {line["SKU"] for n in raw.notes(rid, None) for line in n["Restock"]}
        missing = [i["sku"] for i in raw.returns[rid]["return_items"] if ("missing_restock", i["item_id"]) in key[rid]]
        assert len(missing) == 3
        assert restocked.isdisjoint(missing)
    # refunded at once, received, no credit note at all: nothing on the sale credits it or restocks it
    for rid in summary["messy_samples"]["multi_defect:instant_no_note_received"]:
        ret = raw.returns[rid]
        assert raw.refunded(ret) > 0
        assert ret["received_at"] is not None
        assert raw.notes(rid, None) == []
        assert raw.notes_by_hand(ret) == []


def test_multi_return_sales_and_a_simple_sale_holds_one_credit_note(messy) -> None:
    header, data, summary = messy
    raw = Raw(header, data)
    for sale in data["cin7.sales"]:
        if sale["Type"] == "Simple Sale":
            assert len(sale["CreditNotes"]) <= 1, sale["ID"]  # apib L20340
    simple = 0
    for rid in summary["messy_samples"]["multi_return_sale"]:
        order = raw.returns[rid]["order"]["external_id"]
        rids = raw.returns_of_order[order]
        assert 2 <= len(rids) <= 3
        sale = raw.sales_by_ref[order][0]
        if sale["Type"] == "Simple Sale":
            simple += 1
            refunded = [r for r in rids if raw.refunded(raw.returns[r]) > 0]
            assert len(refunded) <= 1, order
            assert all(r == rids[0] for r in refunded)  # the first; the others not refunded
    assert simple >= 4


def test_split_refunds_sum_to_the_credit_note_total(messy) -> None:
    header, data, summary = messy
    raw, key = Raw(header, data), key_of(data)
    parts = set()
    for rid in summary["messy_samples"]["split_refund"]:
        ret = raw.returns[rid]
        parts.add(len(ret["refunds"]))
        notes = raw.notes(rid)
        if rid in key or len(notes) != 1:
            continue
        assert abs(Decimal(str(notes[0]["Total"])) - raw.refunded(ret)) <= CENT, rid
    assert parts >= {2, 3}


def test_notes_by_hand_with_the_total_are_attributed_and_of_another_total_unattributed(messy) -> None:
    header, data, summary = messy
    raw, key = Raw(header, data), key_of(data)
    for rid in summary["messy_samples"]["note_by_hand_with_total"]:
        ret = raw.returns[rid]
        assert raw.notes(rid, None) == []  # no note of ours
        hand = raw.notes_by_hand(ret)
        assert sum(attributable(n, ret, raw.refunded(ret)) for n in hand) == 1
        assert all(not n["Memo"].startswith("reveni:") for n in hand)
        assert nothing_but_unattributed(key, rid), rid
    for rid in summary["messy_samples"]["note_by_hand_other_total"]:
        ret = raw.returns[rid]
        assert raw.notes(rid, None) == []
        hand = [n for n in raw.notes_by_hand(ret) if not attributable(n, ret, raw.refunded(ret))]
        assert hand
        items = [i for i in ret["return_items"] if ret["instant"] or i["validation_status"] == "accepted"]
        assert any(quantities(n["Lines"]) == quantities(items, "sku", "quantity") for n in hand)
        assert all(abs(Decimal(str(n["Total"])) - raw.refunded(ret)) > CENT for n in hand)
        assert sorted(key[rid]) == [("refund_without_credit_note", None), ("unattributed_credit_note", None)]
        for other in raw.returns_of_order[ret["order"]["external_id"]]:
            if raw.refunded(raw.returns[other]) > 0:
                assert ("unattributed_credit_note", None) in key[other], (rid, other)


def test_void_and_draft_notes_beside_the_authorised_one_are_no_exception(messy) -> None:
    header, data, summary = messy
    raw, key = Raw(header, data), key_of(data)
    for rid in summary["messy_samples"]["void_and_draft_notes"]:
        ret = raw.returns[rid]
        statuses = sorted(
            n["Status"]
            for n in sale_of_return(raw, ret)["CreditNotes"]
            if n["Memo"] == f"reveni:{rid}" or not n["Memo"].startswith("reveni:")
        )
        assert statuses == ["AUTHORISED", "DRAFT", "VOIDED"], rid
        assert len(raw.notes(rid)) == 1
        assert nothing_but_unattributed(key, rid), rid


def test_refunds_in_another_currency_than_their_note_are_an_amount_mismatch(messy) -> None:
    header, data, summary = messy
    raw, key = Raw(header, data), key_of(data)
    for rid in summary["messy_samples"]["other_currency"]:
        ret = raw.returns[rid]
        sale = sale_of_return(raw, ret)
        assert {r["currency"] for r in ret["refunds"]} != {sale["CustomerCurrency"]}
        (note,) = raw.notes(rid)
        assert abs(Decimal(str(note["Total"])) - raw.refunded(ret)) <= CENT  # same figure, other currency
        assert key[rid] == [("credit_note_amount_mismatch", None)]


def test_instant_returns_received_after_their_credit_restock_on_the_authorised_note(messy) -> None:
    header, data, summary = messy
    raw, key = Raw(header, data), key_of(data)
    for rid in summary["messy_samples"]["instant_received_later:static"]:
        ret = raw.returns[rid]
        assert ret["instant"]
        assert ret["received_at"]
        (note,) = raw.notes(rid)
        assert note["Restock"]
        assert all(parse_ts(line["RestockDate"]) > parse_ts(note["CreditNoteDate"]) for line in note["Restock"])
        assert nothing_but_unattributed(key, rid), rid
    events = defaultdict(list)
    for event in data["events"]:
        events[event["k"]].append(event)
    for rid in summary["messy_samples"]["instant_received_later:event"]:
        ret = raw.returns[rid]
        assert ret["instant"]
        assert ret["received_at"] is None
        assert raw.refunded(ret) > 0
        assert len(raw.notes(rid)) == 1
        assert raw.notes(rid)[0]["Restock"] == []
        later = [e for e in events["reveni.returns"] if e["v"]["id"] == rid]
        assert later
        assert later[0]["v"]["status"] == "received"
        sale = next(e["v"] for e in events["cin7.sales"] if e["v"]["CustomerReference"] == ret["order"]["external_id"])
        (note,) = [n for n in sale["CreditNotes"] if n["Memo"] == f"reveni:{rid}"]
        assert note["Status"] == "AUTHORISED"
        assert note["RestockStatus"] == "AUTHORISED"
        assert {line["SKU"] for line in note["Restock"]} == {i["sku"] for i in ret["return_items"]}
        assert all(parse_ts(line["RestockDate"]) > parse_ts(note["CreditNoteDate"]) for line in note["Restock"])
        assert nothing_but_unattributed(key, rid), rid


def test_partly_accepted_shapes_refund_only_the_accepted_items(messy) -> None:
    header, data, summary = messy
    raw = Raw(header, data)
    assert summary["messy_samples"]["partly_accepted"]
    for rid in summary["messy_samples"]["partly_accepted"]:
        ret = raw.returns[rid]
        if rid not in summary["messy_samples"].get("unknown_status", []):  # else served otherwise (LENIENT_SHAPES)
            assert ret["status"] == "partly_accepted"
        assert not ret["instant"]
        statuses = {i["validation_status"] for i in ret["return_items"]}
        assert statuses == {"accepted", "rejected"}
        accepted = sum(
            Decimal(i["price"]) * i["quantity"] for i in ret["return_items"] if i["validation_status"] == "accepted"
        )
        assert abs(raw.refunded(ret) - accepted) <= CENT * len(ret["return_items"]), rid


def test_the_cli_takes_every_plantable_type_and_the_messy_shapes(tmp_path: Path) -> None:
    _, rates, messy = parse_args(["--out", str(tmp_path / "x.json"), *[f"--rate={t}=0.01" for t in PLANTABLE]])
    assert set(rates) == set(PLANTABLE)
    assert set(rates.values()) == {0.01}
    assert messy == MESSY_DEFAULTS
    _, _, messy = parse_args(["--out", "x.json", "--clean"])
    assert messy == {}
    _, _, messy = parse_args(["--out", "x.json", "--clean", "--messy", "split_refund=0.2"])
    assert messy == {"split_refund": 0.2}
    with pytest.raises(SystemExit):
        parse_args(["--out", "x.json", "--messy", "nope=1"])
    main(["--out", str(tmp_path / "m.json"), "--returns", "120", "--seed", "4", "--clock", "2026-11-20T12:00:00Z"])
    assert (tmp_path / "m.location_map.csv").exists()


# --- Reveni read leniently (generator.py LENIENT_SHAPES; operating-model.md §2, last paragraph) ---------------------
# the statuses operating-model.md §2 documents (a status outside them is "kept and raised")
DOCUMENTED_STATUSES = {
    "incomplete",
    "in_progress",
    "shipped",
    "received",
    "for_review",
    "accepted",
    "partly_accepted",
    "rejected",
    "cancelled",
}


def test_clean_scenarios_serve_every_field_and_expect_no_data_quality_warning(scenario) -> None:
    _, data = scenario
    assert data["expected_dq_warnings"] == []
    for ret in data["reveni.returns"]:
        assert ret["status"] in DOCUMENTED_STATUSES
        assert ret["created_at"]
        assert ret["updated_at"]
        assert ret["return_point"]
        assert all(r.get("id") for r in ret["refunds"])


def test_lenient_shapes_are_in_the_raw_data_and_the_answer_key_says_what_follows(messy) -> None:
    header, data, summary = messy
    raw, key = Raw(header, data), key_of(data, own=False)
    samples = summary["messy_samples"]
    shapes = set(summary["messy"])
    assert {f"unknown_status:{v}" for v in ("dashboard", "peer", "missing")} <= shapes
    assert {"no_created_at:updated_at", "no_created_at:no_updated_at", "no_return_point", "refund_without_id"} <= shapes
    # an unknown (or no) status: kept, and a data-quality warning naming the return and the value as served
    warnings = {w["return_id"]: w for w in data["expected_dq_warnings"]}
    assert len(warnings) == len(data["expected_dq_warnings"])
    assert set(warnings) == set(samples["unknown_status"])
    for rid, warning in warnings.items():
        ret = raw.returns[rid]
        assert (warning["field"], warning["item_id"], warning["value"]) == ("status", None, ret.get("status")), rid
        assert ret.get("status") not in DOCUMENTED_STATUSES, rid
        assert not any(i["exchange"] for i in ret["return_items"]), rid  # the status would decide the exchange check
        assert ("invalid_record", None) not in key[rid], rid  # kept: reconciled, never quarantined
    assert {r["id"] for r in raw.returns.values() if r.get("status") not in DOCUMENTED_STATUSES} == set(warnings)
    # no created_at (and no updated_at): nothing else changes, the key is the return's own (messy_holds above)
    undated = {r["id"] for r in raw.returns.values() if "created_at" not in r}
    assert undated == set(samples["no_created_at"])
    assert {r["id"] for r in raw.returns.values() if "updated_at" not in r} <= undated
    # no return point: unmapped_location (§1), beside only the defects it does not block
    pointless = {r["id"] for r in raw.returns.values() if "return_point" not in r}
    assert pointless == set(samples["no_return_point"])
    for rid in pointless:
        assert ("unmapped_location", None) in key[rid], rid
        assert {t for t, _ in key[rid]} - {"unmapped_location"} <= NO_POINT_COMPATIBLE, rid
    # refunds without an id: the refunds are there, sum as before, and none has an id
    idless = {r["id"] for r in raw.returns.values() if r["refunds"] and not any("id" in f for f in r["refunds"])}
    assert idless == set(samples["refund_without_id"])
    assert all(raw.refunded(raw.returns[rid]) > 0 for rid in idless)
    # messy: on sales with several returns, and together with other defects
    lenient = set(warnings) | undated | pointless | idless
    shared = {rid for rid in lenient if len(raw.returns_of_order[raw.returns[rid]["order"]["external_id"]]) > 1}
    assert shared
    assert {rid for rid in lenient if {t for t, _ in key.get(rid, [])} - {"unmapped_location"}}
    assert any({t for t, _ in key[rid]} - {"unmapped_location"} for rid in pointless)
    assert any(len(raw.returns[rid]["refunds"]) > 1 for rid in idless)
