"""The simulators send webhooks as Reveni and Cin7 Core document them (issue 20, item 4), and the Reveni list
endpoint can be switched off (item 3, the simulator side).

A tiny receiver (stdlib ``http.server`` on 127.0.0.1) records every request; the Reveni signature is checked
here with ``hmac`` alone (reveni_api.md L124-L126), independently of any pipeline code."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from recon_simulators.behaviour import Behaviour
from recon_simulators.cin7 import ZERO_GUID
from recon_simulators.scenario import read_header_and_records
from recon_simulators.timefmt import require_ts
from tests.fixtures.contract import check_all, report
from tests.fixtures.simulators import CREDS, ROOT, Simulators, free_port

pytestmark = pytest.mark.integration

TOLERANCE = 300  # the receiver's default (RECON_WEBHOOK_TOLERANCE_SECONDS)


# --- a receiver that records every request -------------------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self):
        return json.loads(self.body)


@dataclass
class Receiver:
    url: str
    requests: list[Received] = field(default_factory=list)
    statuses: deque[int] = field(default_factory=deque)  # answered in turn; 200 when empty
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wait(self, count: int, timeout: float = 15.0, where: Callable[[Received], bool] = lambda r: True) -> list:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                found = [r for r in self.requests if where(r)]
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"{len(found)} of {count} requests arrived in {timeout}s: {[r.path for r in found]}")

    def clear(self) -> None:
        with self.lock:
            self.requests.clear()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    port = free_port()
    box = Receiver(f"http://127.0.0.1:{port}")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with box.lock:
                box.requests.append(Received(self.path, dict(self.headers.items()), body, time.monotonic()))
                status = box.statuses.popleft() if box.statuses else 200
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield box
    server.shutdown()
    server.server_close()


# --- the simulators, with fast deliveries ----------------------------------------------------------------------


def behaviour(sims: Simulators, service: str, **values) -> dict:
    response = requests.post(f"{sims.admin}/behaviour/{service}", json=values, timeout=10)
    response.raise_for_status()
    return response.json()


@pytest.fixture
def sims(simulators, small_scenario) -> Iterator[Simulators]:
    """The small scenario on a frozen clock, deliveries at once; every subscription, misbehaviour and setting
    undone afterwards (the simulators are shared by the session)."""
    simulators.load(small_scenario, frozen=True)
    behaviour(simulators, "webhooks", cin7_first_delay_seconds=0, reveni_first_delay_seconds=0)
    yield simulators
    requests.delete(f"{simulators.admin}/webhooks", timeout=10).raise_for_status()
    requests.post(f"{simulators.admin}/webhooks/misbehave", json=dict.fromkeys(MISBEHAVIOURS, 0), timeout=10)
    for service, model in Behaviour.MODELS.items():
        behaviour(simulators, service, **model().model_dump(mode="json"))


MISBEHAVIOURS = ("forged", "replayed", "stale", "oversized")


@pytest.fixture(scope="module")
def data(small_scenario) -> dict[str, list[dict]]:
    _, records = read_header_and_records(small_scenario)
    grouped: dict[str, list[dict]] = {}
    for kind, record in records:
        grouped.setdefault(kind, []).append(record)
    return grouped


def webhook_log(sims: Simulators, **params) -> list[dict]:
    response = requests.get(f"{sims.admin}/webhooks/log", params=params, timeout=10)
    response.raise_for_status()
    return response.json()["attempts"]


def reveni_signature_ok(received: Received, key: str = CREDS.reveni_api_key) -> tuple[bool, float]:
    """(the v1 signature verifies, t) per reveni_api.md L124-L126, on the raw body."""
    parts = dict(item.split("=", 1) for item in received.headers["X-REVENI-SIGNATURE"].split(","))
    expected = hmac.new(key.encode(), f"{parts['t']}.".encode() + received.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts["v1"]), float(parts["t"])


def assert_genuine_reveni(received: Received, event: str, resource_id: str) -> dict:
    ok, stamp = reveni_signature_ok(received)
    assert ok, received.headers
    assert abs(time.time() - stamp) < 30, "t is the time of sending"
    assert "." in received.headers["X-REVENI-SIGNATURE"].split(",")[0], "t is fractional (reveni_api.md L126)"
    envelope = received.json()
    assert set(envelope) == {"id", "event", "created", "data"}
    assert len(envelope["id"]) == 32
    assert envelope["event"] == event
    assert isinstance(envelope["created"], int)
    assert envelope["data"]["resource"] == "return"
    assert envelope["data"]["resource_id"] == resource_id
    assert set(envelope["data"]) == {"amount", "status", "currency", "resource", "resource_id", "object"}
    return envelope


# --- Reveni ----------------------------------------------------------------------------------------------------


def test_reveni_signs_created_and_updated_for_upserts_scheduled_events_and_api_writes(sims, receiver, data) -> None:
    session = sims.reveni_session()
    made = session.post(
        f"{sims.reveni}/webhooks",
        json={"event_types": ["return.created", "return.updated"], "url": f"{receiver.url}/reveni"},
        timeout=10,
    )
    assert made.status_code == 201
    hook = made.json()
    assert set(hook) == {"id", "url", "event_types"}
    assert hook["event_types"] == ["return.created", "return.updated"]

    # /_sim/upsert: a new return (created), then a change to it (updated)
    new = {**copy.deepcopy(data["reveni.returns"][0]), "id": uuid.uuid4().hex, "status": "in_progress"}
    sims.upsert("reveni.returns", new)
    created = receiver.wait(1)[0]
    envelope = assert_genuine_reveni(created, "return.created", new["id"])
    assert envelope["data"]["status"] == "in_progress"
    sims.upsert("reveni.returns", {**new, "status": "received"})
    updated = receiver.wait(2)[1]
    assert assert_genuine_reveni(updated, "return.updated", new["id"])["data"]["status"] == "received"

    # a scheduled scenario event falling due
    clock = require_ts(sims.clock()["clock"])
    events = sorted(
        (require_ts(e["at"]), e["v"]["id"])
        for e in data["events"]
        if e["k"] == "reveni.returns" and require_ts(e["at"]) > clock
    )
    first_at = events[0][0]
    due = {rid for at, rid in events if at <= first_at + timedelta(seconds=1)}
    receiver.clear()
    assert sims.advance(seconds=(first_at - clock).total_seconds() + 1)["events_applied"] >= len(due)
    arrived = receiver.wait(len(due))
    assert {r.json()["data"]["resource_id"] for r in arrived} == due
    for received in arrived:
        assert_genuine_reveni(received, "return.updated", received.json()["data"]["resource_id"])

    # an API write (partial_validate)
    receiver.clear()
    item = new["return_items"][0]["item_id"]
    answer = session.post(
        f"{sims.reveni}/returns/{new['id']}/partial_validate",
        json={"items": [{"item_id": item, "quantity": 1, "status": "accepted"}]},
        timeout=10,
    )
    assert answer.status_code == 200
    assert_genuine_reveni(receiver.wait(1)[0], "return.updated", new["id"])

    # a subscription to return.updated only is not sent return.created; a deleted one is sent nothing
    assert session.delete(f"{sims.reveni}/webhooks/{hook['id']}", timeout=10).status_code == 200
    assert session.delete(f"{sims.reveni}/webhooks/{hook['id']}", timeout=10).status_code == 404
    only_updates = session.post(
        f"{sims.reveni}/webhooks", json={"event_types": ["return.updated"], "url": f"{receiver.url}/u"}, timeout=10
    )
    assert only_updates.status_code == 201
    receiver.clear()
    other = {**new, "id": uuid.uuid4().hex}
    sims.upsert("reveni.returns", other)
    sims.upsert("reveni.returns", {**other, "status": "shipped"})
    arrived = receiver.wait(1)
    time.sleep(0.5)
    assert [(r.path, r.json()["event"]) for r in receiver.requests] == [("/u", "return.updated")]
    bad = session.post(f"{sims.reveni}/webhooks", json={"event_types": ["nope"], "url": receiver.url}, timeout=10)
    assert bad.status_code == 400
    assert "detail" in bad.json()


def test_reveni_retries_a_failed_delivery_with_the_same_event_signed_afresh(sims, receiver, data) -> None:
    behaviour(sims, "webhooks", reveni_retry_delays_seconds=[0.3, 0.3])
    requests.post(f"{sims.admin}/webhooks", json={"service": "reveni", "url": receiver.url}, timeout=10)
    receiver.statuses.extend([503, 500])
    record = data["reveni.returns"][1]
    sims.upsert("reveni.returns", {**record, "status": "received"})
    first, second, third = receiver.wait(3)
    assert first.body == second.body == third.body, "the same event, byte for byte"
    assert all(reveni_signature_ok(r)[0] for r in (first, second, third))
    assert first.headers["X-REVENI-SIGNATURE"] != third.headers["X-REVENI-SIGNATURE"], "re-signed when sent again"
    assert third.at - first.at >= 0.55
    log = webhook_log(sims, service="reveni")
    assert [(e["attempt"], e["status"], e["ok"]) for e in log] == [(1, 503, False), (2, 500, False), (3, 200, True)]
    time.sleep(0.5)
    assert len(receiver.requests) == 3, "no retry after a success"


# --- Cin7 Core ---------------------------------------------------------------------------------------------------


def _invoiced(data: dict) -> dict:
    """A sale whose invoice is authorised (PAID or AUTHORISED)."""
    return next(s for s in data["cin7.sales"] if s["Invoices"] and s["Invoices"][0]["Status"] in {"PAID", "AUTHORISED"})


def _creditable(data: dict) -> dict:
    """An Advanced Sale with a PAID invoice (more than one credit note is allowed)."""
    return next(
        s
        for s in data["cin7.sales"]
        if s["Type"] == "Advanced Sale" and s["Invoices"] and s["Invoices"][0]["Status"] in {"PAID", "AUTHORISED"}
    )


def test_cin7_webhook_crud_as_the_blueprint_describes(sims, receiver) -> None:
    session = sims.cin7_session()
    body = {
        "Type": "Sale/CreditNoteAuthorised",
        "IsActive": True,
        "ExternalURL": f"{receiver.url}/cin7",
        "ExternalAuthorizationType": "bearerauth",
        "ExternalBearerToken": "tok",
        "ExternalHeaders": [{"Key": "X-Shop", "Value": "one"}],
    }
    made = session.post(f"{sims.cin7}/webhooks", json=body, timeout=10)
    assert made.status_code == 200
    (hook,) = made.json()["Webhooks"]
    assert set(hook) == {
        "ID",
        "Type",
        "Name",
        "IsActive",
        "ExternalURL",
        "ExternalAuthorizationType",
        "ExternalUserName",
        "ExternalPassword",
        "ExternalBearerToken",
        "ExternalHeaders",
    }
    assert hook["IsActive"] is True
    assert hook["ExternalHeaders"] == [{"Key": "X-Shop", "Value": "one"}]
    # refused (and not kept): a bearer webhook without its token (L27948), a type not in the list (L27952-L27986)
    assert session.post(f"{sims.cin7}/webhooks", json={**body, "ExternalBearerToken": ""}).status_code == 400
    assert session.post(f"{sims.cin7}/webhooks", json={**body, "Type": "Sale/Nope"}).status_code == 400
    assert len(session.get(f"{sims.cin7}/webhooks", timeout=10).json()["Webhooks"]) == 1
    for _ in range(4):  # apib L27916: at most 5 of one type
        assert session.post(f"{sims.cin7}/webhooks", json=body, timeout=10).status_code == 200
    sixth = session.post(f"{sims.cin7}/webhooks", json=body, timeout=10)
    assert sixth.status_code == 400
    assert sixth.json()[0]["ErrorCode"] == 400
    listed = session.get(f"{sims.cin7}/webhooks", timeout=10).json()["Webhooks"]
    assert len(listed) == 5
    changed = session.put(
        f"{sims.cin7}/webhooks",
        json={"ID": hook["ID"], "IsActive": False, "ExternalAuthorizationType": "basicauth"},
        timeout=10,
    )
    assert changed.status_code == 400, "basicauth needs ExternalUserName and ExternalPassword"
    changed = session.put(f"{sims.cin7}/webhooks", json={"ID": hook["ID"], "IsActive": False}, timeout=10)
    assert changed.json()["Webhooks"][0]["IsActive"] is False
    gone = session.delete(f"{sims.cin7}/webhooks", params={"ID": hook["ID"]}, timeout=10)
    assert gone.json() == {"Webhooks": []}
    assert len(session.get(f"{sims.cin7}/webhooks", timeout=10).json()["Webhooks"]) == 4
    assert session.delete(f"{sims.cin7}/webhooks", params={"ID": hook["ID"]}, timeout=10).status_code == 400


def test_cin7_sends_credit_note_invoice_and_stock_events_with_the_subscriptions_auth(sims, receiver, data) -> None:
    session = sims.cin7_session()
    for webhook_type, auth in (
        ("Sale/CreditNoteAuthorised", {"ExternalAuthorizationType": "bearerauth", "ExternalBearerToken": "tok"}),
        (
            "Sale/InvoiceAuthorised",
            {"ExternalAuthorizationType": "basicauth", "ExternalUserName": "u", "ExternalPassword": "p"},
        ),
        ("Stock/AvailableStockLevelChanged", {"ExternalAuthorizationType": "noauth"}),
    ):
        body = {"Type": webhook_type, "IsActive": True, "ExternalURL": f"{receiver.url}/cin7", **auth}
        body["ExternalHeaders"] = [{"Key": "X-Shop", "Value": "one"}]
        assert session.post(f"{sims.cin7}/webhooks", json=body, timeout=10).status_code == 200

    # our own write (the pipeline's credit note) is echoed (cin7_core_api.md §4.11)
    sale = _creditable(data)
    line = sale["Invoices"][0]["Lines"][0]
    note = {
        "SaleID": sale["ID"],
        "TaskID": ZERO_GUID,
        "CreditNoteInvoiceNumber": sale["Invoices"][0]["InvoiceNumber"],
        "Memo": "webhook test",
        "Status": "AUTHORISED",
        "CreditNoteDate": "2026-01-01T00:00:00",
        "Lines": [{"ProductID": line["ProductID"], "Quantity": 1, "Price": line["Price"], "Tax": 0, "Total": 0}],
        "Restock": [{"ProductID": line["ProductID"], "Location": sale["Location"], "Quantity": 1}],
    }
    note["Lines"][0]["Total"] = line["Price"]
    answer = sims.by_hand("cin7", "sale/creditnote", note)
    written = answer["CreditNotes"][0]
    credit, stock = (
        receiver.wait(1, where=lambda r: isinstance(r.json(), dict))[0],
        receiver.wait(1, where=lambda r: isinstance(r.json(), list))[0],
    )
    assert credit.json() == {
        "SaleID": sale["ID"],
        "SaleOrderNumber": sale["Order"]["SaleOrderNumber"],
        "CreditNoteNumber": written["CreditNoteNumber"],
        "TaskID": written["TaskID"],
        "CustomerName": sale["Customer"],
        "CustomerContactName": None,
        "CustomerContactEmail": None,
        "EventType": "Sale/CreditNoteAuthorised",
    }
    assert credit.headers["Authorization"] == "Bearer tok"
    assert credit.headers["X-Shop"] == "one"
    assert "X-REVENI-SIGNATURE" not in credit.headers, "Cin7 Core signs nothing"
    (row,) = stock.json()  # a bare array (apib L28454)
    assert (row["ID"], row["Location"], row["MaxRows"]) == (line["ProductID"], sale["Location"], 1)
    served = session.get(
        f"{sims.cin7}/ref/productavailability", params={"Location": sale["Location"], "Limit": 1000}, timeout=10
    ).json()["ProductAvailabilityList"]
    assert row["OnHand"] == next(r["OnHand"] for r in served if r["ID"] == line["ProductID"])
    assert "Authorization" not in stock.headers, "noauth"

    # a sale whose invoice is authorised, from /_sim/upsert
    receiver.clear()
    new_sale = {**copy.deepcopy(sale), "ID": str(uuid.uuid4()), "CreditNotes": []}
    sims.upsert("cin7.sales", new_sale)
    (invoice,) = receiver.wait(1)
    assert invoice.json() == {
        "SaleTaskID": new_sale["ID"],
        "TenantID": CREDS.cin7_account_id,
        "OrderNumber": sale["Order"]["SaleOrderNumber"],
        "InvoiceNumber": sale["Invoices"][0]["InvoiceNumber"],
        "CustomerName": sale["Customer"],
        "CustomerContactName": None,
        "CustomerContactEmail": None,
        "EventType": "Sale/InvoiceAuthorised",
    }
    assert invoice.headers["Authorization"] == "Basic " + base64.b64encode(b"u:p").decode()
    sims.upsert("cin7.sales", {**new_sale, "Memo": "changed"})  # nothing became authorised: nothing sent
    time.sleep(0.5)
    assert len(receiver.requests) == 1


def test_a_failing_receiver_sees_the_scaled_cin7_schedule_then_the_webhook_is_deactivated(sims, receiver, data) -> None:
    scale = 0.001  # the documented 1, +5, +10, +15, +20, +25 minutes in 0.06 s, then 0.3, 0.6, 0.9, 1.2, 1.5 s
    behaviour(sims, "webhooks", time_scale=scale, cin7_first_delay_seconds=60)
    requests.post(
        f"{sims.admin}/webhooks",
        json={"service": "cin7", "type": "Sale/InvoiceAuthorised", "url": receiver.url, "bearer_token": "tok"},
        timeout=10,
    ).raise_for_status()
    receiver.statuses.extend([500] * 10)
    sale = {**copy.deepcopy(_invoiced(data)), "ID": str(uuid.uuid4())}
    sent = time.monotonic()
    sims.upsert("cin7.sales", sale)
    attempts = receiver.wait(6, timeout=30)
    gaps = [b.at - a.at for a, b in zip([None, *attempts], attempts, strict=False) if a is not None]
    assert attempts[0].at - sent >= 60 * scale * 0.9
    for gap, minutes in zip(gaps, (5, 10, 15, 20, 25), strict=True):
        assert gap >= minutes * 60 * scale * 0.9, (gaps, minutes)
        assert gap < minutes * 60 * scale + 1.0, (gaps, minutes)
    assert len({r.body for r in attempts}) == 1
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        (hook,) = sims.cin7_session().get(f"{sims.cin7}/webhooks", timeout=10).json()["Webhooks"]
        if not hook["IsActive"]:
            break
        time.sleep(0.05)
    assert hook["IsActive"] is False, "apib L27933: deactivated after the 6th failure"
    log = webhook_log(sims, service="cin7")
    assert [(e["attempt"], e["status"]) for e in log] == [(n, 500) for n in range(1, 7)]
    time.sleep(0.5)
    assert len(receiver.requests) == 6, "no 7th attempt"

    # inactive: a later event is not sent; re-activated (PUT): it is
    sims.upsert("cin7.sales", {**sale, "ID": str(uuid.uuid4())})
    time.sleep(0.5)
    assert len(receiver.requests) == 6
    receiver.statuses.clear()
    sims.cin7_session().put(f"{sims.cin7}/webhooks", json={"ID": hook["ID"], "IsActive": True}, timeout=10)
    sims.upsert("cin7.sales", {**sale, "ID": str(uuid.uuid4())})
    receiver.wait(7)


# --- misbehaving deliveries -----------------------------------------------------------------------------------


def test_forged_replayed_stale_and_oversized_deliveries_come_as_asked(sims, receiver, data) -> None:
    requests.post(f"{sims.admin}/webhooks", json={"service": "reveni", "url": receiver.url}, timeout=10)
    asked = requests.post(
        f"{sims.admin}/webhooks/misbehave",
        json={"forged": 1, "replayed": 1, "stale": 1, "oversized": 1, "service": "reveni"},
        timeout=10,
    ).json()
    assert asked["left"]["reveni"] == {"forged": 1, "replayed": 1, "stale": 1, "oversized": 1}
    record = {**copy.deepcopy(data["reveni.returns"][2]), "status": "received"}
    sims.upsert("reveni.returns", record)
    arrived = receiver.wait(5)
    time.sleep(0.3)
    assert len(receiver.requests) == 5
    kinds = {e["body_sha256"] + e["kind"]: e for e in webhook_log(sims)}
    by_kind: dict[str, list[Received]] = {}
    for received in arrived:
        digest = hashlib.sha256(received.body).hexdigest()
        kind = next(e["kind"] for key, e in kinds.items() if key.startswith(digest))
        by_kind.setdefault(kind, []).append(received)
    genuine = by_kind["delivery"][0]
    assert reveni_signature_ok(genuine)[0]
    (forged,) = by_kind["forged"]
    assert not reveni_signature_ok(forged)[0], "forged: the signature does not verify with the API key"
    assert forged.json()["id"] != genuine.json()["id"]
    (stale,) = by_kind["stale"]
    ok, stamp = reveni_signature_ok(stale)
    assert ok
    assert time.time() - stamp > TOLERANCE, "stale: t older than the tolerance, signed correctly"
    (oversized,) = by_kind["oversized"]
    assert len(oversized.body) > 1_000_000
    assert reveni_signature_ok(oversized)[0]
    # replayed: the same bytes and the same header again, after the genuine one
    replays = [r for r in arrived if r.body == genuine.body]
    assert len(replays) == 2
    assert replays[0].headers["X-REVENI-SIGNATURE"] == replays[1].headers["X-REVENI-SIGNATURE"]
    assert replays[1].at >= replays[0].at
    assert {e["kind"] for e in webhook_log(sims)} == {"delivery", "forged", "replayed", "stale", "oversized"}

    # the counters are spent: the next change is delivered once
    receiver.clear()
    sims.upsert("reveni.returns", {**record, "status": "accepted"})
    receiver.wait(1)
    time.sleep(0.3)
    assert len(receiver.requests) == 1

    # Cin7 Core: a forged delivery carries wrong credentials, an oversized one the right ones
    requests.post(
        f"{sims.admin}/webhooks",
        json={"service": "cin7", "type": "Sale/InvoiceAuthorised", "url": receiver.url, "bearer_token": "tok"},
        timeout=10,
    ).raise_for_status()
    requests.post(f"{sims.admin}/webhooks/misbehave", json={"forged": 1, "oversized": 1, "service": "cin7"}, timeout=10)
    receiver.clear()
    sims.upsert("cin7.sales", {**copy.deepcopy(_invoiced(data)), "ID": str(uuid.uuid4())})
    arrived = receiver.wait(3)
    auth = sorted((r.headers["Authorization"], len(r.body) > 1_000_000) for r in arrived)
    assert auth == [("Bearer forged-token", False), ("Bearer tok", False), ("Bearer tok", True)]


# --- the Reveni list endpoint switch ---------------------------------------------------------------------------


def test_the_reveni_list_endpoint_switched_off_answers_404_while_get_by_id_works(sims, data) -> None:
    session = sims.reveni_session()
    return_id = data["reveni.returns"][0]["id"]
    assert session.get(f"{sims.reveni}/returns", timeout=10).status_code == 200
    behaviour(sims, "reveni", list_endpoint=False)
    listed = session.get(f"{sims.reveni}/returns", params={"page_size": 10}, timeout=10)
    assert listed.status_code == 404
    assert listed.json() == {"detail": "Not found."}
    one = session.get(f"{sims.reveni}/returns/{return_id}", timeout=10)
    assert one.status_code == 200
    assert one.json()["id"] == return_id


def test_the_command_line_sets_the_defaults_every_load_returns_to(tmp_path, small_scenario, receiver) -> None:
    sims = Simulators(free_port(), free_port(), free_port())
    cmd = [sys.executable, "-m", "recon_simulators", "--reveni-port", str(sims.reveni_port)]
    cmd += ["--cin7-port", str(sims.cin7_port), "--sitoo-port", str(sims.sitoo_port)]
    cmd += ["--reveni-list-endpoint", "off", "--webhook-time-scale", "0.5", "--webhook-first-delay", "0"]
    with (tmp_path / "sims.log").open("wb") as log:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        proc = subprocess.Popen(cmd, cwd=Path(ROOT), env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if requests.get(f"{sims.admin}/health", timeout=1).ok:
                        break
                except requests.ConnectionError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
            sims.load(small_scenario)
            session = sims.reveni_session()
            assert session.get(f"{sims.reveni}/returns", timeout=10).status_code == 404
            first = next(r for k, r in read_header_and_records(small_scenario)[1] if k == "reveni.returns")
            assert session.get(f"{sims.reveni}/returns/{first['id']}", timeout=10).status_code == 200
            settings = requests.get(f"{sims.admin}/behaviour/webhooks", timeout=10).json()
            assert (settings["time_scale"], settings["reveni_first_delay_seconds"]) == (0.5, 0)
            requests.post(f"{sims.admin}/webhooks", json={"service": "reveni", "url": receiver.url}, timeout=10)
            sims.upsert("reveni.returns", {**first, "status": "received"})
            assert assert_genuine_reveni(receiver.wait(1)[0], "return.updated", first["id"])
        finally:
            proc.terminate()
            proc.wait(10)


# --- the new endpoints keep to the contract ---------------------------------------------------------------------


def test_the_webhook_endpoints_keep_to_the_contract(sims, receiver) -> None:
    sims.journal(enabled=True, clear=True)
    try:
        reveni, cin7 = sims.reveni_session(), sims.cin7_session()
        made = reveni.post(
            f"{sims.reveni}/webhooks", json={"event_types": ["return.updated"], "url": receiver.url}, timeout=10
        ).json()
        reveni.delete(f"{sims.reveni}/webhooks/{made['id']}", timeout=10)
        reveni.delete(f"{sims.reveni}/webhooks/{made['id']}", timeout=10)  # a 404
        body = {
            "Type": "Stock/AvailableStockLevelChanged",
            "IsActive": True,
            "ExternalURL": receiver.url,
            "ExternalAuthorizationType": "basicauth",
            "ExternalUserName": "u",
            "ExternalPassword": "p",
            "ExternalHeaders": [{"Key": "X-Shop", "Value": "one"}],
        }
        hook = cin7.post(f"{sims.cin7}/webhooks", json=body, timeout=10).json()["Webhooks"][0]
        cin7.get(f"{sims.cin7}/webhooks", timeout=10)
        cin7.put(f"{sims.cin7}/webhooks", json={**hook, "IsActive": False}, timeout=10)
        cin7.delete(f"{sims.cin7}/webhooks", params={"ID": hook["ID"]}, timeout=10)
        records = sims.journal_records()
    finally:
        sims.journal(enabled=False, clear=True)
    endpoints = {(r["service"], r["method"], r["endpoint"], r["status"]) for r in records}
    assert len(endpoints) == 7, endpoints
    found = check_all(records)
    assert not found, f"{len(found)} contract violations:\n{report(found)}"
