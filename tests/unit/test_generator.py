"""The generator: every exception type planted, deterministic, and an answer key that the raw
data bears out case by case."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from recon_simulators.generator import EXCEPTION_TYPES, ITEM_LEVEL, GeneratorConfig, generate
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
        return [n for sale in self.sales_by_ref[ret["order"]["external_id"]] for n in sale["CreditNotes"]
                if n["Status"] == "AUTHORISED" and not n["Memo"].startswith("reveni:")]  # fmt: skip


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
    mapped = raw.mapped.get(ret["return_point"]["id"], {})
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
        return ret["return_point"]["type"] == "warehouse" and item["sku"] not in restocked
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
        return ret["return_point"]["id"] not in raw.mapped
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
        entry for entry in data["expected_exceptions"]
        if not holds(raw, entry["type"], entry["return_id"], entry["item_id"])
    ]  # fmt: skip
    assert failures == []


def test_notes_by_hand_are_planted_at_their_rate_and_attributable_only_where_the_key_says(tmp_path: Path) -> None:
    path = tmp_path / "hand.json"
    generate(GeneratorConfig(returns=400, seed=16, clock=CLOCK, rates={"unattributed_credit_note": 0.05},
                             plant_each_type_once=False), path)  # fmt: skip
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
