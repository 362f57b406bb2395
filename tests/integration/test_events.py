"""The events path (issue 20): a webhook event in the inbox makes the events DAG's steps read the return again,
reconcile only the returns concerned (same rules, same exception keys as the batch runs) and post their fixes, without
a batch run; a targeted run leaves every other exception and the published tables alone; a missed event is caught by
the next batch run; events processed twice (a run killed before marking them) duplicate nothing. And the inbox's
watcher trigger wakes on a new row, and only then."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from recon_simulators.generator import GeneratorConfig
from returns_recon import events
from returns_recon.orchestration.triggers import InboxPendingTrigger, Signals
from returns_recon.postings.execute import LOCK_KEY
from returns_recon.reconcile import publish
from returns_recon.settings import ReconSettings
from tests.fixtures.pipeline import SETTINGS, cycle, events_cycle
from tests.fixtures.scenarios import scenario

pytestmark = pytest.mark.integration

DRY_RUN = ReconSettings(credit_note_approval_threshold=Decimal("1000000"), postings_dry_run=True)


def deliver(conn: psycopg.Connection, source: str, event_type: str, resource_ids: list[str]) -> int:
    """A verified event stored as the receiver stores it (migration 0021): one row, replays counted."""
    event_id = uuid.uuid4().hex
    payload = {"id": event_id, "event": event_type, "data": {"resource_id": resource_ids[0] if resource_ids else None}}
    row = conn.execute(
        """INSERT INTO raw.webhook_inbox (source, event_id, event_type, resource_ids, signed_at, payload)
           VALUES (%s, %s, %s, %s, now(), %s)
           ON CONFLICT (source, event_id) DO UPDATE SET deliveries = raw.webhook_inbox.deliveries + 1
           RETURNING inbox_id""",
        (source, event_id, event_type, resource_ids, json.dumps(payload)),
    ).fetchone()
    assert row is not None
    return row[0]


def refund_without_note(path: Path) -> dict:
    """A planted return whose only rule break is its refund without a credit note, alone on its order."""
    document = json.loads(path.read_text())
    types: dict[str, set[str]] = defaultdict(set)
    for entry in document["expected_exceptions"]:
        types[entry["return_id"]].add(entry["type"])
    orders: dict[str, int] = defaultdict(int)
    for ret in document["reveni"]["returns"]:
        orders[ret["order"]["external_id"]] += 1
    return next(
        r
        for r in document["reveni"]["returns"]
        if types.get(r["id"]) == {"refund_without_credit_note"} and orders[r["order"]["external_id"]] == 1
    )


def setup(simulators, clients_for, warehouse_db, tmp_path: Path, seed: int, settings: ReconSettings = SETTINGS):
    """The scenario with one return made consistent (its refund taken away), reconciled and posted by a batch
    run; then the refund is paid in Reveni (the simulator), which breaks refund_without_credit_note."""
    path = scenario(tmp_path, seed, returns=300, rates={**GeneratorConfig().rates, "refund_without_credit_note": 0.04})
    simulators.load(path)
    ret = refund_without_note(path)
    simulators.upsert("reveni.returns", {**ret, "refunds": []})
    clients = clients_for()
    cycle(warehouse_db, clients, path, "batch-1", settings)
    assert exceptions_of(warehouse_db, ret["id"]) == {}
    simulators.upsert("reveni.returns", ret)
    return path, ret, clients


def exceptions_of(db, return_id: str) -> dict[str, str]:
    with db.connect() as conn:
        return dict(
            conn.execute(
                "SELECT exception_key, state FROM recon.exceptions WHERE return_id = %s AND state <> 'auto_resolved'",
                (return_id,),
            ).fetchall()
        )


def credit_notes(simulators, ret: dict) -> list[dict]:
    """The credit notes in Cin7 Core (the simulator) carrying this return's memo."""
    order = ret["order"]["external_id"]
    listed = simulators.cin7_session().get(f"{simulators.cin7}/saleList", params={"Search": order}).json()["SaleList"]
    notes = []
    for row in listed:
        if row.get("CustomerReference") != order:
            continue
        sale = simulators.cin7_session().get(f"{simulators.cin7}/sale", params={"ID": row["SaleID"]}).json()
        notes += [n for n in sale.get("CreditNotes", []) if n.get("Memo") == f"reveni:{ret['id']}"]
    return notes


def test_an_event_for_a_return_that_breaks_a_rule_raises_it_and_posts_its_fix_without_a_batch_run(
    simulators, clients_for, warehouse_db, tmp_path
) -> None:
    _path, ret, clients = setup(simulators, clients_for, warehouse_db, tmp_path, 2001)
    key = f"refund_without_credit_note:{ret['id']}"
    with warehouse_db.connect(autocommit=True) as conn:
        inbox_id = deliver(conn, "reveni", "return.updated", [ret["id"]])
    assert credit_notes(simulators, ret) == []
    simulators.counters(reset=True)
    outcome = events_cycle(warehouse_db, clients, "events-1")
    assert outcome["read"]["inbox_ids"] == [inbox_id]
    assert ret["id"] in outcome["reconciled"]["returns"]
    assert outcome["posted"]["done"] == 1, outcome["posted"]
    reveni_calls = simulators.counters()["reveni"]["calls"]
    assert reveni_calls == {"return": 1}, reveni_calls  # GET returns/{id}, nothing listed
    with warehouse_db.connect() as conn:
        row = conn.execute(
            "SELECT state, last_run_id, evidence ->> 'refunded' FROM recon.exceptions WHERE exception_key = %s", (key,)
        ).fetchone()
        posting = conn.execute(
            "SELECT status, exception_key FROM recon.postings WHERE return_id = %s AND action = 'create_credit_note'",
            (ret["id"],),
        ).fetchall()
        processed = conn.execute(
            "SELECT processed_at IS NOT NULL, processed_by_run FROM raw.webhook_inbox WHERE inbox_id = %s", (inbox_id,)
        ).fetchone()
        runs = conn.execute("SELECT run_id, mode FROM recon.recon_runs ORDER BY started_at").fetchall()
    assert row is not None
    assert row[:2] == ("open", "events-1")
    assert Decimal(row[2]) == sum(Decimal(f["amount"]) for f in ret["refunds"] if f["status"] == "paid")
    assert posting == [("done", key)]
    notes = credit_notes(simulators, ret)
    assert len(notes) == 1
    assert notes[0]["Status"] == "AUTHORISED"
    assert processed == (True, "events-1")
    assert runs == [("batch-1", "hourly"), ("events-1", "events")]  # no batch run in between


def test_while_another_run_posts_the_events_run_leaves_its_postings_to_the_next_run(
    simulators, clients_for, warehouse_db, tmp_path
) -> None:
    path, ret, clients = setup(simulators, clients_for, warehouse_db, tmp_path, 2006)
    key = f"refund_without_credit_note:{ret['id']}"
    with warehouse_db.connect(autocommit=True) as conn:
        deliver(conn, "reveni", "return.updated", [ret["id"]])
    with warehouse_db.connect(autocommit=True) as posting_run:  # an hourly run posting right now
        assert posting_run.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,)).fetchone() == (True,)
        outcome = events_cycle(warehouse_db, clients, "events-1")  # does not raise
    assert outcome["posted"]["postings_locked"] is True
    assert outcome["posted"]["planned"] == 1
    assert exceptions_of(warehouse_db, ret["id"]) == {key: "open"}
    assert postings_of(warehouse_db, key) == [("planned",)]
    assert credit_notes(simulators, ret) == []
    report = cycle(warehouse_db, clients, path, "batch-2")  # the next run sends it
    assert report is not None
    assert postings_of(warehouse_db, key) == [("done",)]
    assert len(credit_notes(simulators, ret)) == 1


def test_a_targeted_run_touches_only_its_returns_and_finds_the_keys_the_batch_run_finds(
    simulators, clients_for, warehouse_db, tmp_path
) -> None:
    path, ret, clients = setup(simulators, clients_for, warehouse_db, tmp_path, 2002, DRY_RUN)
    document = json.loads(path.read_text())
    planted = {e["return_id"] for e in document["expected_exceptions"]}
    other = next(
        r
        for r in document["reveni"]["returns"]
        if r["order"]["external_id"] != ret["order"]["external_id"] and r["id"] not in planted
    )
    with warehouse_db.connect(autocommit=True) as conn:
        # stale findings a batch run would auto-resolve: one of another return, one of no return, one of ours
        for key, rid in (
            (f"sale_not_found:{other['id']}", other["id"]),
            ("invalid_record:-:cin7.sales:gone", None),
            (f"sale_not_found:{ret['id']}", ret["id"]),
        ):
            conn.execute(
                """INSERT INTO recon.exceptions (exception_key, exception_type, owner, severity, return_id, state,
                                                 first_seen_at, last_seen_at, last_run_id)
                   SELECT %s, exception_type, owner, severity, %s, 'open', now(), now(), 'batch-0'
                   FROM recon.dim_exception_types WHERE exception_type = %s""",
                (key, rid, key.split(":", 1)[0]),
            )
        before = others(conn, ret["id"])
        published = published_state(conn)
        deliver(conn, "reveni", "return.updated", [ret["id"]])
    outcome = events_cycle(warehouse_db, clients, "events-1", DRY_RUN)
    assert outcome["reconciled"]["returns"] == [ret["id"]]
    assert outcome["posted"]["dry_run"] == 1
    with warehouse_db.connect() as conn:
        assert others(conn, ret["id"]) == before  # not one column of another return's row, nor of a return-less one
        assert published_state(conn) == published  # the published tables are the batch run's
    targeted = exceptions_of(warehouse_db, ret["id"])
    assert targeted == {f"refund_without_credit_note:{ret['id']}": "open"}  # ours resolved, the new one raised
    with warehouse_db.connect() as conn:
        first_seen = dict(conn.execute("SELECT exception_key, first_seen_at FROM recon.exceptions").fetchall())
        rows = conn.execute("SELECT count(*) FROM recon.exceptions").fetchone()
    cycle(warehouse_db, clients, path, "batch-2", DRY_RUN)
    assert exceptions_of(warehouse_db, ret["id"]) == targeted  # the batch run finds the same keys
    with warehouse_db.connect() as conn:
        after = dict(conn.execute("SELECT exception_key, first_seen_at FROM recon.exceptions").fetchall())
        states = dict(conn.execute("SELECT exception_key, state FROM recon.exceptions").fetchall())
        opened = conn.execute("SELECT opened FROM recon.recon_runs WHERE run_id = 'batch-2'").fetchone()
        assert conn.execute("SELECT count(*) FROM recon.exceptions").fetchone() == rows
    assert after == first_seen
    assert opened == (0,)
    # the batch run resolves what the targeted run left alone
    assert states[f"sale_not_found:{other['id']}"] == states["invalid_record:-:cin7.sales:gone"] == "auto_resolved"


def test_the_events_dag_runs_under_airflow_on_what_is_pending(
    run_dag, simulators, clients_for, warehouse_db, tmp_path
) -> None:
    """`airflow dags test` of the asset-scheduled DAG (no triggering event: it reads the inbox, not the payload)."""
    _path, ret, _clients = setup(simulators, clients_for, warehouse_db, tmp_path, 2005)
    with warehouse_db.connect(autocommit=True) as conn:
        inbox_id = deliver(conn, "reveni", "return.updated", [ret["id"]])
    result = run_dag(
        "returns_recon_events",
        AIRFLOW_CONN_RECON_WAREHOUSE=warehouse_db.airflow_conn_json(),
        RECON_CREDIT_NOTE_APPROVAL_THRESHOLD="1000000",
        **simulators.env(),
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "state=success" in output
    with warehouse_db.connect() as conn:
        (run_id,) = conn.execute(
            "SELECT processed_by_run FROM raw.webhook_inbox WHERE inbox_id = %s AND processed_at IS NOT NULL",
            (inbox_id,),
        ).fetchone()
        state = conn.execute(
            "SELECT e.state, e.last_run_id, p.status FROM recon.exceptions AS e"
            " JOIN recon.postings AS p USING (exception_key) WHERE e.exception_key = %s",
            (f"refund_without_credit_note:{ret['id']}",),
        ).fetchone()
    assert state == ("open", run_id, "done")
    assert len(credit_notes(simulators, ret)) == 1


def others(conn: psycopg.Connection, return_id: str) -> list[tuple]:
    return conn.execute(
        "SELECT e.* FROM recon.exceptions AS e WHERE return_id IS DISTINCT FROM %s ORDER BY exception_key",
        (return_id,),
    ).fetchall()


def published_state(conn: psycopg.Connection) -> dict[str, tuple]:
    """Each published table's identity (a swap replaces it) and contents."""
    state = {}
    for table in publish.TABLES:
        state[table] = conn.execute(
            f"SELECT 'recon.{table}'::regclass::oid,"
            f" (SELECT md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), '')) FROM recon.{table} AS t)"
        ).fetchone()
    return state


def test_a_missed_event_is_caught_by_the_next_batch_run(simulators, clients_for, warehouse_db, tmp_path) -> None:
    path, ret, clients = setup(simulators, clients_for, warehouse_db, tmp_path, 2003)
    key = f"refund_without_credit_note:{ret['id']}"
    outcome = events_cycle(warehouse_db, clients, "events-1")  # no event came
    assert outcome["read"]["inbox_ids"] == []
    assert outcome["reconciled"]["returns"] == []
    assert exceptions_of(warehouse_db, ret["id"]) == {}
    report = cycle(warehouse_db, clients, path, "batch-2")
    assert report is not None
    assert report.done >= 1
    with warehouse_db.connect() as conn:
        row = conn.execute(
            "SELECT e.last_run_id, p.status FROM recon.exceptions e JOIN recon.postings p USING (exception_key)"
            " WHERE e.exception_key = %s",
            (key,),
        ).fetchone()
    assert row == ("batch-2", "done")
    assert len(credit_notes(simulators, ret)) == 1


def test_events_processed_twice_duplicate_no_exception_and_no_posting(
    simulators, clients_for, warehouse_db, tmp_path, monkeypatch
) -> None:
    _path, ret, clients = setup(simulators, clients_for, warehouse_db, tmp_path, 2004)
    key = f"refund_without_credit_note:{ret['id']}"
    with warehouse_db.connect(autocommit=True) as conn:
        inbox_id = deliver(conn, "reveni", "return.updated", [ret["id"]])

    # killed while reconciling, before its events were marked: nothing of the reconciliation is kept
    monkeypatch.setattr(events, "MARK_PROCESSED", "SELECT pg_sleep(0) FROM nowhere_at_all")
    with pytest.raises(psycopg.errors.UndefinedTable):
        events_cycle(warehouse_db, clients, "events-1")
    monkeypatch.undo()
    assert exceptions_of(warehouse_db, ret["id"]) == {}
    with warehouse_db.connect() as conn:
        assert conn.execute("SELECT processed_at FROM raw.webhook_inbox").fetchall() == [(None,)]
    first = events_cycle(warehouse_db, clients, "events-2")
    assert first["posted"]["done"] == 1
    # a run whose marks were lost after its effects: the same event processed again, with Reveni's once more
    with warehouse_db.connect(autocommit=True) as conn:
        conn.execute("UPDATE raw.webhook_inbox SET processed_at = NULL, processed_by_run = NULL")
        deliver(conn, "reveni", "return.updated", [ret["id"]])
    again = events_cycle(warehouse_db, clients, "events-3")
    assert inbox_id in again["read"]["inbox_ids"]
    assert len(again["read"]["inbox_ids"]) == 2
    # the exception is still open (Cin7 Core's side was not read again): planned again, under the same key, not sent
    assert again["posted"]["done"] == again["posted"]["adopted"] == 0, again["posted"]
    assert exceptions_of(warehouse_db, ret["id"]) == {key: "open"}
    assert postings_of(warehouse_db, key) == [("done",)]
    assert len(credit_notes(simulators, ret)) == 1
    # Cin7 Core's event for the credit note we created (our own writes fire webhooks too): read with its sale, the
    # note resolves the exception, fixed by that one posting
    with warehouse_db.connect(autocommit=True) as conn:
        (sale_id,) = conn.execute(
            "SELECT sale_id FROM staging.stg_cin7__sales WHERE customer_reference = %s", (ret["order"]["external_id"],)
        ).fetchone()
        deliver(conn, "cin7", "Sale/CreditNoteAuthorised", [sale_id])
    echo = events_cycle(warehouse_db, clients, "events-4")
    assert echo["read"]["sales"] == 1
    with warehouse_db.connect() as conn:
        rows = conn.execute(
            "SELECT exception_key, state, fixed_by_posting IS NOT NULL FROM recon.exceptions WHERE return_id = %s",
            (ret["id"],),
        ).fetchall()
        pending = conn.execute("SELECT count(*) FROM raw.webhook_inbox WHERE processed_at IS NULL").fetchone()
        listed = conn.execute(
            "SELECT credit_note_number, _run_id FROM staging.stg_cin7__credit_note_list WHERE sale_id = %s"
            " AND credit_note_number = %s",
            (sale_id, credit_notes(simulators, ret)[0]["CreditNoteNumber"]),
        ).fetchall()
    assert rows == [(key, "auto_resolved", True)]
    assert len(listed) == 1  # its credit-note list row too (the restock state), read by this run
    assert listed[0][1] == "events-4"
    assert postings_of(warehouse_db, key) == [("done",)]
    assert len(credit_notes(simulators, ret)) == 1
    assert pending == (0,)


def postings_of(db, exception_key: str) -> list[tuple]:
    with db.connect() as conn:
        return conn.execute("SELECT status FROM recon.postings WHERE exception_key = %s", (exception_key,)).fetchall()


# --- the inbox's watcher -------------------------------------------------------------------------------------------


def test_the_signal_rules() -> None:
    signals = Signals(resignal_seconds=120)
    assert not signals.due(None, None, 0, 0)  # nothing pending
    assert signals.due(5, 9, 5, 0)  # rows pending at start
    assert not signals.due(5, 9, 5, 10)  # the same rows: signalled already
    assert signals.due(5, 10, 6, 11)  # a newer row
    assert signals.due(8, 10, 3, 12)  # a run took a batch and rows remain
    assert not signals.due(8, 10, 3, 100)
    assert signals.due(8, 10, 3, 132)  # still pending after the re-signal interval
    assert signals.due(2, 10, 4, 133)  # an old row set pending again (a replay)
    assert not signals.due(2, 10, 4, 134)


async def _watch(trigger: InboxPendingTrigger, queue: asyncio.Queue) -> None:
    async for event in trigger.run():
        await queue.put(event)


async def _watching(trigger: InboxPendingTrigger, body):
    """Run the trigger as the triggerer does, in a task of the loop, while ``body(queue, task)`` looks on."""
    queue: asyncio.Queue = asyncio.Queue()
    task = asyncio.create_task(_watch(trigger, queue))
    try:
        return await body(queue, task)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _event_within(queue: asyncio.Queue, task: asyncio.Task, seconds: float):
    getting = asyncio.ensure_future(queue.get())
    done, _ = await asyncio.wait({getting, task}, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        getting.cancel()
        task.result()  # the trigger raised: show why
        raise AssertionError("the trigger ended")
    if getting not in done:
        getting.cancel()
        return None
    return getting.result()


def test_the_watcher_fires_on_a_new_row_and_not_without_one(warehouse_db, monkeypatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_RECON_WAREHOUSE", warehouse_db.airflow_conn_json())
    # a poll interval longer than the waits: the row is seen through LISTEN/NOTIFY
    trigger = InboxPendingTrigger(poll_seconds=30, resignal_seconds=600)

    async def body(queue: asyncio.Queue, task: asyncio.Task):
        quiet = await _event_within(queue, task, 3)
        started = time.monotonic()
        await asyncio.to_thread(_insert_pending, warehouse_db)
        event = await _event_within(queue, task, 5)
        waited = time.monotonic() - started
        again = await _event_within(queue, task, 2)
        return quiet, waited, event, again

    quiet, waited, event, again = asyncio.run(_watching(trigger, body))
    assert quiet is None, "the watcher fired with nothing pending"
    assert event is not None, "no signal within 5 s of the row"
    assert waited < 5
    assert event.payload["pending"] == 1
    assert again is None, "the watcher fired twice for the same row"


def test_the_watcher_polls_when_no_notification_comes(warehouse_db, monkeypatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_RECON_WAREHOUSE", warehouse_db.airflow_conn_json())
    trigger = InboxPendingTrigger(poll_seconds=0.5, resignal_seconds=600, channel="nobody_notifies_this")

    async def body(queue: asyncio.Queue, task: asyncio.Task):
        assert await _event_within(queue, task, 1) is None
        await asyncio.to_thread(_insert_pending, warehouse_db)
        first = await _event_within(queue, task, 5)
        again = await _event_within(queue, task, 2)  # four more polls, the same pending row
        return first, again

    first, again = asyncio.run(_watching(trigger, body))
    assert first is not None
    assert first.payload["pending"] == 1
    assert again is None, "the watcher signalled the same pending row twice"


def _insert_pending(db) -> None:
    with db.connect(autocommit=True) as conn:
        deliver(conn, "reveni", "return.created", ["r-1"])
