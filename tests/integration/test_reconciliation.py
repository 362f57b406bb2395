"""The reconciliation finds exactly the planted exceptions (precision and recall 100%) on several
seeds, keeps the queue stable across re-runs, and auto-resolves what the merchant fixes."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import psycopg
import pytest

from recon_simulators.generate import location_map_csv_path
from recon_simulators.generator import DEFAULT_RATE, EXCEPTION_TYPES
from returns_recon import steps
from returns_recon.extract.run import extract_all
from returns_recon.location_map import load_location_map
from returns_recon.reconcile.engine import reconcile, set_state
from returns_recon.settings import ReconSettings
from tests.fixtures.scenarios import (
    answer_key,
    assert_dq_warnings_equal_the_answer_key,
    expected_dq_warnings,
    scenario,
)

pytestmark = pytest.mark.integration

OPEN = "SELECT exception_type, return_id, item_id FROM recon.exceptions WHERE state IN ('open', 'acknowledged')"


def run_pipeline(db, clients, path: Path, run_id: str, mode: str = "hourly", quality: bool = False):
    with psycopg.connect(db.url, autocommit=True) as conn:
        load_location_map(conn, location_map_csv_path(path), run_id)
        extract_all(conn, clients, run_id, mode, ReconSettings())
        if quality:  # the data-quality gate, as the DAG runs it (a critical failure raises)
            steps.data_quality(conn, db.sqlalchemy_url, run_id, ReconSettings(), None)
        return reconcile(conn, run_id, ReconSettings(), mode)


def open_exceptions(db) -> set[tuple]:
    with db.connect() as conn:
        return set(conn.execute(OPEN).fetchall())


@pytest.mark.parametrize("seed", [101, 202, 303, 404, 505])
def test_open_exceptions_equal_the_answer_key(seed, simulators, clients_for, warehouse_db, tmp_path) -> None:
    path = scenario(tmp_path, seed)
    simulators.load(path)
    result = run_pipeline(warehouse_db, clients_for(), path, f"seed-{seed}", quality=True)
    found, expected = open_exceptions(warehouse_db), answer_key(path)
    assert found - expected == set(), "raised but not planted"
    assert expected - found == set(), "planted but not found"
    assert result.exceptions_found == len(expected)
    # the clean scenarios (no messy shapes) plant no unknown Reveni value: no status warning, and every failing
    # warning mirrors an exception of the key
    assert expected_dq_warnings(path) == set()
    with warehouse_db.connect() as conn:
        assert_dq_warnings_equal_the_answer_key(conn, f"seed-{seed}", path)
    with warehouse_db.connect() as conn:
        published = conn.execute(
            "SELECT count(*), count(DISTINCT item_id) FROM recon.fct_return_reconciliation"
        ).fetchone()
        items = conn.execute("SELECT count(*) FROM staging.stg_reveni__return_items").fetchone()[0]
        owners = dict(conn.execute("SELECT owner, count(*) FROM recon.exceptions GROUP BY 1").fetchall())
        listed = conn.execute(
            "SELECT return_id, item_id, open_exception_types, overall_status FROM recon.fct_return_reconciliation"
        ).fetchall()
    assert published == (items, items)
    # each published item lists the open exceptions of the item and of its return as a whole
    for return_id, item_id, types, status in listed:
        wanted = sorted({t for t, r, i in found if r == return_id and i in (None, item_id)})
        assert types == wanted, (return_id, item_id)
        assert (status == "exception") == bool(wanted)
    assert any(types for _, _, types, _ in listed)
    assert set(owners) == {"finance", "operations", "data", "customer service"}


@pytest.mark.parametrize("seed", [161, 262])
def test_notes_by_hand_that_no_return_can_be_attributed_are_raised_exactly(
    seed, simulators, clients_for, warehouse_db, tmp_path
) -> None:
    # every default type plus hand-made notes of another total beside ours (unattributed_credit_note) at a higher rate
    rates = {**dict.fromkeys(EXCEPTION_TYPES, DEFAULT_RATE), "unattributed_credit_note": 0.02}
    path = scenario(tmp_path, seed, rates=rates)
    simulators.load(path)
    result = run_pipeline(warehouse_db, clients_for(), path, f"hand-{seed}")
    found, expected = open_exceptions(warehouse_db), answer_key(path)
    assert {t for t, _, _ in expected} == set(EXCEPTION_TYPES) | {"unattributed_credit_note"}
    assert found - expected == set(), "raised but not planted"
    assert expected - found == set(), "planted but not found"
    assert result.exceptions_found == len(expected)


def test_queue_is_stable_and_fixed_exceptions_auto_resolve(simulators, clients_for, warehouse_db, tmp_path) -> None:
    path = scenario(tmp_path, 606)
    simulators.load(path)
    clients = clients_for()
    run_pipeline(warehouse_db, clients, path, "stable-1")
    # the evidence of invalid_record counts the quarantine's sightings, which every run adds to
    snapshot = (
        "SELECT exception_key, state, first_seen_at, evidence - 'occurrences', owner, severity "
        "FROM recon.exceptions ORDER BY 1"
    )
    with warehouse_db.connect() as conn:
        first = conn.execute(snapshot).fetchall()
        occurrences = dict(conn.execute("SELECT exception_key, occurrences FROM recon.exceptions").fetchall())
    run_pipeline(warehouse_db, clients, path, "stable-2")
    with warehouse_db.connect() as conn:
        assert conn.execute(snapshot).fetchall() == first
        again = dict(conn.execute("SELECT exception_key, occurrences FROM recon.exceptions").fetchall())
    assert again == {key: n + 1 for key, n in occurrences.items()}

    # the merchant posts the missing documents by hand
    document = json.loads(path.read_text())
    key = {(e["type"], e["return_id"]) for e in document["expected_exceptions"]}
    fixed = set()
    missing_note = next(rid for kind, rid in key if kind == "refund_without_credit_note")
    fixed.add(f"refund_without_credit_note:{missing_note}")
    ret = next(r for r in document["reveni"]["returns"] if r["id"] == missing_note)
    sale = next(s for s in document["cin7"]["sales"] if s["CustomerReference"] == ret["order"]["external_id"])
    sale = copy.deepcopy(sale)
    refunded = sum(float(f["amount"]) for f in ret["refunds"])
    lines = [
        dict(line) for line in sale["Invoices"][0]["Lines"] if line["SKU"] in {i["sku"] for i in ret["return_items"]}
    ]
    sale["CreditNotes"].append(
        {
            "TaskID": "manual-fix-" + missing_note[:8],
            "CreditNoteNumber": "CR-FIX",
            "Memo": f"reveni:{missing_note}",
            "Status": "AUTHORISED",
            "Lines": lines,
            "Restock": [],
            "TotalBeforeTax": 0,
            "Tax": 0,
            "Total": round(refunded, 2),
        }
    )
    simulators.upsert("cin7.sales", sale)
    exchange = next((rid for kind, rid in key if kind == "exchange_order_missing"), None)
    if exchange:
        fixed.add(f"exchange_order_missing:{exchange}")
        simulators.upsert(
            "cin7.sales",
            {
                "ID": "exchange-fix",
                "CustomerReference": "EXCH-fix",
                "ExternalID": f"reveni-exchange:{exchange}",
                "Status": "ORDERED",
                "Type": "Simple Sale",
                "CustomerCurrency": "EUR",
                "LastModifiedOn": "2026-01-01",
                "Order": {"SaleOrderNumber": "SO-FIX", "Status": "AUTHORISED", "Lines": []},
                "Invoices": [],
                "CreditNotes": [],
            },
        )
    run_pipeline(warehouse_db, clients, path, "stable-3")
    with warehouse_db.connect() as conn:
        states = dict(conn.execute("SELECT exception_key, state FROM recon.exceptions").fetchall())
    for exception_key in fixed:
        assert states[exception_key] == "auto_resolved", exception_key
    untouched = {k for k, _, *_ in first} - fixed
    assert {states[k] for k in untouched} == {"open"}


def test_human_decisions_survive_later_runs(simulators, clients_for, warehouse_db, tmp_path) -> None:
    path = scenario(tmp_path, 707)
    simulators.load(path)
    clients = clients_for()
    run_pipeline(warehouse_db, clients, path, "human-1")
    with warehouse_db.connect(autocommit=True) as conn:
        keys = [k for (k,) in conn.execute("SELECT exception_key FROM recon.exceptions ORDER BY 1 LIMIT 2")]
        assert set_state(conn, keys[0], "acknowledged", "ana@finance", "looking into it")
        assert set_state(conn, keys[1], "resolved", "ana@finance", "credited by phone")
        assert not set_state(conn, "no-such-key", "resolved", "ana@finance")
    run_pipeline(warehouse_db, clients, path, "human-2")
    with warehouse_db.connect() as conn:
        rows = dict(
            conn.execute(
                "SELECT exception_key, state FROM recon.exceptions WHERE exception_key = ANY(%s)", (keys,)
            ).fetchall()
        )
        note = conn.execute(
            "SELECT note, acknowledged_by FROM recon.exceptions WHERE exception_key = %s", (keys[0],)
        ).fetchone()
    assert rows == {keys[0]: "acknowledged", keys[1]: "resolved"}
    assert note == ("looking into it", "ana@finance")
