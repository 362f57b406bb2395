"""Faults on the write side (issue 16 items 4-6 and the POST-side faults of the fault suite), each through the
real executor (reconcile, plan, execute) against the simulators over HTTP: a transient answer inside a Sitoo
batch envelope, a throttled write with ``Retry-After`` as an HTTP date, the key rotated in the middle of a run,
and an applied write answered with an empty or truncated body. Each ends with exactly one document per
posting in the simulators. The first test pins the faults' wire shapes (docs/simulators.md)."""

from __future__ import annotations

import email.utils
import json
import time
from pathlib import Path

import psycopg
import pytest
import requests

from returns_recon.apis.client import RetrySettings
from returns_recon.postings.execute import CredentialsRefused, execute, quality_gate
from returns_recon.postings.plan import plan
from tests.fixtures.pipeline import SETTINGS, cycle
from tests.fixtures.scenarios import scenario

pytestmark = pytest.mark.integration

# a throttle's Retry-After of a few seconds is honoured as asked (not capped below it)
PATIENT = RetrySettings(initial_wait=0.2, max_wait=10, read_timeout=5)


def postings(db, action: str | None = None, system: str | None = None) -> list[tuple[str, str, str, dict]]:
    """(key, action, status, payload) of the outbox, optionally for one action or one system."""
    with db.connect() as conn:
        rows = conn.execute(
            "SELECT posting_key, action, status, payload FROM recon.postings "
            "WHERE (%(action)s::text IS NULL OR action = %(action)s) "
            "AND (%(system)s::text IS NULL OR system = %(system)s) ORDER BY posting_key",
            {"action": action, "system": system},
        ).fetchall()
    return [(key, act, status, payload) for key, act, status, payload in rows]


def assert_one_document_each(simulators, rows) -> None:
    for key, action, status, payload in rows:
        found = simulators.documents(action, payload)
        assert len(found) == 1, (key, action, status, found)


def outcomes(db, key: str) -> list[str]:
    """The outcomes logged for one posting, in order."""
    with db.connect() as conn:
        return [
            r[0]
            for r in conn.execute(
                "SELECT outcome FROM recon.posting_log WHERE posting_key = %s AND outcome IS NOT NULL ORDER BY id",
                (key,),
            )
        ]


# --- the faults on the wire ---------------------------------------------------------------------------------


def test_write_faults_are_off_by_default_and_answer_as_documented(simulators, tmp_path: Path) -> None:
    path = scenario(tmp_path, 2100, returns=40)
    simulators.load(path)
    document = json.loads(path.read_text())
    warehouse = next(w for w in document["sitoo"]["warehouses"] if w.get("warehousetype") != 20)["warehouseid"]
    body = [
        {
            "warehouseid": warehouse,
            "transactiontype": 10,
            "externalid": "wire-1",
            "items": [{"sku": document["sitoo"]["products"][0]["sku"], "decimalquantity": "1.000"}],
        }
    ]
    sitoo, url = simulators.sitoo_session(), f"{simulators.sitoo_site}/warehousetransactions.json"
    defaults = simulators.faults("sitoo")
    assert (
        defaults["writes_only"],
        defaults["auth_refuse_writes_after"],
        defaults["element_error_rate"],
        defaults["empty_body_rate"],
        defaults["truncated_body_rate"],
        defaults["retry_after_form"],
    ) == (False, None, 0.0, 0.0, 0.0, "default")
    assert isinstance(sitoo.post(url, json=body, timeout=10).json(), int)  # the documented bare id
    # an element 5xx/429 in the batch envelope (schemas/batchResponse.yaml), not applied
    simulators.faults("sitoo", element_error_rate=1.0, element_error_statuses=[503])
    answer = sitoo.post(url, json=body, timeout=10)
    assert (answer.status_code, answer.json()) == (200, [{"statuscode": 503, "return": "Service Unavailable"}])
    # a throttle on writes only, Retry-After as an HTTP date (RFC 9110 §10.2.3) at least 2 s ahead
    simulators.faults(
        "sitoo", rate_limit_per_minute=1, writes_only=True, retry_after_form="date", retry_after_seconds=2
    )
    assert [sitoo.get(url, timeout=10).status_code for _ in range(3)] == [200] * 3, "reads are not throttled"
    assert sitoo.post(url, json=body, timeout=10).status_code == 200
    throttled = sitoo.post(url, json=body, timeout=10)
    assert throttled.status_code == 429
    ahead = email.utils.parsedate_to_datetime(throttled.headers["Retry-After"]).timestamp() - time.time()
    assert 1.0 < ahead <= 3.0, throttled.headers["Retry-After"]
    # Cin7 Core documents no Retry-After: none unless the fault asks for one
    simulators.faults("cin7", rate_limit_per_minute=1, writes_only=True, throttle_form="400")
    cin7 = simulators.cin7_session()
    cin7.post(f"{simulators.cin7}/stockTransfer", json={}, timeout=10)
    refused = cin7.post(f"{simulators.cin7}/stockTransfer", json={}, timeout=10)
    assert refused.status_code == 400
    assert "calls per 60 seconds API limit" in refused.json()[0]["Exception"]
    assert "Retry-After" not in refused.headers
    # the key rotated after one write: every later call is refused, reads too
    simulators.faults("cin7", auth_refuse_writes_after=1, auth_refuse_status=403)
    assert cin7.get(f"{simulators.cin7}/ref/location", timeout=10).status_code == 200
    cin7.post(f"{simulators.cin7}/stockTransfer", json={}, timeout=10)
    assert cin7.get(f"{simulators.cin7}/ref/location", timeout=10).status_code == 403
    simulators.faults("cin7")
    assert cin7.get(f"{simulators.cin7}/ref/location", timeout=10).status_code == 200, "a new config is a fixed key"
    # an applied write answered with an empty body, or with its body cut short
    simulators.faults("sitoo", empty_body_rate=1.0)
    empty = sitoo.post(url, json=body, timeout=10)
    assert (empty.status_code, empty.content, empty.headers["content-type"]) == (200, b"", "application/json")
    simulators.faults("sitoo", truncated_body_rate=1.0)
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        sitoo.post(url, json=body, timeout=10)
    simulators.faults("sitoo")
    applied = [t for t in simulators.sitoo_transactions() if t.get("externalid") == "wire-1"]
    assert len(applied) == 4, "the first, the one before the throttle, the empty and the truncated answer"
    counted = simulators.counters()
    assert counted["sitoo"]["faults"] == {"element_error": 1, "empty": 1, "truncated": 1}
    assert counted["cin7"]["faults"] == {"auth_403": 1}


# --- through the executor -------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 503, 429])
def test_a_sitoo_element_5xx_or_429_leaves_the_posting_ambiguous_and_the_next_run_sends_it_once(
    status: int, simulators, clients_for, warehouse_db, tmp_path: Path
) -> None:
    path = scenario(tmp_path, 2101, returns=120)
    simulators.load(path)
    clients = clients_for()
    simulators.faults("sitoo", element_error_rate=1.0, element_error_statuses=[status])
    first = cycle(warehouse_db, clients, path, "element-1")
    stock = postings(warehouse_db, "sitoo_store_stock")
    assert stock, "the scenario plants store stock missing in Sitoo"
    assert {s for _, _, s, _ in stock} == {"ambiguous"}, "transient, not refused"
    assert first.refused == 0
    assert simulators.counters()["sitoo"]["faults"].get("element_error") == len(stock)
    assert all(simulators.documents(a, p) == [] for _, a, _, p in stock), "the element was not applied"
    stock_keys = {key for key, *_ in stock}
    assert {s for key, _, s, _ in postings(warehouse_db) if key not in stock_keys} <= {"done"}, "the others went out"
    simulators.faults("sitoo")
    cycle(warehouse_db, clients, path, "element-2")
    stock = postings(warehouse_db, "sitoo_store_stock")
    assert {s for _, _, s, _ in stock} == {"done"}, "read back (absent), then sent"
    assert_one_document_each(simulators, stock)
    assert outcomes(warehouse_db, stock[0][0]) == ["ambiguous", "done"]


def test_a_write_throttled_with_retry_after_as_a_date_waits_and_lands_once(
    simulators, clients_for, warehouse_db, tmp_path: Path
) -> None:
    path = scenario(tmp_path, 2102, returns=120)
    simulators.load(path)
    clients = clients_for(retry=PATIENT)
    cycle(warehouse_db, clients, path, "date-1", post=False)
    with psycopg.connect(warehouse_db.url, autocommit=True) as conn:
        quality_gate(conn, "date-1")
        plan(conn, "date-1", SETTINGS)
    sitoo_rows = postings(warehouse_db, system="sitoo")
    assert len(sitoo_rows) >= 2, "two writes to Sitoo at least, so that one is throttled"
    # one Sitoo write per simulated minute; the clock runs 40 times faster, so the window is free again
    # 1.5 s (real) after a write, sooner than the Retry-After date (2 s ahead, rounded up to the second)
    simulators.clock(speed=40)
    simulators.faults(
        "sitoo", rate_limit_per_minute=1, writes_only=True, retry_after_form="date", retry_after_seconds=2
    )
    simulators.counters(reset=True)
    started = time.monotonic()
    with psycopg.connect(warehouse_db.url, autocommit=True) as conn:
        report = execute(conn, clients, "date-1", SETTINGS)
    elapsed = time.monotonic() - started
    throttled = simulators.counters()["sitoo"]["total_throttled"]
    simulators.faults("sitoo")
    simulators.clock(speed=1)
    assert throttled >= 1, "a Sitoo write was throttled"
    # each throttled write waited until the date (>= 2 s less the request's own latency), one after another
    assert elapsed >= throttled * 1.8, (elapsed, throttled)
    assert elapsed < throttled * 4 + 60, (elapsed, throttled)
    assert (report.ambiguous, report.refused) == (0, 0), "retried in place, not left ambiguous"
    sitoo_rows = postings(warehouse_db, system="sitoo")
    assert {s for _, _, s, _ in sitoo_rows} == {"done"}
    assert_one_document_each(simulators, sitoo_rows)


@pytest.mark.parametrize("status", [401, 403])
def test_the_key_rotated_mid_run_leaves_the_rest_pending_and_the_next_run_sends_each_once(
    status: int, simulators, clients_for, warehouse_db, tmp_path: Path
) -> None:
    path = scenario(tmp_path, 2103, returns=150)
    simulators.load(path)
    clients = clients_for()
    # the Cin7 Core key is rotated right after our first write: every later call is refused
    simulators.faults("cin7", auth_refuse_writes_after=1, auth_refuse_status=status)
    with pytest.raises(CredentialsRefused) as failed:
        cycle(warehouse_db, clients, path, "rotated-1")
    assert "cin7_core_default" in str(failed.value)
    assert simulators.counters()["cin7"]["faults"].get(f"auth_{status}", 0) >= 1
    cin7, sitoo = postings(warehouse_db, system="cin7"), postings(warehouse_db, system="sitoo")
    assert len(cin7) >= 3, "more Cin7 Core postings than the one write the key allowed"
    assert sorted(s for _, _, s, _ in cin7) == ["done"] + ["planned"] * (len(cin7) - 1), "pending, never refused"
    assert {s for _, _, s, _ in sitoo} == {"done"}, "the other system's postings went out"
    with warehouse_db.connect() as conn:
        refused = conn.execute("SELECT count(*) FROM recon.postings WHERE status = 'refused'").fetchone()[0]
        pending = conn.execute(
            "SELECT count(*) FROM recon.posting_log WHERE run_id = 'rotated-1' AND outcome = 'pending'"
        ).fetchone()[0]
    assert refused == 0
    assert pending == len(cin7) - 1
    # the connection is fixed (the fault reset): the next run sends each once
    simulators.faults("cin7")
    report = cycle(warehouse_db, clients, path, "rotated-2")
    cin7 = postings(warehouse_db, system="cin7")
    assert {s for _, _, s, _ in cin7} <= {"done", "adopted"}
    assert report.done == len(cin7) - 1
    assert_one_document_each(simulators, [*cin7, *postings(warehouse_db, system="sitoo")])


@pytest.mark.parametrize("fault", ["empty_body_rate", "truncated_body_rate"])
def test_an_applied_write_answered_with_an_empty_or_truncated_body_is_adopted_next_run(
    fault: str, simulators, clients_for, warehouse_db, tmp_path: Path
) -> None:
    path = scenario(tmp_path, 2104, returns=120)
    simulators.load(path)
    clients = clients_for()
    for service in ("cin7", "sitoo"):
        simulators.faults(service, **{fault: 1.0})
    first = cycle(warehouse_db, clients, path, "body-1")
    answered = sum(sum(c["faults"].values()) for c in simulators.counters().values())
    for service in ("cin7", "sitoo"):
        simulators.faults(service)
    rows = postings(warehouse_db)
    assert len(rows) >= 4
    assert {s for _, _, s, _ in rows} == {"ambiguous"}, "applied, but the answer could not be read"
    assert first.ambiguous == answered == len(rows)
    assert_one_document_each(simulators, rows)  # the writes were applied
    second = cycle(warehouse_db, clients, path, "body-2")
    rows = postings(warehouse_db)
    assert {s for _, _, s, _ in rows} == {"adopted"}, "read back and adopted, not sent again"
    assert (second.adopted, second.done) == (len(rows), 0)
    assert_one_document_each(simulators, rows)
    with warehouse_db.connect() as conn:
        unlinked = conn.execute("SELECT count(*) FROM recon.postings WHERE target_ref IS NULL").fetchone()[0]
    assert unlinked == 0, "each adopted posting names its document"
