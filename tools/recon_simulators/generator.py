"""Scenario generator: a realistic merchant's returns across the three systems, with every
exception type of the taxonomy planted at a configurable rate, and the exact answer key.

Each return is built clean and consistent across Reveni, Cin7 Core and Sitoo; a broken return
gets exactly one defect, planted on a profile where that defect is the only thing wrong, so
``expected_exceptions`` is exact. The messy shapes (``GeneratorConfig.messy``, off by default; the CLI's
``MESSY_DEFAULTS``) add what real merchants produce: several defects on one return (``MULTI_DEFECTS``, each
combination on a profile where exactly those defects are wrong; ``INCOMPATIBLE``: what is never combined),
several returns on one sale, notes made by hand, void and draft notes, refunds in parts or in another
currency, goods received after the credit, and what Reveni may leave out or spell otherwise (``LENIENT_SHAPES``:
an unknown status, no created_at, no return point, refunds without id; the warnings the spec says an unknown status
raises are ``expected_dq_warnings``); their answer-key entries follow operating-model.md §1-§3. Time
margins keep every SLA decision at least six hours from its boundary, so the key holds for a run within six
hours of the scenario clock. Output is streamed, so a million returns never sit in memory. Rules:
docs/scenarios.md.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from recon_simulators.catalog import (
    CURRENCIES,
    Catalog,
    Product,
    Store,
    Warehouse,
    build_catalog,
    cin7_locations,
    cin7_products,
    det_hex,
    det_uuid,
    location_map_rows,
    sitoo_products,
    sitoo_stores_and_warehouses,
)
from recon_simulators.scenario import ScenarioWriter
from recon_simulators.timefmt import iso_z, unix

EXCEPTION_TYPES = (
    "refund_without_credit_note",
    "credit_note_amount_mismatch",
    "credit_note_tax_mismatch",
    "credit_note_without_refund",
    "duplicate_credit_note",
    "double_refund",
    "sale_not_found",
    "missing_restock",
    "premature_restock",
    "inspected_not_released",
    "rejected_item_in_sellable_stock",
    "sitoo_stock_missing",
    "sitoo_stock_wrong_location",
    "sitoo_return_record_missing",
    "restock_latency_breach",
    "unknown_sku_cin7",
    "unknown_sku_sitoo",
    "unmapped_location",
    "exchange_order_missing",
    "exchange_order_held",
    "invalid_record",
    # last, so the rolls of the types before it plant what they planted when it was opt-in
    "unattributed_credit_note",
)
OPT_IN_TYPES: tuple[str, ...] = ()  # every type is planted by default now (issue 17)
PLANTABLE = EXCEPTION_TYPES + OPT_IN_TYPES
ITEM_LEVEL = frozenset(
    {
        "missing_restock",
        "premature_restock",
        "inspected_not_released",
        "rejected_item_in_sellable_stock",
        "sitoo_stock_missing",
        "sitoo_stock_wrong_location",
        "restock_latency_breach",
        "unknown_sku_cin7",
        "unknown_sku_sitoo",
    }
)
NEEDS_RESTOCKABLE = frozenset(
    {"inspected_not_released", "sitoo_stock_missing", "sitoo_stock_wrong_location", "restock_latency_breach"}
)
DEFAULT_RATE = 0.008  # per type: about 17% of returns broken, clean ones outnumber them

# --- messy shapes (docs/scenarios.md, "Messy shapes") ---------------------------------------------------
# The shapes real merchants produce, each at a rate of its own. GeneratorConfig.messy is empty by default (the
# seeded scenarios of the tests stay what they were); the CLI uses MESSY_DEFAULTS unless --clean.
MESSY_SHAPES = (
    "multi_defect",  # a broken return with 2 or 3 defects at once (MULTI_DEFECTS), per return
    "multi_return_sale",  # 2 or 3 returns on one sale, Simple and Advanced, per order
    "instant_received_later",  # instant return credited at once, goods restocked later on that note, per return
    "partly_accepted",  # of the shaped returns refunded on acceptance: some items accepted, some rejected
    "split_refund",  # of the refunded returns: the refund paid in 2 or 3 payments
    "note_by_hand_with_total",  # the return's only note made by hand, same SKUs, quantities, total: attributed
    "note_by_hand_other_total",  # the return's only note made by hand, another total: unattributed (§1)
    "void_and_draft_notes",  # a VOIDED and a DRAFT note beside the AUTHORISED one: nothing wrong
    "other_currency",  # the refund in another currency than the credit note (the sale's)
    # Reveni read leniently (operating-model.md §2, last paragraph): fields and status values no public source shows.
    # Overlays on a return of whatever else it is (its defects, its shape, its sale): LENIENT_SHAPES below.
    "unknown_status",  # the return's status outside the documented set, or none: kept, and raised (a DQ warning)
    "no_created_at",  # no created_at (and, in one variant, no updated_at either): nothing else changes
    "no_return_point",  # no return_point: not in the location map, so unmapped_location (§1)
    "refund_without_id",  # the refunds carry no id: nothing changes (the key is type + return [+ item], §3)
)
# drawn in the return schedule in place of a single planted type: a return has one shape at most
SCHEDULED_SHAPES = (
    "multi_defect",
    "instant_received_later",
    "note_by_hand_with_total",
    "note_by_hand_other_total",
    "void_and_draft_notes",
    "other_currency",
)
MESSY_DEFAULTS = {
    "multi_defect": 0.05,
    "multi_return_sale": 0.05,
    "instant_received_later": 0.04,
    "partly_accepted": 0.3,
    "split_refund": 0.1,
    "note_by_hand_with_total": 0.03,
    "note_by_hand_other_total": 0.03,
    "void_and_draft_notes": 0.03,
    "other_currency": 0.03,
    "unknown_status": 0.03,
    "no_created_at": 0.03,
    "no_return_point": 0.02,
    "refund_without_id": 0.04,
}
# Reveni read leniently: operating-model.md §2 (last paragraph): "Fields and status values no public source shows are
# read leniently: a return is quarantined only when what identifies it or its money is unusable; an unknown status is
# kept and raised." What public sources show of a return: reveni_api.md §1 "Return object: known fields" (id, status,
# amount, currency [R-C]; order.external_id and the items [R-U]); everything else, return_point, created_at/updated_at
# and the refunds (§3 "Recommended simulator model": refunds[] {amount, currency, status, refunded_at}, no id) is
# [R-I]/[PEER]. Each shape is an overlay on a return that is otherwise what the schedule made it (its planted defects,
# messy shape and sale, several returns on one sale included), drawn per eligible return at its rate (_lenient):
#   unknown_status: the answer key keeps the return's exceptions ("kept": reconciled as any other return; no
#     invalid_record) and lists a data-quality warning in expected_dq_warnings ("raised"). Variants in turn: the
#     dashboard's spelling of its status ("Partly Accepted": reveni_api.md "Status lifecycle" [R-C], whose API
#     spellings are unknown [R-I]), a peer's status ("on_hold": REVER ON_HOLD, reveni_api.md §2), no status at all.
#     Never on a return with an exchange requested: whether an exchange order is due depends on whether the return
#     was cancelled (§2 "exchange requested"), which a status no one documents does not say; the spec leaves it open.
#   no_created_at: the answer key is the return's own: no SLA of §2/§3 runs from the return's creation (the release
#     and restock SLAs run from the item's acceptance: "accepted, still in holding past SLA", "within the restock
#     SLA"), and the return stays in the window (it is dated by its last update, else when first read). Variants: no
#     created_at; neither created_at nor updated_at.
#   no_return_point: "A return point that is not in the map is never defaulted to anything: it is an exception" (§1):
#     unmapped_location, which blocks the return's stock postings (§3) and, the return's kind being unknown, its stock
#     and Sitoo return-record checks (INCOMPATIBLE); so it goes only on returns whose defects are the checks it does
#     not block (NO_POINT_COMPATIBLE), and the key is those defects plus unmapped_location.
#   refund_without_id: the answer key is the return's own: exceptions are keyed by type + return id [+ item id] (§3),
#     never by a refund; a refund paid in parts (split_refund) still sums to what was refunded.
LENIENT_SHAPES = ("unknown_status", "no_created_at", "no_return_point", "refund_without_id")
LENIENT_VARIANTS = {"unknown_status": 3, "no_created_at": 2}
UNKNOWN_STATUS_VARIANTS = ("dashboard", "peer", "missing")
NO_POINT_COMPATIBLE = frozenset(
    {
        "refund_without_credit_note",
        "credit_note_amount_mismatch",
        "credit_note_tax_mismatch",
        "credit_note_without_refund",
        "duplicate_credit_note",
        "unattributed_credit_note",
        "double_refund",
        "exchange_order_missing",
        "exchange_order_held",
    }
)
# Broken returns with several defects at once: (name, defects, profile). A defect is (type, item index), None for a
# return-level type, "all" for every item. The profile (kind, instant, status) is the one where exactly these
# defects, and nothing else, are wrong. "partly" says whether an extra rejected item may make it partly accepted
# (only returns refunded on acceptance: an instant return is refunded whole).
MULTI_DEFECTS: tuple[tuple[str, tuple[tuple[str, int | str | None], ...], tuple[str, bool, str], bool], ...] = (
    ("missing_restock_x2", (("missing_restock", 0), ("missing_restock", 1)), ("warehouse", False, "received"), False),
    (
        "missing_restock_x3",
        (("missing_restock", 0), ("missing_restock", 1), ("missing_restock", 2)),
        ("warehouse", False, "received"),
        False,
    ),
    # refunded at once, received, no credit note at all: our one credit note carries every restock line
    (
        "instant_no_note_received",
        (("refund_without_credit_note", None), ("missing_restock", "all")),
        ("warehouse", True, "received"),
        False,
    ),
    (
        "not_released_and_late_release",
        (("inspected_not_released", 0), ("restock_latency_breach", 1)),
        ("warehouse", False, "accepted"),
        True,
    ),
    (
        "amount_mismatch_and_missing_restock",
        (("credit_note_amount_mismatch", None), ("missing_restock", 0)),
        ("warehouse", True, "received"),
        False,
    ),
    (
        "tax_mismatch_and_premature_restock",
        (("credit_note_tax_mismatch", None), ("premature_restock", 0)),
        ("warehouse", True, "received"),
        False,
    ),
    (
        "duplicate_note_and_not_released",
        (("duplicate_credit_note", None), ("inspected_not_released", 0)),
        ("warehouse", False, "accepted"),
        True,
    ),
    (
        "amount_mismatch_and_store_stock_missing",
        (("credit_note_amount_mismatch", None), ("sitoo_stock_missing", 0)),
        ("store", False, "accepted"),
        True,
    ),
    (
        "store_stock_and_record_missing",
        (("sitoo_stock_missing", 0), ("sitoo_return_record_missing", None)),
        ("store", False, "accepted"),
        True,
    ),
    (
        "store_stock_record_missing_and_wrong_location",
        (("sitoo_stock_missing", 0), ("sitoo_return_record_missing", None), ("sitoo_stock_wrong_location", 1)),
        ("store", False, "accepted"),
        True,
    ),
    (
        "premature_and_missing_restock",
        (("premature_restock", 0), ("missing_restock", 1)),
        ("warehouse", False, "received"),
        False,
    ),
)
# Pairs the generator never plants on one return (on one item, for "same item"), and why: the first defect hides,
# blocks or contradicts the second, so the answer key could not be exact.
INCOMPATIBLE = {
    ("sale_not_found", "*"): "blocks every Cin7 Core check of the return",
    ("unmapped_location", "*"): "blocks the stock checks and the Sitoo return record check of the return",
    ("invalid_record", "*"): "the return is quarantined: none of its legs is reconciled",
    ("unknown_sku_cin7", "* same item"): "blocks the item's Cin7 Core checks",
    ("unknown_sku_sitoo", "* same item"): "blocks the item's Sitoo checks",
    ("refund_without_credit_note", "credit_note_amount_mismatch"): "no note to mismatch",
    ("refund_without_credit_note", "credit_note_tax_mismatch"): "no note to mismatch",
    ("refund_without_credit_note", "duplicate_credit_note"): "no note to duplicate",
    ("refund_without_credit_note", "credit_note_without_refund"): "refunded or not",
    ("credit_note_without_refund", "*refund*"): "no refund: none of the refund checks applies",
    ("duplicate_credit_note", "credit_note_amount_mismatch"): "amount and tax are compared on a single note only",
    ("duplicate_credit_note", "credit_note_tax_mismatch"): "amount and tax are compared on a single note only",
    ("credit_note_amount_mismatch", "credit_note_tax_mismatch"): "tax is compared only when the total matches",
    ("missing_restock", "inspected_not_released same item"): "not released is raised only for units in holding",
    ("missing_restock", "premature_restock same item"): "no restock, so nothing reached sellable stock",
    ("inspected_not_released", "restock_latency_breach same item"): "released late or not released",
    ("premature_restock", "inspected_not_released same item"): "pending or accepted",
    ("premature_restock", "rejected_item_in_sellable_stock same item"): "pending or rejected",
    ("sitoo_stock_missing", "sitoo_stock_wrong_location same item"): "a transaction anywhere is no missing stock",
    ("sitoo_stock_missing", "restock_latency_breach same item"): "stocked late or not stocked",
    ("unattributed_credit_note", "refund_without_credit_note other return"): (
        "planted together only by note_by_hand_other_total, whose key has both for the return"
    ),
}
# The variants each shape cycles through (so a scenario with enough returns holds every one)
SHAPE_VARIANTS = {"multi_defect": len(MULTI_DEFECTS), "instant_received_later": 2, "void_and_draft_notes": 2}
# (returns on the sale, Simple Sale?) in turn
MULTI_RETURN_VARIANTS = ((2, True), (3, False), (3, True), (2, False))
ALONE = frozenset({"sale_not_found", "unattributed_credit_note", "multi_defect"})  # never share their sale
CENT = Decimal("0.01")
H = timedelta(hours=1)
D = timedelta(days=1)
MARGIN = 6 * H
TRANSFER_PREFIX = "reveni:"


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, ROUND_HALF_UP)


@dataclass
class GeneratorConfig:
    returns: int = 1000
    seed: int = 1
    clock: datetime = field(default_factory=lambda: datetime.now(UTC).replace(minute=0, second=0, microsecond=0))
    rates: dict[str, float] = field(default_factory=lambda: dict.fromkeys(EXCEPTION_TYPES, DEFAULT_RATE))
    release_sla: timedelta = 48 * H
    restock_sla: timedelta = 24 * H
    plant_each_type_once: bool = True  # and each messy shape (and variant) whose rate is on
    event_fraction: float = 0.05
    sitoo_refund_transaction_type: int = 10
    # a catalog (products, stores, warehouses) of its own seed and size, shared by scenarios that
    # describe one merchant at different times; None: drawn from the scenario's own seed
    catalog: tuple[int, int] | None = None
    first_order_number: int = 100000  # scenarios of one merchant at different times use distinct ranges
    # messy shapes (MESSY_SHAPES) -> rate; empty: none (MESSY_DEFAULTS: the CLI's default)
    messy: dict[str, float] = field(default_factory=dict)


@dataclass
class Line:
    product: Product
    quantity: int
    price: Decimal
    rate: Decimal

    def amounts(self, quantity: int) -> tuple[Decimal, Decimal]:
        total = cents(self.price * quantity)
        return total, cents(total * self.rate)


@dataclass
class Item:
    item_id: str
    line: Line
    quantity: int
    sku: str
    status: str = "pending"  # pending | accepted | rejected
    restock: bool | None = None
    exchange_sku: str | None = None


@dataclass
class Plan:
    """What one return of an order is to be: a single planted type, or a messy shape (and its variant)."""

    plant: str | None = None
    shape: str | None = None
    variant: int = 0
    partly: bool = False  # partly accepted: an extra item, rejected
    unrefunded: bool = False  # a further return of a Simple Sale: no refund and no document in Cin7 Core

    @property
    def combo(self) -> tuple | None:
        return MULTI_DEFECTS[self.variant] if self.shape == "multi_defect" else None

    def items_needed(self) -> int:
        needed = 1
        if self.combo is not None:
            indexes = [i for _, i in self.combo[1] if isinstance(i, int)]
            needed = max(indexes) + 1 if indexes else 2
        return needed + 1 if self.partly else needed


@dataclass
class Return:
    return_id: str
    kind: str  # warehouse | store
    return_point: tuple[str, str]
    instant: bool
    rtype: str
    status: str
    items: list[Item]
    created: datetime
    received: datetime | None = None
    validated: datetime | None = None
    refunded_at: datetime | None = None
    plant: str | None = None
    plant_item: Item | None = None
    two_part_refund: bool = False
    manual_credit_note: bool = False
    # the defects planted, each with its item (None: return-level); set once the items' states are known
    defects: list[tuple[str, Item | None]] = field(default_factory=list)
    shape: str | None = None
    variant: int = 0
    refund_parts: int = 1
    refund_currency: str | None = None  # other_currency: the refund's, not the sale's
    hand_memo: str = ""  # the memo of a note made by hand
    lenient: dict[str, int] = field(default_factory=dict)  # LENIENT_SHAPES on the return -> variant

    def target_item(self) -> Item:
        """The item a planted item-level defect sits on (the first whose state fits it)."""
        if self.plant_item is None:
            wanted = self.items[0]
            if self.plant == "rejected_item_in_sellable_stock":
                wanted = next((i for i in self.items if i.status == "rejected"), wanted)
            elif self.plant in NEEDS_RESTOCKABLE:
                wanted = next((i for i in self.items if i.status == "accepted" and i.restock), wanted)
            self.plant_item = wanted
        return self.plant_item

    def has(self, kind: str) -> bool:
        return any(k == kind for k, _ in self.defects)

    def on(self, kind: str, item: Item) -> bool:
        """The item-level defect ``kind`` is planted on ``item``."""
        return any(k == kind and i is item for k, i in self.defects)

    @property
    def refunded_items(self) -> list[Item]:
        if self.refunded_at is None:
            return []
        refundable = [i for i in self.items if i.exchange_sku is None]
        return refundable if self.instant else [i for i in refundable if i.status == "accepted"]


class Generator:
    def __init__(self, config: GeneratorConfig) -> None:
        self.cfg = config
        self.rng = random.Random(config.seed)
        self.now = config.clock
        if config.catalog is None:
            self.catalog: Catalog = build_catalog(self.rng, config.returns)
        else:
            seed, size = config.catalog
            self.catalog = build_catalog(random.Random(seed), size)
        self.store_products = self.catalog.products
        self.by_sku = {p.sku: p for p in self.catalog.all_products}
        self.siblings: dict[str, list[str]] = defaultdict(list)
        for product in self.store_products:
            self.siblings[product.sku.split("-")[0]].append(product.sku)
        self.cin7_stock: dict[tuple[str, str], float] = {}
        self.sitoo_stock: dict[tuple[int, str], Decimal] = defaultdict(Decimal)
        self.sitoo_txn_id = 0
        self.sitoo_order_id = 0
        self.order_seq = 0
        self.doc_seq = 0
        self.counts: dict[str, int] = defaultdict(int)
        unknown = set(config.messy) - set(MESSY_SHAPES)
        if unknown:
            raise ValueError(f"unknown messy shapes {sorted(unknown)}; known: {', '.join(MESSY_SHAPES)}")
        self.messy = {k: v for k, v in config.messy.items() if v > 0}
        self.shapes: dict[str, int] = defaultdict(int)  # shape (or shape:variant) -> returns (orders) planted
        self.samples: dict[str, list[str]] = defaultdict(list)  # a few return ids per shape, for the tests
        self.turn: dict[str, int] = defaultdict(int)  # the next variant of each shape
        self.dq_warnings = 0  # expected_dq_warnings written

    # --- driving ---------------------------------------------------------------------------
    def run(self, out: Path) -> dict:
        header = {
            "clock": iso_z(self.now),
            "seed": self.cfg.seed,
            "reveni_store_id": "demo-store",
            "config": {
                "returns": self.cfg.returns,
                "release_sla_hours": self.cfg.release_sla / H,
                "restock_sla_hours": self.cfg.restock_sla / H,
                "sitoo_refund_transaction_type": self.cfg.sitoo_refund_transaction_type,
            },
        }
        with ScenarioWriter(out, header) as writer:
            self.writer = writer
            self._write_master_data()
            plants = self._plant_schedule()
            multi_due = self._multi_return_schedule(plants)
            made = 0
            while made < self.cfg.returns:
                count = 2 if self.rng.random() < 0.15 and made + 2 <= self.cfg.returns else 1
                simple = multi = False
                rate = self.messy.get("multi_return_sale", 0.0)
                if rate and ((multi_due and made >= multi_due[0]) or self.rng.random() < rate):
                    while multi_due and made >= multi_due[0]:
                        multi_due.pop(0)
                    wanted, simple = MULTI_RETURN_VARIANTS[self.turn["multi_return_sale"] % len(MULTI_RETURN_VARIANTS)]
                    window = plants[made : made + wanted]
                    if len(window) > 1 and not ALONE & set(window):
                        count, multi = len(window), True
                        # a Simple Sale holds one credit note (apib L20340): only clean returns share one; else
                        # this variant waits for the next multi-return sale, which is Advanced
                        simple = simple and all(p is None for p in window)
                        if simple or not MULTI_RETURN_VARIANTS[self.turn["multi_return_sale"] % 4][1]:
                            self.turn["multi_return_sale"] += 1
                    else:
                        simple = False
                if ALONE & set(plants[made : made + count]):
                    # the sale's reference is what is broken: it would hide a second return too; a note by hand
                    # that no return can be attributed is raised on every refunded return of its sale
                    count, simple, multi = 1, False, False
                self._order([plants[made + i] for i in range(count)], simple, multi)
                made += count
            self._write_stock()
        return {
            "returns": made,
            "exceptions": dict(self.counts),
            "dq_warnings": self.dq_warnings,
            "path": str(out),
            "messy": dict(self.shapes),
            "messy_samples": {k: list(v) for k, v in self.samples.items()},
        }

    def _plant_schedule(self) -> list[str | None]:
        schedule: list[str | None] = []
        shaped = [kind for kind in SCHEDULED_SHAPES if self.messy.get(kind)]
        for _ in range(self.cfg.returns):
            roll, plant = self.rng.random(), None
            for kind in PLANTABLE:
                rate = self.cfg.rates.get(kind, 0.0)
                if roll < rate:
                    plant = kind
                    break
                roll -= rate
            if plant is None and shaped:  # a messy shape, on a return with no single planted type
                roll = self.rng.random()
                for kind in shaped:
                    if roll < self.messy[kind]:
                        plant = kind
                        break
                    roll -= self.messy[kind]
            schedule.append(plant)
        spread = EXCEPTION_TYPES[: EXCEPTION_TYPES.index("unattributed_credit_note")]
        if self.cfg.plant_each_type_once and self.cfg.returns >= 4 * len(spread):
            # guarantee every type at least once: spread forced plants over the scenario (unattributed_credit_note,
            # opt-in before issue 17, between the first two positions, where it was: the other types' positions
            # are what they were)
            step = self.cfg.returns // len(spread)
            if "unattributed_credit_note" not in schedule and self.cfg.rates.get("unattributed_credit_note", 0) > 0:
                schedule[step // 2 + 1] = "unattributed_credit_note"
            for index, kind in enumerate(spread):
                if kind not in schedule and self.cfg.rates.get(kind, 0) > 0:
                    schedule[index * step + 1] = kind
            # and every variant of every shape whose rate is on, on returns that have nothing planted
            wanted = [k for k in shaped for _ in range(SHAPE_VARIANTS.get(k, 1) - schedule.count(k))]
            for index, kind in enumerate(wanted):
                at = index * (self.cfg.returns // len(wanted)) + 2
                while at < self.cfg.returns - 1 and schedule[at] is not None:
                    at += 1
                schedule[at] = kind if schedule[at] is None else schedule[at]
        return schedule

    def _multi_return_schedule(self, schedule: list[str | None]) -> list[int]:
        """Where an order with several returns is forced, so every variant of multi_return_sale is planted: at
        runs of three returns with nothing planted (a Simple Sale takes only clean returns)."""
        if not (self.messy.get("multi_return_sale") and self.cfg.plant_each_type_once and self.cfg.returns >= 40):
            return []
        due, step = [], self.cfg.returns // (len(MULTI_RETURN_VARIANTS) + 1)
        for index in range(len(MULTI_RETURN_VARIANTS)):
            at = index * step + step // 3
            while at < self.cfg.returns - 3 and any(schedule[at : at + 3]):
                at += 1
            due.append(at)
        return due

    def _plans(self, entries: list[str | None], simple: bool) -> list[Plan]:
        """The plan of each return of an order from its schedule entries."""
        plans = []
        for index, entry in enumerate(entries):
            if entry in SCHEDULED_SHAPES:
                plan = Plan(shape=entry)
                variants = SHAPE_VARIANTS.get(entry, 1)
                plan.variant = self.turn[entry] % variants
                self.turn[entry] += 1
            else:
                plan = Plan(plant=entry, unrefunded=simple and index > 0)
            rate = self.messy.get("partly_accepted", 0.0)
            if rate and self._partly_possible(plan) and self.rng.random() < rate:
                plan.partly = True
            plans.append(plan)
        return plans

    @staticmethod
    def _partly_possible(plan: Plan) -> bool:
        if plan.combo is not None:
            return plan.combo[3]
        return plan.shape in {
            "note_by_hand_with_total",
            "note_by_hand_other_total",
            "void_and_draft_notes",
            "other_currency",
        }

    def _write_master_data(self) -> None:
        w, cat = self.writer, self.catalog
        w.write_many("cin7.products", cin7_products(cat))
        w.write_many("cin7.locations", cin7_locations(cat))
        w.write_many("sitoo.products", sitoo_products(cat))
        stores, warehouses = sitoo_stores_and_warehouses(cat)
        w.write_many("sitoo.stores", stores)
        w.write_many("sitoo.warehouses", warehouses)
        w.write_many("location_map", location_map_rows(cat))
        for product in cat.all_products:
            for warehouse in cat.warehouses:
                self.cin7_stock[(product.cin7_id, warehouse.sellable)] = float(self.rng.randint(20, 90))
        for product in cat.products:
            for store in cat.stores:
                self.sitoo_stock[(store.warehouse_id, product.sku)] = Decimal(self.rng.randint(0, 12))

    def _write_stock(self) -> None:
        by_id = {p.cin7_id: p for p in self.catalog.all_products}
        for (product_id, location), on_hand in sorted(self.cin7_stock.items()):
            self.writer.write(
                "cin7.availability",
                {"ID": product_id, "SKU": by_id[product_id].sku, "Location": location, "OnHand": on_hand},
            )
        for index, ((warehouse_id, sku), total) in enumerate(sorted(self.sitoo_stock.items()), 1):
            self.writer.write(
                "sitoo.warehouse_items",
                {
                    "warehouseitemid": index,
                    "warehouseid": warehouse_id,
                    "sku": sku,
                    "decimaltotal": f"{total:.3f}",
                    "decimalreserved": "0.000",
                    "decimalavailable": f"{total:.3f}",
                    "moneytotal": "0.00",
                    "datelastmodified": unix(self.now),
                },
            )

    def _note_shape(self, name: str, return_id: str) -> None:
        self.shapes[name] += 1
        if len(self.samples[name]) < 1000:  # a bounded sample: a million returns never sit in memory
            self.samples[name].append(return_id)

    # --- one order with its returns ----------------------------------------------------------
    def _order(self, entries: list[str | None], simple: bool = False, multi: bool = False) -> None:
        rng = self.rng
        self.order_seq += 1
        order_number = str(self.cfg.first_order_number + self.order_seq)
        currency, rate, _ = rng.choices(CURRENCIES, weights=[c[2] for c in CURRENCIES])[0]
        plans = self._plans(entries, simple) if self.messy else [Plan(plant=e) for e in entries]
        needed = max(len(plans), *(p.items_needed() for p in plans)) if len(plans) == 1 else len(plans)
        # every order sells store products; online-only products appear only where planted
        products = rng.sample(self.store_products, rng.randint(max(2, needed), 4))
        lines = [Line(p, rng.choice((1, 1, 2)), Decimal(str(p.price)), Decimal(str(rate))) for p in products]
        kinds = {p.plant for p in plans} | {k for p in plans if p.combo for k, _ in p.combo[1]}
        advanced = len(plans) > 1 and not simple
        advanced = advanced or bool({"duplicate_credit_note", "unattributed_credit_note"} & kinds)
        advanced = advanced or any(p.shape == "void_and_draft_notes" for p in plans)
        advanced = advanced or (not simple and rng.random() < 0.4)
        sale_id = det_uuid(rng)
        returns = []
        split = [lines[len(lines) * i // len(plans) : len(lines) * (i + 1) // len(plans)] for i in range(len(plans))]
        for plan, own_lines in zip(plans, split, strict=True):
            returns.append(self._return(plan, own_lines, currency, order_number))
        if multi:  # a multi_return_sale (the 15% of orders with two returns are Advanced Sales of their own)
            for ret in returns:
                self._note_shape("multi_return_sale", ret.return_id)
            self._note_shape(
                f"multi_return_sale:{len(plans)}:{'simple' if simple else 'advanced'}", returns[0].return_id
            )
        sale_found = not any(r.plant == "sale_not_found" for r in returns)
        sale = self._sale(sale_id, order_number if sale_found else f"W{order_number}", lines, currency, advanced)
        first_created = min(r.created for r in returns)
        sale["SaleOrderDate"] = (first_created - rng.randint(3, 20) * D).strftime("%Y-%m-%dT00:00:00")
        last = first_created - 2 * D
        # a note made by hand of another total that no return can be attributed (§1): unattributed_credit_note on
        # every refunded return of the sale (an invalid record is quarantined, never reconciled)
        unattributed = any(r.shape == "note_by_hand_other_total" and r.refunded_items for r in returns)
        for ret in returns:
            last = max(last, self._credit_notes(sale, ret, advanced))
            self._warehouse_legs(sale, ret)
            self._store_legs(ret, ret.refund_currency or currency)
            self._exchange(ret, order_number, currency)
            self._reveni(ret, order_number, currency)
            self._answer(ret, unattributed and bool(ret.refunded_items) and ret.plant != "invalid_record")
        sale["LastModifiedOn"] = last.replace(tzinfo=None).isoformat()
        self.writer.write("cin7.sales", sale)
        late = [r for r in returns if r.shape == "instant_received_later" and r.variant == 1]
        if late:
            self._schedule_late_restock(sale, late[0], order_number, currency)
        elif len(returns) == 1 and returns[0].plant is None and rng.random() < self.cfg.event_fraction:
            # a shaped return keeps its own timeline; so does a lenient one (its key is of its initial state)
            unshaped = returns[0].shape is None and not returns[0].lenient
            if unshaped:
                self._schedule_receipt(sale, returns[0], order_number, currency)

    # --- building a return -------------------------------------------------------------------
    def _return(self, plan: Plan, lines: list[Line], currency: str, order_number: str) -> Return:
        rng, now = self.rng, self.now
        plant = plan.plant
        kind = "store" if rng.random() < 0.4 else "warehouse"
        instant = rng.random() < 0.4
        rtype = rng.choices(("refund", "exchange", "mixed"), weights=(85, 10, 5))[0]
        status = rng.choices(
            (
                "in_progress",
                "shipped",
                "received",
                "for_review",
                "accepted",
                "partly_accepted",
                "rejected",
                "cancelled",
            ),
            weights=(10, 10, 10, 5, 35, 10, 10, 10),
        )[0]
        old_validation = rng.random() < 0.7
        kind, instant, rtype, status, old_validation = self._profile(
            plant, kind, instant, rtype, status, old_validation
        )
        if plan.shape is not None or plan.unrefunded:
            kind, instant, rtype, status, old_validation = self._shape_profile(
                plan, kind, instant, rtype, status, old_validation
            )
        if status == "cancelled":
            instant = False
        if status == "partly_accepted" and len(lines) < 2:
            status = "accepted"
        if plant == "unknown_sku_sitoo":
            lines[0].product = rng.choice(self.catalog.web_only)
        return_id = det_hex(rng)
        items = []
        for line in lines:
            quantity = rng.randint(1, line.quantity)
            items.append(Item(det_hex(rng), line, quantity, line.product.sku))
        if rtype == "exchange":
            for item in items:
                item.exchange_sku = self._exchange_sku(item.line.product)
        elif rtype == "mixed" and len(items) > 1:
            for item in items[1:]:
                item.exchange_sku = self._exchange_sku(item.line.product)
        point: Store | Warehouse = (
            rng.choice(self.catalog.stores) if kind == "store" else rng.choice(self.catalog.warehouses)
        )
        return_point = (point.return_point, point.name)
        ret = Return(return_id, kind, return_point, instant, rtype, status, items, now)
        self._timeline(ret, old_validation)
        ret.plant = plant
        ret.shape, ret.variant = plan.shape, plan.variant
        if plant in NEEDS_RESTOCKABLE:
            ret.items[0].status, ret.items[0].restock = "accepted", True
        ret.two_part_refund = rng.random() < 0.1
        ret.refund_parts = 2 if ret.two_part_refund else 1
        ret.manual_credit_note = plant is None and rng.random() < 0.05 and plan.shape is None
        if plant == "unmapped_location":
            ret.return_point = self.catalog.unmapped_return_points[0 if kind == "store" else 1]
        if plant is not None:
            ret.defects = [(plant, ret.target_item() if plant in ITEM_LEVEL else None)]
        if self.messy:
            self._shape(ret, plan, currency, order_number)
            self._lenient(ret)
        return ret

    def _lenient(self, ret: Return) -> None:
        """Overlay the Reveni-read-leniently shapes (LENIENT_SHAPES) the return is eligible for, each at its rate."""
        if ret.plant == "invalid_record":  # quarantined whole: nothing of it is staged or reconciled
            return
        eligible = {
            # the status decides whether an exchange order is due; its event changes the status
            "unknown_status": all(i.exchange_sku is None for i in ret.items)
            and not (ret.shape == "instant_received_later" and ret.variant == 1),
            "no_created_at": True,
            "no_return_point": all(kind in NO_POINT_COMPATIBLE for kind, _ in ret.defects)
            and ret.shape != "multi_defect",
            "refund_without_id": bool(ret.refunded_items),
        }
        for name in LENIENT_SHAPES:
            rate = self.messy.get(name, 0.0)
            if not (rate and eligible[name] and self.rng.random() < rate):
                continue
            variant = self.turn[name] % LENIENT_VARIANTS.get(name, 1)
            self.turn[name] += 1
            ret.lenient[name] = variant
            self._note_shape(name, ret.return_id)
            if name == "unknown_status":
                self._note_shape(f"unknown_status:{UNKNOWN_STATUS_VARIANTS[variant]}", ret.return_id)
            if name == "no_created_at":
                self._note_shape(f"no_created_at:{'no_updated_at' if variant else 'updated_at'}", ret.return_id)

    def _shape_profile(self, plan: Plan, kind, instant, rtype, status, old):
        """The profile of a messy shape: where its defects (if any), and nothing else, are wrong."""
        rng = self.rng
        accepted = "partly_accepted" if plan.partly else "accepted"
        if plan.unrefunded:
            # a further return of a Simple Sale: no refund, and nothing that needs a note (apib L20340)
            choice = rng.randrange(4)
            if choice == 0:
                return kind, False, rtype, "cancelled", old
            if choice == 1:
                return "store", False, "refund", "rejected", old
            if choice == 2:
                return kind, False, rtype, rng_pick(rng, "in_progress", "shipped"), old
            return "store", instant, "exchange", rng_pick(rng, "in_progress", "received", "accepted"), old
        if plan.combo is not None:
            kind, instant, status = plan.combo[2]
            if status == "accepted":
                return kind, instant, "refund", accepted, True  # past every SLA
            return kind, instant, "refund", status, old
        if plan.shape == "instant_received_later":
            if plan.variant == 1:  # received later, as a world event
                return "warehouse", True, "refund", rng_pick(rng, "in_progress", "shipped"), old
            return "warehouse", True, "refund", rng_pick(rng, "received", "accepted"), old
        if plan.shape == "note_by_hand_other_total":
            # no restock: restock lines on a note no return is attributed would be no restock of the return
            if plan.partly or rng.random() < 0.5:
                return "store", False, "refund", accepted, old
            return "warehouse", True, "refund", rng_pick(rng, "in_progress", "shipped"), old
        # note_by_hand_with_total, void_and_draft_notes, other_currency: a refunded return
        if plan.partly or rng.random() < 0.6:
            return kind, False, "refund", accepted, old
        return kind, True, "refund", rng_pick(rng, "in_progress", "shipped", "received", "accepted"), old

    def _shape(self, ret: Return, plan: Plan, currency: str, order_number: str) -> None:
        """Plant the defects of a messy shape on the return, and its refund split."""
        rng = self.rng
        if plan.combo is not None:
            name, defects, _, _ = plan.combo
            if plan.partly:  # the last item rejected, the others accepted
                for item in ret.items[:-1]:
                    item.status = "accepted"
                    item.restock = item.restock if item.restock is not None else True
                ret.items[-1].status, ret.items[-1].restock = "rejected", False
            ret.defects = []
            for kind, index in defects:
                targets: list[Item | None] = (
                    list(ret.items) if index == "all" else [None] if index is None else [ret.items[index]]
                )
                for target in targets:
                    if target is not None and kind in NEEDS_RESTOCKABLE:
                        target.status, target.restock = "accepted", True
                    ret.defects.append((kind, target))
            self._note_shape("multi_defect", ret.return_id)
            self._note_shape(f"multi_defect:{name}", ret.return_id)
        elif plan.shape is not None:
            self._note_shape(plan.shape, ret.return_id)
            if plan.shape == "instant_received_later":
                self._note_shape(f"instant_received_later:{'event' if plan.variant else 'static'}", ret.return_id)
            if plan.shape == "void_and_draft_notes":
                self._note_shape(f"void_and_draft_notes:{'by_hand' if plan.variant else 'ours'}_draft", ret.return_id)
        if plan.shape in {"note_by_hand_with_total", "note_by_hand_other_total"}:
            ret.manual_credit_note = True
            ret.hand_memo = rng_pick(rng, "", f"Return order {order_number}", "refund by phone")
        if plan.shape == "note_by_hand_other_total":
            ret.defects = [("refund_without_credit_note", None)]
        if plan.shape == "other_currency":
            ret.refund_currency = rng.choice([c[0] for c in CURRENCIES if c[0] != currency])
            ret.defects = [("credit_note_amount_mismatch", None)]
        if plan.partly and ret.status == "partly_accepted":
            self._note_shape("partly_accepted", ret.return_id)
        rate = self.messy.get("split_refund", 0.0)
        if rate and ret.refunded_items and rng.random() < rate:
            ret.refund_parts = rng.choice((2, 3))
            self._note_shape("split_refund", ret.return_id)

    def _profile(self, plant, kind, instant, rtype, status, old):
        refundish = (False, "refund", "accepted")  # instant, type, status
        open_status = "in_progress" if status == "cancelled" else status  # a cancelled return wants no exchange
        profiles = {
            "refund_without_credit_note": (
                kind,
                True,
                "refund",
                rng_pick(self.rng, "in_progress", "shipped"),
                old,
            ),
            "credit_note_amount_mismatch": (kind, *refundish, old),
            "credit_note_tax_mismatch": (kind, *refundish, old),
            "credit_note_without_refund": (
                kind,
                False,
                "refund",
                rng_pick(self.rng, "in_progress", "shipped"),
                old,
            ),
            "duplicate_credit_note": (kind, *refundish, old),
            "unattributed_credit_note": (kind, *refundish, old),
            "double_refund": ("store", *refundish, old),
            "sale_not_found": (
                "warehouse",
                False,
                "refund",
                rng_pick(self.rng, "in_progress", "received"),
                old,
            ),
            "missing_restock": ("warehouse", False, "refund", "received", old),
            "premature_restock": ("warehouse", False, "refund", "received", old),
            "inspected_not_released": ("warehouse", *refundish, True),
            "rejected_item_in_sellable_stock": ("warehouse", False, "refund", "rejected", True),
            "sitoo_stock_missing": ("store", *refundish, True),
            "sitoo_stock_wrong_location": ("store", *refundish, True),
            "sitoo_return_record_missing": ("store", *refundish, old),
            "restock_latency_breach": ("warehouse", *refundish, True),
            "unknown_sku_cin7": ("warehouse", instant, "refund", status, old),
            "unknown_sku_sitoo": ("store", instant, "refund", status, old),
            "unmapped_location": (
                kind,
                instant,
                "refund",
                rng_pick(self.rng, "in_progress", "accepted"),
                old,
            ),
            "exchange_order_missing": (kind, instant, "exchange", open_status, old),
            "exchange_order_held": (kind, instant, "exchange", open_status, old),
            "invalid_record": ("warehouse", False, "refund", "in_progress", old),
        }
        return profiles.get(plant, (kind, instant, rtype, status, old))

    def _exchange_sku(self, product: Product) -> str:
        choices = [sku for sku in self.siblings[product.sku.split("-")[0]] if sku != product.sku]
        return self.rng.choice(choices or [product.sku])

    def _timeline(self, ret: Return, old_validation: bool) -> None:
        rng, now = self.rng, self.now
        sla = self.cfg.release_sla if ret.kind == "warehouse" else self.cfg.restock_sla
        if ret.status in ("in_progress", "shipped"):
            ret.created = now - timedelta(hours=rng.uniform(2, 96))
        elif ret.status in ("received", "for_review"):
            ret.created = now - timedelta(hours=rng.uniform(72, 200))
            ret.received = ret.created + timedelta(hours=rng.uniform(24, 60))
        elif ret.status == "cancelled":
            ret.created = now - timedelta(hours=rng.uniform(48, 500))
        else:
            if old_validation:
                ret.validated = now - sla - MARGIN - timedelta(hours=rng.uniform(6, 400))
            else:
                ret.validated = now - timedelta(hours=rng.uniform(1, (sla - MARGIN) / H))
            ret.received = ret.validated - timedelta(hours=rng.uniform(2, 48))
            ret.created = ret.received - timedelta(hours=rng.uniform(24, 96))
            accepted_count = len(ret.items)
            if ret.status == "partly_accepted":
                accepted_count = rng.randint(1, len(ret.items) - 1)
            elif ret.status == "rejected":
                accepted_count = 0
            for index, item in enumerate(ret.items):
                item.status = "accepted" if index < accepted_count else "rejected"
                item.restock = item.status == "accepted" and rng.random() < 0.9
        if ret.instant and ret.status != "cancelled":
            ret.refunded_at = ret.created + timedelta(minutes=5)
        elif ret.validated and any(i.status == "accepted" and i.exchange_sku is None for i in ret.items):
            ret.refunded_at = ret.validated + timedelta(minutes=10)

    # --- Cin7 Core --------------------------------------------------------------------------------
    def _doc_number(self, prefix: str) -> str:
        self.doc_seq += 1
        return f"{prefix}-{self.doc_seq:06d}"

    def _sale(self, sale_id: str, reference: str, lines: list[Line], currency: str, advanced: bool) -> dict:
        rows, before, tax = [], Decimal(0), Decimal(0)
        for line in lines:
            total, line_tax = line.amounts(line.quantity)
            before, tax = before + total, tax + line_tax
            rows.append(
                {
                    "ProductID": line.product.cin7_id,
                    "SKU": line.product.sku,
                    "Name": line.product.name,
                    "Quantity": line.quantity,
                    "Price": float(line.price),
                    "Discount": 0,
                    "Tax": float(line_tax),
                    "Total": float(total),
                    "AverageCost": line.product.cost,
                    "TaxRule": f"VAT {line.rate * 100:.0f}%",
                    "Account": "200",
                    "Comment": "",
                }
            )
        warehouse = self.rng.choice(self.catalog.warehouses)
        totals = {"TotalBeforeTax": float(before), "Tax": float(tax), "Total": float(before + tax)}
        return {
            "ID": sale_id,
            "Customer": f"Customer {self.order_seq}",
            "CustomerID": det_uuid(self.rng),
            "CustomerReference": reference,
            "ExternalID": f"shop-{reference}",
            "Status": "INVOICED",
            "Type": "Advanced Sale" if advanced else "Simple Sale",
            "Location": warehouse.sellable,
            "TaxCalculation": "Exclusive",
            "BaseCurrency": "EUR",
            "CustomerCurrency": currency,
            "CurrencyRate": 1,
            "SourceChannel": "Shopify",
            "Order": {
                "SaleOrderNumber": self._doc_number("SO"),
                "Status": "AUTHORISED",
                # an order line has no Account (Sale Order Line Model, apib L30604-L30619); invoice lines do
                "Lines": [{k: v for k, v in row.items() if k != "Account"} for row in rows],
                **totals,
            },
            "Invoices": [
                {
                    "TaskID": sale_id if not advanced else det_uuid(self.rng),
                    "InvoiceNumber": self._doc_number("INV"),
                    "Status": "PAID",
                    "InvoiceDate": None,
                    "Lines": rows,
                    "AdditionalCharges": [],
                    **totals,
                    "Paid": float(before + tax),
                }
            ],
            "CreditNotes": [],
            "Fulfilments": [],
        }

    def _credit_notes(self, sale: dict, ret: Return, advanced: bool) -> datetime:
        """Credit note (refund) and restock-to-holding documents; returns the latest doc time."""
        latest = ret.created
        refunded = ret.refunded_items
        other_total = ret.shape == "note_by_hand_other_total"  # made by hand, of another total than the refund
        authorised = bool(refunded) and (not ret.has("refund_without_credit_note") or other_total)
        if ret.has("credit_note_without_refund"):
            authorised, refunded = True, [i for i in ret.items if i.exchange_sku is None]
        warehouse = self._warehouse(ret)
        restock = ret.kind == "warehouse" and ret.received is not None and warehouse is not None
        if ret.shape == "instant_received_later" and ret.variant == 1:
            restock = False  # received later: the restock is a world event (_schedule_late_restock)
        restock_items = [i for i in ret.items if not ret.on("missing_restock", i)]
        if not authorised and not (restock and restock_items):
            return latest
        when = min((ret.refunded_at or ret.received or ret.created) + H, self.now - timedelta(minutes=1))
        if ret.has("credit_note_without_refund"):
            when = ret.created + timedelta(minutes=30)
        invoice = sale["Invoices"][0]
        note = {
            "TaskID": sale["ID"] if not advanced else det_uuid(self.rng),
            "CreditNoteInvoiceNumber": invoice["InvoiceNumber"],
            "CreditNoteNumber": self._doc_number("CR"),
            "Memo": ret.hand_memo if ret.manual_credit_note and authorised else f"reveni:{ret.return_id}",
            "Status": "AUTHORISED" if authorised else "DRAFT",
            "CreditNoteDate": when.strftime("%Y-%m-%dT00:00:00"),
            "CreditNoteConversionRate": 1,
            "Lines": [],
            "AdditionalCharges": [],
            "Restock": [],
            "RestockStatus": "NOT AVAILABLE",
        }
        if authorised:
            for item in refunded:
                total, tax = item.line.amounts(item.quantity)
                price = item.line.price
                if ret.has("credit_note_tax_mismatch") and item is refunded[0]:
                    shift = Decimal("0.10") * item.quantity
                    price, total, tax = price + Decimal("0.10"), total + shift, tax - shift
                if ret.has("credit_note_amount_mismatch") and ret.refund_currency is None and item is refunded[0]:
                    price, total = price + Decimal("5.00"), total + Decimal("5.00") * item.quantity
                    tax = cents(total * item.line.rate)
                if other_total:  # the same SKUs and quantities, 10% off
                    price = cents(price * Decimal("0.9"))
                    total = cents(price * item.quantity)
                    tax = cents(total * item.line.rate)
                note["Lines"].append(
                    {
                        "ProductID": item.line.product.cin7_id,
                        "SKU": item.line.product.sku,
                        "Name": item.line.product.name,
                        "Quantity": item.quantity,
                        "Price": float(price),
                        "Discount": 0,
                        "Tax": float(tax),
                        "Total": float(total),
                        "AverageCost": item.line.product.cost,
                        "TaxRule": f"VAT {item.line.rate * 100:.0f}%",
                        "Account": "200",
                        "Comment": "",
                    }
                )
        if restock and restock_items:
            assert ret.received is not None  # restock requires it (above)
            for item in restock_items:
                target = warehouse.holding
                if ret.on("premature_restock", item):
                    target = warehouse.sellable
                note["Restock"].append(
                    {
                        "ProductID": item.line.product.cin7_id,
                        "SKU": item.line.product.sku,
                        "Name": item.line.product.name,
                        "Location": warehouse.sellable,
                        "Quantity": item.quantity,
                        "RestockLocation": target,
                        "RestockDate": iso_z(ret.received + 2 * H),
                    }
                )
                key = (item.line.product.cin7_id, target)
                self.cin7_stock[key] = self.cin7_stock.get(key, 0.0) + item.quantity
            note["RestockStatus"] = "AUTHORISED"
            latest = max(latest, ret.received + 2 * H)
        before = sum((Decimal(str(line["Total"])) for line in note["Lines"]), Decimal(0))
        tax = sum((Decimal(str(line["Tax"])) for line in note["Lines"]), Decimal(0))
        note.update({"TotalBeforeTax": float(before), "Tax": float(tax), "Total": float(before + tax)})
        if ret.shape == "void_and_draft_notes" and authorised:
            sale["CreditNotes"].extend(self._void_and_draft(note, ret, when))
        sale["CreditNotes"].append(note)
        if ret.has("duplicate_credit_note"):
            twin = {
                **note,
                "TaskID": det_uuid(self.rng),
                "CreditNoteNumber": self._doc_number("CR"),
                "Restock": [],
                "RestockStatus": "NOT AVAILABLE",
            }
            sale["CreditNotes"].append(twin)
        if ret.has("unattributed_credit_note") and authorised:
            sale["CreditNotes"].append(self._goodwill_note(sale, refunded[0], when))
        sale["Status"] = "CREDITED" if authorised else sale["Status"]
        return max(latest, when)

    def _void_and_draft(self, note: dict, ret: Return, when: datetime) -> list[dict]:
        """Beside the AUTHORISED note: an earlier note of ours, VOIDED (the same lines, restocking nothing), and a
        DRAFT (variant 0: ours, the same memo, empty; variant 1: a person's, no memo, half a unit of goodwill).
        Neither credits anything (only an AUTHORISED note does): no exception."""
        earlier = (when - 2 * H).strftime("%Y-%m-%dT00:00:00")
        void = {
            **note,
            "TaskID": det_uuid(self.rng),
            "CreditNoteNumber": self._doc_number("CR"),
            "Status": "VOIDED",
            "CreditNoteDate": earlier,
            "Restock": [],
            "RestockStatus": "NOT AVAILABLE",
        }
        draft = {
            **note,
            "TaskID": det_uuid(self.rng),
            "CreditNoteNumber": self._doc_number("CR"),
            "Status": "DRAFT",
            "Lines": [],
            "Restock": [],
            "RestockStatus": "NOT AVAILABLE",
            "TotalBeforeTax": 0.0,
            "Tax": 0.0,
            "Total": 0.0,
        }
        if ret.variant == 1:
            item = ret.refunded_items[0]
            price = cents(item.line.price / 2)
            tax = cents(price * item.line.rate)
            draft.update(
                {
                    "Memo": "goodwill (draft)",
                    "TotalBeforeTax": float(price),
                    "Tax": float(tax),
                    "Total": float(price + tax),
                    "Lines": [
                        {
                            **note["Lines"][0],
                            "Quantity": 1,
                            "Price": float(price),
                            "Tax": float(tax),
                            "Total": float(price),
                        }
                    ],
                }
            )
        return [void, draft]

    def _goodwill_note(self, sale: dict, item: Item, when: datetime) -> dict:
        """A credit note a person made by hand beside ours (no reveni memo): half a unit of the first refunded
        item as goodwill. Another total than the refund, so no return can be attributed it (§1)."""
        price = cents(item.line.price / 2)
        tax = cents(price * item.line.rate)
        line = {
            "ProductID": item.line.product.cin7_id,
            "SKU": item.line.product.sku,
            "Name": item.line.product.name,
            "Quantity": 1,
            "Price": float(price),
            "Discount": 0,
            "Tax": float(tax),
            "Total": float(price),
            "AverageCost": item.line.product.cost,
            "TaxRule": f"VAT {item.line.rate * 100:.0f}%",
            "Account": "200",
            "Comment": "",
        }
        return {
            "TaskID": det_uuid(self.rng),
            "CreditNoteInvoiceNumber": sale["Invoices"][0]["InvoiceNumber"],
            "CreditNoteNumber": self._doc_number("CR"),
            "Memo": "goodwill",
            "Status": "AUTHORISED",
            "CreditNoteDate": when.strftime("%Y-%m-%dT00:00:00"),
            "CreditNoteConversionRate": 1,
            "Lines": [line],
            "AdditionalCharges": [],
            "Restock": [],
            "RestockStatus": "NOT AVAILABLE",
            "TotalBeforeTax": float(price),
            "Tax": float(tax),
            "Total": float(price + tax),
        }

    def _warehouse(self, ret: Return):
        for warehouse in self.catalog.warehouses:
            if warehouse.return_point == ret.return_point[0]:
                return warehouse
        return None

    def _warehouse_legs(self, sale: dict, ret: Return) -> None:
        """Holding → sellable transfers for accepted, restockable items."""
        warehouse = self._warehouse(ret)
        if ret.kind != "warehouse" or warehouse is None or ret.validated is None:
            return
        rng, sla = self.rng, self.cfg.release_sla
        for item in ret.items:
            if ret.on("unknown_sku_cin7", item):
                continue
            wanted = item.status == "accepted" and item.restock
            if ret.on("rejected_item_in_sellable_stock", item):
                wanted = True
            if not wanted or ret.on("inspected_not_released", item):
                continue
            done: datetime | None
            if ret.on("restock_latency_breach", item):
                done = ret.validated + sla + MARGIN + timedelta(hours=rng.uniform(0, 12))
                if done >= self.now:
                    done = self.now - H
            else:
                done = self._done_within_sla(ret, sla)
            if done is None:
                continue  # still within the release SLA: not yet released, and that is fine
            self._transfer(ret, item, warehouse, done)

    def _done_within_sla(self, ret: Return, sla: timedelta) -> datetime | None:
        """When a clean leg was done: within the SLA once it has passed; before it is due, done or not yet."""
        rng, validated = self.rng, ret.validated
        assert validated is not None  # the callers return first when it is not
        if validated + sla <= self.now:
            return validated + timedelta(hours=rng.uniform(1, (sla - MARGIN) / H))
        if rng.random() < 0.5:
            return validated + (self.now - validated) * rng.uniform(0.1, 0.9)
        return None

    def _transfer(self, ret: Return, item: Item, warehouse, done: datetime) -> None:
        product = item.line.product
        self.cin7_stock[(product.cin7_id, warehouse.holding)] -= item.quantity
        self.cin7_stock[(product.cin7_id, warehouse.sellable)] += item.quantity
        self.writer.write(
            "cin7.stock_transfers",
            {
                "TaskID": det_uuid(self.rng),
                "Number": self._doc_number("TR"),
                "Status": "COMPLETED",
                "From": warehouse.holding_id,
                "FromLocation": warehouse.holding,
                "To": warehouse.sellable_id,
                "ToLocation": warehouse.sellable,
                "CostDistributionType": "Cost",
                "CompletionDate": iso_z(done),
                "Reference": f"{TRANSFER_PREFIX}{ret.return_id}:{item.item_id}",
                "SkipOrder": True,
                "LastModifiedOn": iso_z(done),
                "Lines": [
                    {
                        "ProductID": product.cin7_id,
                        "SKU": product.sku,
                        "ProductName": product.name,
                        "TransferQuantity": item.quantity,
                    }
                ],
            },
        )

    def _exchange(self, ret: Return, order_number: str, currency: str) -> None:
        wanted = [(i, i.exchange_sku) for i in ret.items if i.exchange_sku]
        if not wanted or ret.has("exchange_order_missing") or ret.status == "cancelled":
            return
        by_sku = self.by_sku
        lines = [
            {
                "ProductID": by_sku[sku].cin7_id,
                "SKU": sku,
                "Name": by_sku[sku].name,
                "Quantity": i.quantity,
                "Price": 0.0,
                "Discount": 0,
                "Tax": 0.0,
                "Total": 0.0,
            }
            for i, sku in wanted
        ]
        created = ret.created + timedelta(minutes=15)
        sale_id = det_uuid(self.rng)
        self.writer.write(
            "cin7.sales",
            {
                "ID": sale_id,
                "Customer": f"Customer {self.order_seq}",
                "CustomerReference": f"EXCH-{order_number}",
                "ExternalID": f"reveni-exchange:{ret.return_id}",
                "Status": "ORDERED",
                "Type": "Simple Sale",
                "Location": self.catalog.warehouses[0].sellable,
                "TaxCalculation": "Exclusive",
                "BaseCurrency": "EUR",
                "CustomerCurrency": currency,
                "CurrencyRate": 1,
                "SourceChannel": "Reveni",
                "SaleOrderDate": created.strftime("%Y-%m-%dT00:00:00"),
                "LastModifiedOn": iso_z(created),
                "Order": {
                    "SaleOrderNumber": self._doc_number("SO"),
                    "Status": "DRAFT" if ret.has("exchange_order_held") else "AUTHORISED",
                    "Lines": lines,
                    "TotalBeforeTax": 0.0,
                    "Tax": 0.0,
                    "Total": 0.0,
                },
                "Invoices": [],
                "CreditNotes": [],
                "Fulfilments": [],
            },
        )

    # --- Sitoo ----------------------------------------------------------------------------------
    def _store(self, ret: Return):
        for store in self.catalog.stores:
            if store.return_point == ret.return_point[0]:
                return store
        return None

    def _store_legs(self, ret: Return, currency: str) -> None:
        store = self._store(ret)
        if ret.kind != "store" or store is None:
            return
        refunded = ret.refunded_items
        if refunded and not ret.has("sitoo_return_record_missing"):
            self._return_record(ret, store, refunded, currency)
        if ret.validated is None:
            return
        sla = self.cfg.restock_sla
        for item in ret.items:
            if not (item.status == "accepted" and item.restock):
                continue
            if ret.on("sitoo_stock_missing", item) or ret.on("unknown_sku_sitoo", item):
                continue
            done = self._done_within_sla(ret, sla)
            if done is None:
                continue
            warehouse_id = store.warehouse_id
            if ret.on("sitoo_stock_wrong_location", item):
                warehouse_id = next(s.warehouse_id for s in self.catalog.stores if s is not store)
            self.sitoo_txn_id += 1
            self.sitoo_stock[(warehouse_id, item.sku)] += item.quantity
            self.writer.write(
                "sitoo.warehouse_transactions",
                {
                    "warehousetransactionid": self.sitoo_txn_id,
                    "warehouseid": warehouse_id,
                    "datecreated": unix(done),
                    "transactiontype": self.cfg.sitoo_refund_transaction_type,
                    "description": f"Reveni return {ret.return_id[:8]} restock",
                    "orderdeliveryid": None,
                    "shipmentid": None,
                    "externalid": f"reveni:{ret.return_id}:{item.item_id}",
                    "reasoncode": "RET01",
                    "items": [{"sku": item.sku, "decimalquantity": f"{item.quantity:.3f}"}],
                },
            )

    def _return_record(self, ret: Return, store: Store, refunded: list[Item], currency: str) -> None:
        assert ret.refunded_at is not None  # it has refunded items
        rows: list[dict[str, object]] = []
        net, vat = Decimal(0), Decimal(0)
        for item in refunded:
            total, tax = item.line.amounts(item.quantity)
            net, vat = net + total, vat + tax
            rows.append(
                {
                    "orderitemid": len(rows) + 1,
                    "orderitemtype": 10,
                    "productid": item.line.product.sitoo_id,
                    "productname": item.line.product.name,
                    "sku": item.sku,
                    "quantity": -item.quantity,
                    "moneynetpriceperunit": f"{item.line.price:.2f}",
                    "vatvalue": int(item.line.rate * 100),
                    "moneyitemtotal_net": f"{-total:.2f}",
                    "moneyitemtotal_vat": f"{-tax:.2f}",
                    "decimalquantitytotal": f"{-item.quantity:.3f}",
                }
            )
        payments = []
        if ret.has("double_refund"):
            payments = [{"name": "Card", "moneyamount": f"{-(net + vat):.2f}", "reftype": "adyen", "refid": "POS"}]
        self.sitoo_order_id += 1
        self.writer.write(
            "sitoo.orders",
            {
                "orderid": self.sitoo_order_id,
                "eshopid": 1,
                "externalid": ret.return_id,
                "creditorderid": None,
                "orderdate": unix(ret.refunded_at + 30 * timedelta(minutes=1)),
                "orderstateid": 10,
                "paymentstateid": 20 if payments else 0,
                "ordertypeid": 10,
                "warehouseid": store.warehouse_id,
                "currencycode": currency,
                "moneyfinal_net": f"{-net:.2f}",
                "moneyfinal_vat": f"{-vat:.2f}",
                "moneytotal_gross_all": f"{-(net + vat):.2f}",
                "additionaldata": {"refundreasoncode-reasoncode": "RET01", "reveni-return-id": ret.return_id},
                "orderitems": rows,
                "payments": payments,
            },
        )

    # --- Reveni and the answer key -----------------------------------------------------------
    def _reveni(self, ret: Return, order_number: str, currency: str) -> None:
        self.writer.write("reveni.returns", self._reveni_record(ret, order_number, currency))

    def _reveni_record(self, ret: Return, order_number: str, currency: str) -> dict:
        currency = ret.refund_currency or currency  # other_currency: the return and its refund in another one
        requested = Decimal(0)
        items = []
        for item in ret.items:
            total, tax = item.line.amounts(item.quantity)
            requested += total + tax
            items.append(
                {
                    "item_id": item.item_id,
                    "sku": item.sku,
                    "name": item.line.product.name,
                    "quantity": item.quantity,
                    "price": f"{(total + tax) / item.quantity:.4f}",
                    "return_reason": "size_too_small",
                    "exchange": {"sku": item.exchange_sku} if item.exchange_sku else None,
                    "validation_status": item.status,
                    "restock": item.restock,
                    "reject_reason": None,
                    "validated_at": iso_z(ret.validated) if ret.validated and item.status != "pending" else None,
                }
            )
        refunds = []
        refunded = ret.refunded_items
        if refunded:
            assert ret.refunded_at is not None  # refunded_items is empty without it
            amount = sum((sum(i.line.amounts(i.quantity)) for i in refunded), Decimal(0))
            parts = [amount]
            if ret.refund_parts == 2 and amount > 1:
                first = cents(amount * Decimal("0.6"))
                parts = [first, amount - first]
            elif ret.refund_parts == 3 and amount > 1:
                first, second = cents(amount * Decimal("0.5")), cents(amount * Decimal("0.3"))
                parts = [first, second, amount - first - second]
            refunds = [
                {
                    "id": det_hex(self.rng),
                    "amount": f"{part:.4f}",
                    "currency": currency,
                    "status": "paid",
                    "method": "original_payment",
                    "refunded_at": iso_z(ret.refunded_at + i * timedelta(minutes=3)),
                }
                for i, part in enumerate(parts)
            ]
        touched = [t for t in (ret.created, ret.received, ret.validated, ret.refunded_at) if t]
        record = {
            "id": ret.return_id,
            "store_id": "demo-store",
            "order": {"id": det_hex(self.rng), "external_id": order_number},
            "type": ret.rtype,
            "instant": ret.instant,
            "status": ret.status,
            "amount": f"{requested:.4f}",
            "currency": currency,
            "refund_method": "original_payment",
            "return_point": {"id": ret.return_point[0], "type": ret.kind, "name": ret.return_point[1]},
            "return_items": items,
            "refunds": refunds,
            "received_at": iso_z(ret.received) if ret.received else None,
            "created_at": iso_z(ret.created),
            "updated_at": iso_z(max(touched) + timedelta(minutes=20)),
        }
        if ret.has("invalid_record"):
            record["amount"] = "N/A"
            record["currency"] = None
        self._apply_lenient(ret, record)
        for kind, target in ret.defects:
            if kind != "unknown_sku_cin7" or target is None:  # an item-level defect: never None
                continue
            variant = target.sku.lower() if self.rng.random() < 0.5 else f"{target.sku} "
            items[ret.items.index(target)]["sku"] = variant  # record["return_items"]
        return record

    @staticmethod
    def unknown_status(ret: Return) -> str | None:
        """The status an unknown_status return is served with (None: none at all)."""
        variant = UNKNOWN_STATUS_VARIANTS[ret.lenient["unknown_status"]]
        if variant == "dashboard":  # the dashboard's label (reveni_api.md "Status lifecycle" [R-C])
            return ret.status.replace("_", " ").title()
        return "on_hold" if variant == "peer" else None

    def _apply_lenient(self, ret: Return, record: dict) -> None:
        """What Reveni leaves out (or spells otherwise) on a lenient return: LENIENT_SHAPES."""
        if "unknown_status" in ret.lenient:
            status = self.unknown_status(ret)
            if status is None:
                del record["status"]
            else:
                record["status"] = status
        if "no_created_at" in ret.lenient:
            del record["created_at"]
            if ret.lenient["no_created_at"] == 1:
                del record["updated_at"]
        if "no_return_point" in ret.lenient:
            del record["return_point"]
        if "refund_without_id" in ret.lenient:
            for refund in record["refunds"]:
                del refund["id"]

    def _answer(self, ret: Return, unattributed: bool = False) -> None:
        """The answer key: every defect planted on the return, and unattributed_credit_note on every refunded return
        of a sale with a note made by hand that no return can be attributed (operating-model.md §1, §3)."""
        rows = [(kind, item.item_id if item else None) for kind, item in ret.defects]
        if unattributed and ("unattributed_credit_note", None) not in rows:
            rows.append(("unattributed_credit_note", None))
        if "no_return_point" in ret.lenient:  # not in the location map, never defaulted: an exception (§1)
            rows.append(("unmapped_location", None))
        if "unknown_status" in ret.lenient:
            # "an unknown status is kept and raised" (operating-model.md §2, last paragraph): a data-quality warning
            # naming the return and the value as served (None: the return carries no status)
            self.dq_warnings += 1
            self.writer.write(
                "expected_dq_warnings",
                {"field": "status", "return_id": ret.return_id, "item_id": None, "value": self.unknown_status(ret)},
            )
        for kind, item_id in rows:
            self.counts[kind] += 1
            self.writer.write("expected_exceptions", {"type": kind, "return_id": ret.return_id, "item_id": item_id})

    def _schedule_receipt(self, sale: dict, ret: Return, order_number: str, currency: str) -> None:
        """A world event: a warehouse return arrives later and the merchant restocks it to holding."""
        warehouse = self._warehouse(ret)
        if ret.kind != "warehouse" or warehouse is None or ret.status not in ("in_progress", "shipped"):
            return
        if ret.refunded_at is not None:
            return
        at = self.now + timedelta(hours=self.rng.uniform(1, 12))
        ret.status, ret.received = "received", at
        record = self._reveni_record(ret, order_number, currency)
        record["updated_at"] = iso_z(at)
        new_sale = {**sale, "CreditNotes": [*sale["CreditNotes"]]}
        new_sale["CreditNotes"].append(
            {
                "TaskID": sale["ID"] if sale["Type"] == "Simple Sale" else det_uuid(self.rng),
                "CreditNoteInvoiceNumber": sale["Invoices"][0]["InvoiceNumber"],
                "CreditNoteNumber": self._doc_number("CR"),
                "Memo": f"reveni:{ret.return_id}",
                "Status": "DRAFT",
                "CreditNoteDate": at.strftime("%Y-%m-%dT00:00:00"),
                "CreditNoteConversionRate": 1,
                "Lines": [],
                "AdditionalCharges": [],
                "RestockStatus": "AUTHORISED",
                "TotalBeforeTax": 0.0,
                "Tax": 0.0,
                "Total": 0.0,
                "Restock": [
                    {
                        "ProductID": i.line.product.cin7_id,
                        "SKU": i.line.product.sku,
                        "Name": i.line.product.name,
                        "Location": warehouse.sellable,
                        "Quantity": i.quantity,
                        "RestockLocation": warehouse.holding,
                        "RestockDate": iso_z(at),
                    }
                    for i in ret.items
                ],
            }
        )
        self.writer.write("events", {"at": iso_z(at), "k": "reveni.returns", "v": record})
        self.writer.write("events", {"at": iso_z(at), "k": "cin7.sales", "v": new_sale})

    def _schedule_late_restock(self, sale: dict, ret: Return, order_number: str, currency: str) -> None:
        """instant_received_later as a world event: the instant return, credited at once, arrives later and the
        merchant adds its restock lines (into holding) to the AUTHORISED note, after the note's date."""
        warehouse = self._warehouse(ret)
        memo = f"reveni:{ret.return_id}"
        if warehouse is None or not any(n["Memo"] == memo for n in sale["CreditNotes"]):
            return
        at = self.now + timedelta(hours=self.rng.uniform(1, 12))
        ret.status, ret.received = "received", at
        record = self._reveni_record(ret, order_number, currency)
        record["updated_at"] = iso_z(at)
        notes = []
        for note in sale["CreditNotes"]:
            if note["Memo"] == memo:
                note = {
                    **note,
                    "RestockStatus": "AUTHORISED",
                    "Restock": [
                        {
                            "ProductID": i.line.product.cin7_id,
                            "SKU": i.line.product.sku,
                            "Name": i.line.product.name,
                            "Location": warehouse.sellable,
                            "Quantity": i.quantity,
                            "RestockLocation": warehouse.holding,
                            "RestockDate": iso_z(at),
                        }
                        for i in ret.items
                    ],
                }
            notes.append(note)
        self.writer.write("events", {"at": iso_z(at), "k": "reveni.returns", "v": record})
        self.writer.write("events", {"at": iso_z(at), "k": "cin7.sales", "v": {**sale, "CreditNotes": notes}})


def rng_pick(rng: random.Random, *options: str) -> str:
    return rng.choice(options)


def generate(config: GeneratorConfig, out: Path) -> dict:
    return Generator(config).run(Path(out))
