"""Corrective postings: one correct document per auto-fixable exception, exactly once, through
kills, timeouts and 5xx; dry-run, threshold, cap, lock and quality gate hold."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from recon_simulators.generator import GeneratorConfig
from returns_recon.postings.execute import PostingsLocked, QualityGateClosed, execute, quality_gate
from returns_recon.postings.plan import ACTIONS, plan
from tests.fixtures.pipeline import SETTINGS, cycle, execute_killed_after_first_send
from tests.fixtures.scenarios import scenario

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
# the exceptions a scenario plants and a run fixes; an approved DRAFT credit note is authorised only after a
# person's approval (tests/integration/test_credit_note_approval.py)
FIXABLE = set(ACTIONS) - {"credit_note_awaiting_approval"}


def fixable(path: Path) -> list[dict]:
    return [e for e in json.loads(path.read_text())["expected_exceptions"] if e["type"] in FIXABLE]


def documents(simulators, path: Path, entry: dict) -> list[dict]:
    """What the simulators hold for one planted exception: the documents a posting would create."""
    rid, iid = entry["return_id"], entry["item_id"]
    document = json.loads(path.read_text())
    ret = next(r for r in document["reveni"]["returns"] if r["id"] == rid)
    kind = entry["type"]
    if kind in {"refund_without_credit_note", "missing_restock"}:
        sale = next(s for s in document["cin7"]["sales"] if s["CustomerReference"] == ret["order"]["external_id"])
        # GET /sale serves the notes with their totals (the credit-note endpoint does not, apib L24564)
        notes = (
            simulators.cin7_session().get(f"{simulators.cin7}/sale", params={"ID": sale["ID"]}).json()["CreditNotes"]
        )
        return [n for n in notes if n.get("Memo") == f"reveni:{rid}"]
    if kind in {"inspected_not_released", "premature_restock", "rejected_item_in_sellable_stock"}:
        # stockTransferList does not search Reference (apib L26299): read it whole, match here
        rows = simulators.cin7_session().get(f"{simulators.cin7}/stockTransferList", params={"Limit": 1000}).json()
        return [t for t in rows["StockTransferList"] if (t.get("Reference") or "").startswith(f"reveni:{rid}:{iid} ")]
    if kind == "sitoo_stock_missing":
        rows = (
            simulators.sitoo_session()
            .get(f"{simulators.sitoo_site}/warehousetransactions.json", params={"num": 10000})
            .json()["items"]
        )
        return [t for t in rows if t.get("externalid") == f"reveni:{rid}:{iid}"]
    rows = simulators.sitoo_session().get(f"{simulators.sitoo}/orders.json", params={"externalid": rid}).json()
    return rows["items"]


def check_one_correct_document(simulators, path: Path, entry: dict) -> None:
    found = documents(simulators, path, entry)
    kind, rid = entry["type"], entry["return_id"]
    document = json.loads(path.read_text())
    ret = next(r for r in document["reveni"]["returns"] if r["id"] == rid)
    assert len(found) == 1, (kind, rid, found)
    doc = found[0]
    if kind == "refund_without_credit_note":
        refunded = sum(Decimal(f["amount"]) for f in ret["refunds"])
        assert doc["Status"] == "AUTHORISED"
        assert abs(Decimal(str(doc["Total"])) - refunded) <= Decimal("0.01")
        assert {line["SKU"] for line in doc["Lines"]} <= {i["sku"] for i in ret["return_items"]}
    elif kind == "missing_restock":
        item = next(i for i in ret["return_items"] if i["item_id"] == entry["item_id"])
        lines = [r for r in doc["Restock"] if r["SKU"] == item["sku"]]
        assert [(r["RestockLocation"], r["Quantity"]) for r in lines] == [
            (f"{doc_location(ret)} Returns Hold", item["quantity"])
        ]
        assert doc["RestockStatus"] == "AUTHORISED"
    elif kind == "inspected_not_released":
        assert (doc["FromLocation"], doc["ToLocation"]) == (f"{doc_location(ret)} Returns Hold", doc_location(ret))
    elif kind in {"premature_restock", "rejected_item_in_sellable_stock"}:
        moves = [(d["FromLocation"], d["ToLocation"]) for d in found]
        assert moves == [(doc_location(ret), f"{doc_location(ret)} Returns Hold")]
    elif kind == "sitoo_stock_missing":
        store = int(ret["return_point"]["id"].rsplit("-", 1)[1])
        assert doc["warehouseid"] == store
        assert doc["items"][0]["decimalquantity"].startswith(
            str(next(i["quantity"] for i in ret["return_items"] if i["item_id"] == entry["item_id"]))
        )
    else:
        assert doc["externalid"] == rid
        assert all(i["quantity"] < 0 for i in doc["orderitems"])
        assert doc["payments"] == []


def doc_location(ret: dict) -> str:
    return ret["return_point"]["name"]


def test_one_run_posts_one_correct_document_each_and_the_next_run_resolves(
    simulators, clients_for, warehouse_db, tmp_path
) -> None:
    path = scenario(tmp_path, 808, returns=400)
    simulators.load(path)
    clients = clients_for()
    planted = fixable(path)
    assert {e["type"] for e in planted} == FIXABLE
    created_by_us = {
        "refund_without_credit_note",
        "inspected_not_released",
        "sitoo_stock_missing",
        "sitoo_return_record_missing",
    }
    assert all(documents(simulators, path, e) == [] for e in planted if e["type"] in created_by_us)
    report = cycle(warehouse_db, clients, path, "post-1")
    assert report.done == len(planted)
    assert report.refused == report.ambiguous == 0
    for entry in planted:
        if entry["type"] in {"premature_restock", "rejected_item_in_sellable_stock"}:
            moves = [(d["FromLocation"], d["ToLocation"]) for d in documents(simulators, path, entry)]
            ret_name = next(
                r for r in json.loads(path.read_text())["reveni"]["returns"] if r["id"] == entry["return_id"]
            )["return_point"]["name"]
            assert moves.count((ret_name, f"{ret_name} Returns Hold")) == 1
        else:
            check_one_correct_document(simulators, path, entry)
    second = cycle(warehouse_db, clients, path, "post-2")
    assert (second.done, second.adopted) == (0, 0)
    with warehouse_db.connect() as conn:
        states = {
            (t, r, i): (s, f)
            for t, r, i, s, f in conn.execute(
                "SELECT exception_type, return_id, item_id, state, fixed_by_posting FROM recon.exceptions"
            )
        }
    for entry in planted:
        state, fixed_by = states[(entry["type"], entry["return_id"], entry["item_id"])]
        assert state == "auto_resolved", entry
        assert fixed_by is not None
    # one incident, one row (operating-model.md §3): our own late release or store restock of an SLA exception
    # raises no restock_latency_breach; the fixed row keeps when and with which document
    with warehouse_db.connect() as conn:
        latency = {
            (r, i)
            for r, i in conn.execute(
                "SELECT return_id, item_id FROM recon.exceptions WHERE exception_type = 'restock_latency_breach'"
            )
        }
        kept = dict(
            conn.execute(
                "SELECT exception_key, evidence FROM recon.exceptions WHERE fixed_by_posting IS NOT NULL"
            ).fetchall()
        )
    sla_fixed = [e for e in planted if e["type"] in {"inspected_not_released", "sitoo_stock_missing"}]
    assert sla_fixed
    assert {(e["return_id"], e["item_id"]) for e in sla_fixed} & latency == set()
    for evidence in kept.values():
        assert evidence["fixed_at"]
        assert evidence["fixed_by_action"] in {a for a, _ in ACTIONS.values()}


def test_kill_between_call_and_log_then_rerun_creates_no_duplicate(
    simulators, clients_for, warehouse_db, tmp_path
) -> None:
    path = scenario(tmp_path, 909, returns=200)
    simulators.load(path)
    clients = clients_for()
    cycle(warehouse_db, clients, path, "kill-1", post=False)
    with psycopg.connect(warehouse_db.url, autocommit=True) as conn:
        quality_gate(conn, "kill-1")
        plan(conn, "kill-1", SETTINGS)
    execute_killed_after_first_send(warehouse_db, simulators, "kill-1")
    with warehouse_db.connect() as conn:
        sending = conn.execute("SELECT posting_key, action FROM recon.postings WHERE status = 'sending'").fetchall()
    assert len(sending) == 1
    with psycopg.connect(warehouse_db.url, autocommit=True) as conn:
        report = execute(conn, clients, "kill-2", SETTINGS)
        status = conn.execute("SELECT status FROM recon.postings WHERE posting_key = %s", (sending[0][0],)).fetchone()
    assert status == ("adopted",)
    assert report.adopted >= 1
    for entry in fixable(path):
        if entry["type"] not in {"premature_restock", "rejected_item_in_sellable_stock"}:
            check_one_correct_document(simulators, path, entry)


def test_timeouts_and_5xx_on_posts_create_no_duplicates(simulators, clients_for, warehouse_db, tmp_path) -> None:
    path = scenario(tmp_path, 1010, returns=200)
    simulators.load(path)
    clients = clients_for()
    cycle(warehouse_db, clients, path, "flaky-0", post=False)
    for service in ("cin7", "sitoo"):
        simulators.faults(service, error_rate_5xx=0.3, timeout_rate=0.15, timeout_seconds=6, seed=3)
    outcomes = Counter()
    for attempt in range(8):
        with psycopg.connect(warehouse_db.url, autocommit=True) as conn:
            quality_gate(conn, "flaky-0")
            plan(conn, f"flaky-{attempt}", SETTINGS)
            report = execute(conn, clients, f"flaky-{attempt}", SETTINGS)
            outcomes.update(report.as_dict())
            left = conn.execute(
                "SELECT count(*) FROM recon.postings WHERE status NOT IN ('done', 'adopted')"
            ).fetchone()[0]
        if not left:
            break
    for service in ("cin7", "sitoo"):
        simulators.faults(service)
    assert left == 0
    assert outcomes["ambiguous"] > 0, "faults were injected on the writes"
    for entry in fixable(path):
        if entry["type"] not in {"premature_restock", "rejected_item_in_sellable_stock"}:
            check_one_correct_document(simulators, path, entry)


def test_safety_valves(simulators, clients_for, warehouse_db, tmp_path) -> None:
    path = scenario(tmp_path, 1113, returns=300)
    simulators.load(path)
    clients = clients_for()
    cycle(warehouse_db, clients, path, "valves-1", post=False)
    with psycopg.connect(warehouse_db.url, autocommit=True) as conn:
        # dry run: every planned posting logged, nothing sent
        simulators.counters(reset=True)
        planned = plan(conn, "valves-1", SETTINGS)
        dry = execute(conn, clients, "valves-1", SETTINGS.model_copy(update={"postings_dry_run": True}))
        assert dry.dry_run == len(planned) > 0
        assert simulators.counters()["sitoo"]["calls"].get("orders:post", 0) == 0
        new_notes = [e for e in fixable(path) if e["type"] == "refund_without_credit_note"]
        assert all(documents(simulators, path, e) == [] for e in new_notes)
        logged = conn.execute(
            "SELECT count(*) FROM recon.posting_log WHERE run_id = 'valves-1' AND outcome = 'dry_run'"
        ).fetchone()[0]
        assert logged == len(planned)
        # the cap
        plan(conn, "valves-2", SETTINGS)
        capped = execute(conn, clients, "valves-2", SETTINGS.model_copy(update={"max_postings_per_run": 2}))
        assert capped.done + capped.adopted == 2
        assert capped.skipped == len(planned) - 2
        # the run lock
        with psycopg.connect(warehouse_db.url, autocommit=True) as other:
            other.execute("SELECT pg_advisory_lock(72617302)")
            with pytest.raises(PostingsLocked):
                execute(conn, clients, "valves-3", SETTINGS)
        # the quality gate
        with pytest.raises(QualityGateClosed):
            quality_gate(conn, "no-checks-ran")
        # the approval threshold: every new credit note above 1.00 stays DRAFT and says so
        low = SETTINGS.model_copy(update={"credit_note_approval_threshold": Decimal("1.00")})
        sent = conn.execute(
            "SELECT count(*) FROM recon.postings WHERE action = 'create_credit_note' AND status IN ('done', 'adopted')"
        ).fetchone()[0]  # authorised by the capped run
        conn.execute("DELETE FROM recon.postings WHERE action = 'create_credit_note'")
        plan(conn, "valves-4", low)
        execute(conn, clients, "valves-4", low)
    cycle(warehouse_db, clients, path, "valves-5", post=False)
    with warehouse_db.connect() as conn:
        waiting = conn.execute(
            "SELECT count(*) FROM recon.exceptions WHERE exception_type = "
            "'credit_note_awaiting_approval' AND state = 'open'"
        ).fetchone()[0]
    assert waiting == sum(1 for e in fixable(path) if e["type"] == "refund_without_credit_note") - sent > 0


def test_replay_from_the_cli_goes_through_the_same_idempotency(simulators, clients_for, warehouse_db, tmp_path) -> None:
    path = scenario(tmp_path, 1212, returns=150)
    simulators.load(path)
    cycle(warehouse_db, clients_for(), path, "replay-1")
    with warehouse_db.connect() as conn:
        key, action = conn.execute(
            "SELECT posting_key, action FROM recon.postings WHERE status = 'done' ORDER BY posting_key LIMIT 1"
        ).fetchone()
    env = {
        **os.environ,
        **simulators.env(),
        "AIRFLOW_CONN_RECON_WAREHOUSE": warehouse_db.airflow_conn_json(),
        "PYTHONPATH": str(ROOT),
    }
    replay = subprocess.run(
        [sys.executable, "-m", "returns_recon.cli", "postings", "replay", "--key", key],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert replay.returncode == 0, replay.stderr[-2000:]
    assert "'adopted': 1" in replay.stdout
    with warehouse_db.connect() as conn:
        assert conn.execute("SELECT status FROM recon.postings WHERE posting_key = %s", (key,)).fetchone() == (
            "adopted",
        )
    listing = subprocess.run(
        [sys.executable, "-m", "returns_recon.cli", "postings", "list", "--status", "adopted"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert key in listing.stdout
    assert action in listing.stdout


def test_credit_notes_cost_one_call_each_and_a_note_added_after_extraction_is_adopted(
    simulators, clients_for, warehouse_db, tmp_path
) -> None:
    """Read-before-write through the sale view: one saleList call names the sales changed since the
    extraction; unchanged sales are read from the stored detail, changed ones live."""
    rates = {**GeneratorConfig().rates, "refund_without_credit_note": 0.04}
    path = scenario(tmp_path, 1313, returns=300, rates=rates)
    simulators.load(path)
    clients = clients_for()
    cycle(warehouse_db, clients, path, "view-1", post=False)
    with psycopg.connect(warehouse_db.url, autocommit=True) as conn:
        quality_gate(conn, "view-1")
        plan(conn, "view-1", SETTINGS)
        notes = conn.execute(
            "SELECT posting_key, payload FROM recon.postings WHERE action = 'create_credit_note' ORDER BY posting_key"
        ).fetchall()
    assert len(notes) >= 3
    # the first note reaches Cin7 Core behind our back (say, an attempt whose log was lost)
    adopted_key, payload = notes[0]
    created = simulators.cin7_session().post(f"{simulators.cin7}/sale/creditnote", json=payload, timeout=10)
    assert created.status_code == 200, created.text
    simulators.counters(reset=True)
    with psycopg.connect(warehouse_db.url, autocommit=True) as conn:
        report = execute(conn, clients, "view-1", SETTINGS)
        statuses = dict(
            conn.execute(
                "SELECT posting_key, status FROM recon.postings WHERE action = 'create_credit_note'"
            ).fetchall()
        )
    assert statuses[adopted_key] == "adopted"
    assert all(status == "done" for key, status in statuses.items() if key != adopted_key)
    calls = simulators.counters()["cin7"]["calls"]
    on_notes = report.done + report.adopted - calls.get("stockTransfer", 0)  # credit-note and restock postings
    # one saleList call for the run; no sale read; one POST per note sent plus one live read (the changed sale)
    assert calls.get("saleList") == 1, calls
    assert calls.get("sale", 0) == 0, calls
    assert calls["sale/creditnote"] <= on_notes + 1, (calls, report.as_dict())
    for _key, payload in notes:
        entry = {"type": "refund_without_credit_note", "return_id": payload["Memo"].split(":", 1)[1], "item_id": None}
        assert len(documents(simulators, path, entry)) == 1


def test_the_credit_note_we_create_restocks_received_units_in_the_same_post(
    simulators, clients_for, warehouse_db, tmp_path
) -> None:
    """Cin7 Core refuses any change to an authorised credit note (apib L24689): the restock of units
    already back at the warehouse rides on the POST that creates the note, once, into holding; the
    restock state is then read from the note's saleCreditNoteList row."""
    path = scenario(tmp_path, 515, returns=200)
    document = json.loads(path.read_text())
    entry = next(
        e
        for e in document["expected_exceptions"]
        if e["type"] == "refund_without_credit_note"
        and next(r for r in document["reveni"]["returns"] if r["id"] == e["return_id"])["return_point"]["type"]
        == "warehouse"
    )
    ret = next(r for r in document["reveni"]["returns"] if r["id"] == entry["return_id"])
    simulators.load(path)
    received = {**ret, "status": "received", "received_at": ret["created_at"]}
    simulators.upsert("reveni.returns", received)
    clients = clients_for()
    report = cycle(warehouse_db, clients, path, "restock-1")
    assert report.refused == 0
    notes = documents(simulators, path, entry)
    assert len(notes) == 1
    hold = f"{doc_location(ret)} Returns Hold"
    assert sorted((r["SKU"], r["RestockLocation"], r["Quantity"]) for r in notes[0]["Restock"]) == sorted(
        (i["sku"], hold, i["quantity"]) for i in ret["return_items"]
    )
    listed = clients.cin7.get("saleCreditNoteList", {"Page": 1, "Limit": 1000})["SaleList"]
    assert [r["RestockStatus"] for r in listed if r["CreditNoteNumber"] == notes[0]["CreditNoteNumber"]] == [
        "AUTHORISED"
    ]
    cycle(warehouse_db, clients, path, "restock-2")
    assert len(documents(simulators, path, entry)) == 1
    with warehouse_db.connect() as conn:
        open_for_return = {
            t
            for (t,) in conn.execute(
                "SELECT exception_type FROM recon.exceptions"
                " WHERE return_id = %s AND state IN ('open', 'acknowledged')",
                (ret["id"],),
            )
        }
        number = conn.execute(
            "SELECT target_number FROM recon.postings WHERE return_id = %s AND action = 'create_credit_note'",
            (ret["id"],),
        ).fetchone()[0]
    assert "missing_restock" not in open_for_return
    assert "refund_without_credit_note" not in open_for_return
    assert number == notes[0]["CreditNoteNumber"]


def test_a_missing_restock_is_left_to_a_person_with_the_steps(simulators, clients_for, warehouse_db, tmp_path) -> None:
    path = scenario(tmp_path, 808, returns=400)
    simulators.load(path)
    planted = [e for e in json.loads(path.read_text())["expected_exceptions"] if e["type"] == "missing_restock"]
    assert planted
    clients = clients_for()
    cycle(warehouse_db, clients, path, "manual-1")
    cycle(warehouse_db, clients, path, "manual-2")
    with warehouse_db.connect() as conn:
        rows = conn.execute(
            "SELECT return_id, item_id, state, evidence->>'steps' FROM recon.exceptions WHERE exception_type = "
            "'missing_restock'"
        ).fetchall()
        postings = conn.execute(
            "SELECT count(*) FROM recon.postings p JOIN recon.exceptions e USING (exception_key) "
            "WHERE e.exception_type = 'missing_restock'"
        ).fetchone()[0]
    assert postings == 0
    by_item = {(r, i): (state, steps) for r, i, state, steps in rows}
    for entry in planted:
        state, steps = by_item[(entry["return_id"], entry["item_id"])]
        assert state == "open"
        assert "authorise the restock" in steps
        assert "Returns Hold" in steps
