"""Extraction of the three simulated systems into raw and staging: complete, idempotent,
incremental, and unchanged by the faults real services throw."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from recon_simulators.faults import FaultConfig, FaultState
from recon_simulators.generator import GeneratorConfig, generate
from recon_simulators.scenario import read_header_and_records
from returns_recon.extract.run import extract_all
from returns_recon.settings import ReconSettings
from returns_recon.warehouse.migrate import apply_migrations
from tests.fixtures.staging import fingerprint, keys

pytestmark = pytest.mark.integration

SETTINGS = ReconSettings()


def load(path: Path) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = defaultdict(list)
    for kind, record in read_header_and_records(path)[1]:
        grouped[kind].append(record)
    return grouped


@pytest.fixture(scope="module")
def tiny_scenario(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tiny") / "tiny.json"
    generate(
        GeneratorConfig(returns=120, seed=21, clock=datetime.now(UTC).replace(minute=0, second=0, microsecond=0)), path
    )
    return path


def run(db, clients, run_id: str, mode: str = "hourly") -> dict[tuple[str, str], object]:
    with psycopg.connect(db.url, autocommit=True) as conn:
        return {(s.source, s.entity): s for s in extract_all(conn, clients, run_id, mode, SETTINGS)}


def expected(data: dict[str, list[dict]]) -> dict[str, set[str]]:
    invalid = {e["return_id"] for e in data["expected_exceptions"] if e["type"] == "invalid_record"}
    returns = [r for r in data["reveni.returns"] if r["id"] not in invalid]
    orders = {r["order"]["external_id"] for r in returns}
    related = [
        s
        for s in data["cin7.sales"]
        if s["CustomerReference"] in orders or (s.get("ExternalID") or "").startswith("reveni-exchange:")
    ]
    return {
        "returns": {r["id"] for r in returns},
        "invalid": invalid,
        "items": {i["item_id"] for r in returns for i in r["return_items"]},
        "refunds": {f["id"] for r in returns for f in r["refunds"]},
        "sales": {s["ID"] for s in data["cin7.sales"]},
        "related_sales": {s["ID"] for s in related},
        "credit_notes": {n["TaskID"] for s in related for n in s["CreditNotes"]},
        "transfers": {t["TaskID"] for t in data["cin7.stock_transfers"]},
        "sitoo_orders": {str(o["orderid"]) for o in data["sitoo.orders"]},
        "transactions": {str(t["warehousetransactionid"]) for t in data["sitoo.warehouse_transactions"]},
        "cin7_products": {p["ID"] for p in data["cin7.products"]},
        "sitoo_products": {str(p["productid"]) for p in data["sitoo.products"]},
        "warehouse_items": {f"{i['warehouseid']}|{i['sku']}" for i in data["sitoo.warehouse_items"]},
    }


def minimum_calls(data: dict[str, list[dict]], want: dict[str, set[str]]) -> int:
    """Sum over endpoints of the rows read divided by that endpoint's largest page, rounded up."""
    per_warehouse = defaultdict(int)
    for item in data["sitoo.warehouse_items"]:
        per_warehouse[item["warehouseid"]] += 1
    pages = {
        "returns": (len(data["reveni.returns"]), 500),
        "saleList": (len(want["sales"]), 1000),
        "sale": (len(want["related_sales"]), 1),
        "stockTransferList": (len(want["transfers"]), 1000),
        "product": (len(data["cin7.products"]), 1000),
        "ref/location": (len(data["cin7.locations"]), 1000),
        "ref/productavailability": (len(data["cin7.availability"]), 1000),
        "sitoo products/warehouses/stores": (0, 1),
        "orders": (len(data["sitoo.orders"]), 1000),
        "transactions": (len(data["sitoo.warehouse_transactions"]), 1000),
    }
    total = sum(math.ceil(rows / size) for rows, size in pages.values())
    total += 3  # products, warehouses, stores: one page each at this size
    total += sum(math.ceil(n / 1000) for n in per_warehouse.values()) + (
        len(data["sitoo.warehouses"]) - len(per_warehouse)
    )
    return total


def test_full_extraction_lands_every_record_exactly_once(
    simulators, small_scenario, clients_for, warehouse_db, record_property
) -> None:
    simulators.load(small_scenario)
    data = load(small_scenario)
    want = expected(data)
    summaries = run(warehouse_db, clients_for(), "full-1")
    with warehouse_db.connect() as conn:
        for table, column, expected_keys in [
            ("stg_reveni__returns", "return_id", want["returns"]),
            ("stg_reveni__return_items", "item_id", want["items"]),
            ("stg_reveni__refunds", "refund_id", want["refunds"]),
            ("stg_cin7__sales", "sale_id", want["sales"]),
            ("stg_cin7__credit_notes", "task_id", want["credit_notes"]),
            ("stg_cin7__stock_transfers", "task_id", want["transfers"]),
            ("stg_cin7__products", "product_id", want["cin7_products"]),
            ("stg_sitoo__orders", "order_id", want["sitoo_orders"]),
            ("stg_sitoo__warehouse_transactions", "transaction_id", want["transactions"]),
            ("stg_sitoo__products", "product_id", want["sitoo_products"]),
        ]:
            found = keys(conn, table, column)
            assert len(found) == len(set(found)), table
            assert set(found) == expected_keys, table
        detailed = {
            r[0]
            for r in conn.execute("SELECT sale_id FROM staging.stg_cin7__sales WHERE detail_updated_at IS NOT NULL")
        }
        assert detailed == want["related_sales"]
        items = {
            f"{w}|{s}" for w, s in conn.execute("SELECT warehouse_id, sku FROM staging.stg_sitoo__warehouse_items")
        }
        assert items == want["warehouse_items"]
        quarantined = {r[0] for r in conn.execute("SELECT natural_key FROM raw.quarantine WHERE entity = 'returns'")}
        assert quarantined == want["invalid"]
        raw_returns = conn.execute(
            "SELECT count(*), count(DISTINCT natural_key) FROM raw.api_records WHERE entity = 'returns'"
        ).fetchone()
        assert raw_returns == (len(want["returns"]), len(want["returns"]))
    calls = sum(summary.api_calls for summary in summaries.values())
    minimum = minimum_calls(data, want)
    counted = sum(c["total_calls"] for c in simulators.counters().values())
    record_property("api_calls", calls)
    record_property("api_calls_minimum", minimum)
    print(f"\nfull extraction: {calls} API calls, minimum {minimum}, ratio {calls / minimum:.3f}")
    assert counted == calls
    assert calls <= 1.2 * minimum


def test_second_run_rewrites_nothing(simulators, small_scenario, clients_for, warehouse_db) -> None:
    simulators.load(small_scenario)
    clients = clients_for()
    run(warehouse_db, clients, "idem-1")
    with warehouse_db.connect() as conn:
        before = fingerprint(conn)
        last_write = conn.execute("SELECT max(fetched_at) FROM raw.api_records").fetchone()[0]
    summaries = run(warehouse_db, clients, "idem-2")
    assert {key: s.changed for key, s in summaries.items()} == dict.fromkeys(summaries, 0)
    with warehouse_db.connect() as conn:
        assert fingerprint(conn) == before
        assert conn.execute("SELECT max(fetched_at) FROM raw.api_records").fetchone()[0] == last_write
        assert conn.execute("SELECT count(*) FROM raw.api_records WHERE run_id = 'idem-2'").fetchone()[0] == 0


def test_next_run_picks_up_exactly_the_changes_including_a_late_one(
    simulators, small_scenario, clients_for, warehouse_db
) -> None:
    simulators.load(small_scenario)
    clients = clients_for()
    run(warehouse_db, clients, "inc-1")
    document = json.loads(small_scenario.read_text())
    events = document["events"]
    with warehouse_db.connect() as conn:
        watermark = conn.execute(
            "SELECT watermark FROM raw.extract_watermarks WHERE source = 'reveni' AND entity = 'returns'"
        ).fetchone()[0]
    # a late-arriving update: stamped two hours behind the watermark, visible only now
    late = next(r for r in document["reveni"]["returns"] if r["status"] == "accepted" and r["currency"])
    late = {**late, "refund_method": "store_credit"}
    late_at = datetime.fromisoformat(watermark).replace(microsecond=0).timestamp() - 7200
    simulators.upsert("reveni.returns", late, at=datetime.fromtimestamp(late_at, UTC).isoformat())
    simulators.advance(hours=13)
    summaries = run(warehouse_db, clients, "inc-2")
    event_returns = {e["v"]["id"] for e in events if e["k"] == "reveni.returns"}
    event_sales = {e["v"]["ID"] for e in events if e["k"] == "cin7.sales"}
    assert set(summaries["reveni", "returns"].changed_keys) == event_returns | {late["id"]}
    assert set(summaries["cin7", "sales"].changed_keys) == event_sales
    with warehouse_db.connect() as conn:
        method = conn.execute(
            "SELECT refund_method FROM staging.stg_reveni__returns WHERE return_id = %s", (late["id"],)
        ).fetchone()[0]
        statuses = {
            r[0]
            for r in conn.execute(
                "SELECT status FROM staging.stg_reveni__returns WHERE return_id = ANY(%s)", (list(event_returns),)
            )
        }
    assert method == "store_credit"
    assert statuses == {"received"}


def _fresh(db) -> None:
    with psycopg.connect(db.url, autocommit=True) as conn:
        conn.execute(
            "DROP SCHEMA raw CASCADE; DROP SCHEMA staging CASCADE; DROP SCHEMA recon CASCADE; "
            "DROP TABLE public.schema_migrations"
        )
        conn.execute("DROP SCHEMA IF EXISTS ops CASCADE")
        apply_migrations(conn)


FAULTS = {
    "cin7-429": ("cin7", {"rate_limit_per_minute": 30, "throttle_form": "429"}),
    "cin7-503": ("cin7", {"rate_limit_per_minute": 30, "throttle_form": "503"}),
    "cin7-400": ("cin7", {"rate_limit_per_minute": 30, "throttle_form": "400"}),
    "sitoo-429": ("sitoo", {"rate_limit_per_minute": 3}),
    "5xx-bursts": ("all", {"error_rate_5xx": 0.15}),
    "timeouts": ("all", {"timeout_rate": 0.05, "timeout_seconds": 6}),
    "resets": ("all", {"reset_rate": 0.1}),
    "html-200": ("all", {"html_rate": 0.1}),
    "shifting-rows": ("all", {"shift_rate": 0.5}),
    "duplicate-rows": ("all", {"duplicate_rate": 0.5}),
}


@pytest.fixture(scope="module")
def baseline(simulators, tiny_scenario, tmp_path_factory, embedded_server):
    """Staging after a fault-free run of the tiny scenario."""
    import uuid

    from tests.fixtures.warehouse import TestDatabase

    name = f"b_{uuid.uuid4().hex[:10]}"
    embedded_server.ensure_database(name, name, name)
    db = TestDatabase(embedded_server.host, embedded_server.port, name, name, name)
    with db.connect() as conn:
        apply_migrations(conn)
    simulators.load(tiny_scenario)
    return db


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_faults_leave_the_result_identical(
    fault, simulators, tiny_scenario, baseline, clients_for, warehouse_db, monkeypatch
) -> None:
    simulators.load(tiny_scenario)
    with baseline.connect() as conn:
        if not conn.execute("SELECT EXISTS (SELECT 1 FROM staging.stg_reveni__returns)").fetchone()[0]:
            run(baseline, clients_for(), "baseline")
        expected_state = fingerprint(conn)
    simulators.load(tiny_scenario)
    simulators.clock(speed=60)  # throttle windows pass in a second
    service, config = FAULTS[fault]
    for name in ("reveni", "cin7", "sitoo") if service == "all" else (service,):
        simulators.faults(name, **config, seed=7)
    run(warehouse_db, clients_for(), f"fault-{fault}")
    counters = simulators.counters()
    for name in ("reveni", "cin7", "sitoo"):
        simulators.faults(name)
    with warehouse_db.connect() as conn:
        assert fingerprint(conn) == expected_state
    injected = sum(c["total_throttled"] + sum(c["faults"].values()) for c in counters.values())
    if not fault.startswith(("shifting", "duplicate")):
        assert injected > 0, "the fault was actually injected"


def test_malformed_records_are_quarantined_and_nothing_else_is_lost(
    simulators, tiny_scenario, clients_for, warehouse_db
) -> None:
    simulators.load(tiny_scenario)
    for name in ("reveni", "cin7", "sitoo"):
        simulators.faults(name, malformed_rate=0.1, seed=5)
    run(warehouse_db, clients_for(), "malformed")
    data = load(tiny_scenario)
    want = expected(data)
    check = FaultState("x", FaultConfig(malformed_rate=0.1, seed=5))
    broken_returns = {r["id"] for r in data["reveni.returns"] if check.is_malformed("reveni:" + r["id"])}
    broken_sales = {s["ID"] for s in data["cin7.sales"] if check.is_malformed("cin7:" + s["ID"])}
    broken_orders = {
        str(o["orderid"]) for o in data["sitoo.orders"] if check.is_malformed(f"sitoo-order:{o['orderid']}")
    }
    assert broken_returns
    assert broken_sales
    assert broken_orders
    with warehouse_db.connect() as conn:
        quarantine = defaultdict(set)
        for entity, key in conn.execute("SELECT entity, natural_key FROM raw.quarantine"):
            quarantine[entity].add(key)
        assert quarantine["returns"] == broken_returns | want["invalid"]
        assert quarantine["sale_list"] == broken_sales
        assert quarantine["orders"] == broken_orders
        assert set(keys(conn, "stg_reveni__returns", "return_id")) == want["returns"] - broken_returns
        assert set(keys(conn, "stg_cin7__sales", "sale_id")) == want["sales"] - broken_sales
        assert set(keys(conn, "stg_sitoo__orders", "order_id")) == want["sitoo_orders"] - broken_orders
        reasons = [r[0] for r in conn.execute("SELECT error FROM raw.quarantine WHERE entity = 'returns'")]
    assert any("amount" in reason for reason in reasons)
