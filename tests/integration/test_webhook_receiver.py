"""The webhook receiver over real HTTP: ``python -m returns_recon.webhooks`` (uvicorn) on a free port, against a
migrated embedded warehouse, fed signed, forged, stale, replayed and oversized deliveries; and the same app loaded
by Airflow's own API server app factory from plugins/."""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests

from local_stack.warehouse import EmbeddedWarehouse
from tests.fixtures import warehouse as fixtures

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
REVENI_KEY = f"reveni-test-key-{uuid.uuid4().hex}"
CIN7_TOKEN = f"cin7-test-token-{uuid.uuid4().hex}"
LIMIT = 65_536
REVENI = "/returns-recon/webhooks/reveni"
CIN7 = "/returns-recon/webhooks/cin7"
# personal data as the vendors send it: Reveni's return (data.object) and Cin7 Core's sale events
PERSONAL = ("Jane Citizen", "jane.citizen@example.com", "12 Station Road", "+44 7700 900123", "Sheree Bond")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def reveni_event(event_id: str | None = None, return_id: str = "4e26c9f08f2a468fabc16af12ae0209b") -> bytes:
    """An envelope as Reveni documents it (reference/reveni_api.md §1), the return with its customer in it."""
    envelope = {
        "id": event_id or uuid.uuid4().hex,
        "event": "return.updated",
        "created": int(time.time()),
        "data": {
            "resource": "return",
            "resource_id": return_id,
            "status": "received",
            "amount": "39.9000",
            "currency": "EUR",
            "object": {
                "id": return_id,
                "status": "received",
                "amount": "39.9000",
                "customer": {"name": "Jane Citizen", "email": "jane.citizen@example.com", "phone": "+44 7700 900123"},
                "customer_email": "jane.citizen@example.com",
                "shipping_address": {"line1": "12 Station Road", "city": "London", "postcode": "N1 9AA"},
                "order": {"id": "o1", "external_id": "100231", "email": "jane.citizen@example.com"},
                "return_items": [{"item_id": "i1", "sku": "14785-5", "quantity": 1, "notes": "Jane Citizen"}],
            },
        },
    }
    return json.dumps(envelope).encode()


def cin7_credit_note(sale_id: str = "91EE7B1D-BD35-4E43-B98A-DB86BE777624") -> bytes:
    """Sale/CreditNoteAuthorised as the vendor blueprint shows it (apib L28095), with its customer fields."""
    return json.dumps(
        {
            "SaleID": sale_id,
            "SaleOrderNumber": "SO-00044",
            "CreditNoteNumber": "CR-00004",
            "TaskID": "5a1c0e3d-8a44-4b7e-9d1e-3f2a6c7b8d90",
            "CustomerName": "Jane Citizen",
            "CustomerContactName": "Sheree Bond",
            "CustomerContactEmail": "jane.citizen@example.com",
            "SaleRepEmail": "rep@example.com",
            "EventType": "Sale/CreditNoteAuthorised",
        }
    ).encode()


def sign(body: bytes, t: str | None = None, key: str = REVENI_KEY) -> dict[str, str]:
    t = t or f"{time.time():.6f}"
    v1 = hmac.new(key.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return {"X-REVENI-SIGNATURE": f"t={t},v1={v1}", "Content-Type": "application/json"}


def bearer(token: str = CIN7_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


@dataclass
class Receiver:
    base: str
    port: int
    db: fixtures.TestDatabase
    log: Path
    answers: list[str] = field(default_factory=list)  # every response's status line, headers and body

    def post(self, path: str, body: Any, headers: dict[str, str]) -> requests.Response:
        response = requests.post(self.base + path, data=body, headers=headers, timeout=30)
        self.answers.append(f"{response.status_code} {dict(response.headers)} {response.text}")
        return response

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def rows(self) -> list[dict[str, Any]]:
        with self.db.connect() as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
            cur.execute("SELECT * FROM raw.webhook_inbox ORDER BY inbox_id")
            return cur.fetchall()

    def rejections(self) -> dict[tuple[str, str], int]:
        with self.db.connect() as conn:
            rows = conn.execute("SELECT source, reason, rejected FROM ops.webhook_rejections").fetchall()
        return {(source, reason): int(n) for source, reason, n in rows}


@pytest.fixture(scope="module")
def module_db(embedded_server: EmbeddedWarehouse) -> Iterator[fixtures.TestDatabase]:
    """One migrated database for the module's server (each test starts from empty tables: ``receiver``)."""
    with fixtures.new_database(embedded_server, migrated=True) as db:
        yield db


def receiver_env(db: fixtures.TestDatabase, home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("_AIRFLOW_PROCESS_CONTEXT", None)
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW_CONN_RECON_WAREHOUSE": db.airflow_conn_json(),
            "AIRFLOW_CONN_REVENI_DEFAULT": json.dumps(
                {"conn_type": "http", "host": "127.0.0.1", "password": REVENI_KEY, "extra": {"store_id": "store-1"}}
            ),
            "AIRFLOW_CONN_CIN7_WEBHOOK": json.dumps({"conn_type": "http", "password": CIN7_TOKEN}),
            "RECON_WEBHOOK_MAX_BODY_BYTES": str(LIMIT),
            "RECON_WEBHOOK_TOLERANCE_SECONDS": "300",
        }
    )
    return env


@pytest.fixture(scope="module")
def server(module_db: fixtures.TestDatabase, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Receiver]:
    home = tmp_path_factory.mktemp("webhooks")
    port = _free_port()
    log = home / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "returns_recon.webhooks", "--host", "127.0.0.1", "--port", str(port)],
            env=receiver_env(module_db, home / "airflow"),
            cwd=home,  # no .env here: the environment only
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                pytest.fail(f"the receiver exited ({process.returncode}):\n{log.read_text()}")
            try:
                requests.get(f"http://127.0.0.1:{port}/", timeout=2)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    pytest.fail(f"the receiver did not start:\n{log.read_text()}")
                time.sleep(0.2)
        yield Receiver(f"http://127.0.0.1:{port}", port, module_db, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def receiver(server: Receiver) -> Receiver:
    with server.db.connect() as conn:
        conn.execute("TRUNCATE raw.webhook_inbox, ops.webhook_rejections")
    return server


def test_a_signed_reveni_event_is_stored_once_redacted_and_a_replay_only_counts(receiver: Receiver) -> None:
    body = reveni_event("c6927a921708466da5ed2b4ebadf0bdf")
    headers = sign(body)
    first = receiver.post(REVENI, body, headers)
    assert (first.status_code, first.json()) == (200, {"accepted": True, "duplicate": False})
    (row,) = receiver.rows()
    assert (row["source"], row["event_id"], row["event_type"]) == (
        "reveni",
        "c6927a921708466da5ed2b4ebadf0bdf",
        "return.updated",
    )
    assert row["resource_ids"] == ["4e26c9f08f2a468fabc16af12ae0209b"]
    assert abs(row["signed_at"].timestamp() - float(headers["X-REVENI-SIGNATURE"][2:].split(",")[0])) < 1e-5
    assert row["deliveries"] == 1
    assert row["processed_at"] is None
    stored = json.dumps(row["payload"])
    for personal in PERSONAL:
        assert personal not in stored
    assert row["payload"]["data"]["object"]["order"] == {"id": "o1", "external_id": "100231"}
    assert row["payload"]["data"]["object"]["return_items"] == [{"item_id": "i1", "sku": "14785-5", "quantity": 1}]
    assert row["payload"]["data"]["resource_id"] == "4e26c9f08f2a468fabc16af12ae0209b"

    with receiver.db.connect() as conn:  # the events DAG has processed it
        conn.execute("UPDATE raw.webhook_inbox SET processed_at = now(), processed_by_run = 'run-1'")
    again = receiver.post(REVENI, body, headers)  # the same delivery, replayed within the tolerance
    assert (again.status_code, again.json()) == (200, {"accepted": True, "duplicate": True})
    (replayed,) = receiver.rows()
    assert replayed["inbox_id"] == row["inbox_id"]
    assert replayed["deliveries"] == 2
    assert replayed["last_delivered_at"] > row["last_delivered_at"]
    assert (replayed["processed_at"], replayed["processed_by_run"]) != (None, None), "not pending again"
    assert replayed["payload"] == row["payload"]
    assert receiver.rejections() == {}


def test_a_forged_or_unsigned_reveni_delivery_is_refused_counted_and_not_stored(receiver: Receiver) -> None:
    body = reveni_event()
    forged = receiver.post(REVENI, body, sign(body, key="a-guessed-key"))
    assert (forged.status_code, forged.json()) == (401, {"accepted": False, "error": "unverified"})
    tampered = sign(body)
    assert receiver.post(REVENI, body.replace(b"39.9000", b"99.9000"), tampered).status_code == 401
    assert receiver.post(REVENI, body, {"Content-Type": "application/json"}).status_code == 401
    assert receiver.post(REVENI, body, {"X-REVENI-SIGNATURE": "t=now,v1=abc"}).status_code == 401
    assert receiver.rows() == []
    assert receiver.rejections() == {
        ("reveni", "bad_signature"): 2,
        ("reveni", "missing_signature"): 1,
        ("reveni", "malformed_signature"): 1,
    }


def test_a_stale_or_future_reveni_signature_is_refused(receiver: Receiver) -> None:
    body = reveni_event()
    assert receiver.post(REVENI, body, sign(body, t=f"{time.time() - 301:.6f}")).status_code == 401
    assert receiver.post(REVENI, body, sign(body, t=str(int(time.time()) + 600))).status_code == 401
    assert receiver.rows() == []
    assert receiver.rejections() == {("reveni", "stale"): 2}
    assert receiver.post(REVENI, body, sign(body, t=f"{time.time() - 250:.6f}")).status_code == 200


def test_an_oversized_body_is_refused_unread_and_not_stored(receiver: Receiver) -> None:
    body = reveni_event()
    big = body[:-1] + b', "padding": "' + b"x" * LIMIT + b'"}'
    assert json.loads(big)
    response = receiver.post(REVENI, big, sign(big))  # authentic, but over the limit
    assert (response.status_code, response.json()) == (413, {"accepted": False, "error": "too large"})

    def chunks() -> Iterator[bytes]:  # no Content-Length: cut off once past the limit
        for start in range(0, len(big), 8192):
            yield big[start : start + 8192]

    assert receiver.post(REVENI, chunks(), sign(big)).status_code == 413

    # a declared Content-Length over the limit is answered before any of the body is sent
    conn = http.client.HTTPConnection("127.0.0.1", receiver.port, timeout=10)
    conn.putrequest("POST", REVENI)
    conn.putheader("Content-Length", str(50_000_000))
    conn.putheader("X-REVENI-SIGNATURE", sign(b"")["X-REVENI-SIGNATURE"])
    conn.endheaders()
    started = time.monotonic()
    early = conn.getresponse()  # the server waiting for 50 MB would time out here
    assert early.status == 413
    assert time.monotonic() - started < 5
    conn.close()

    huge_cin7 = b"[" + b'{"SKU": "x"},' * (LIMIT // 13) + b'{"SKU": "x"}]'
    assert receiver.post(CIN7, huge_cin7, bearer()).status_code == 413
    assert receiver.rows() == []
    assert receiver.rejections() == {("reveni", "too_large"): 3, ("cin7", "too_large"): 1}


def test_cin7_with_the_right_bearer_token_is_stored_by_the_hash_of_its_body(receiver: Receiver) -> None:
    body = cin7_credit_note()
    response = receiver.post(CIN7, body, bearer())
    assert (response.status_code, response.json()) == (200, {"accepted": True, "duplicate": False})
    stock = json.dumps(
        [{"ID": "p1", "SKU": "Bread", "Name": "Baked Bread", "Location": "Main Warehouse", "OnHand": 497.0}]
    ).encode()
    assert receiver.post(CIN7, stock, bearer()).json() == {"accepted": True, "duplicate": False}
    # Cin7 Core's retry of the same delivery: the same body
    assert receiver.post(CIN7, body, bearer()).json() == {"accepted": True, "duplicate": True}
    sale, stock_row = receiver.rows()
    assert sale["event_id"] == hashlib.sha256(body).hexdigest()
    assert (sale["source"], sale["event_type"], sale["deliveries"]) == ("cin7", "Sale/CreditNoteAuthorised", 2)
    assert sale["resource_ids"] == ["91EE7B1D-BD35-4E43-B98A-DB86BE777624"]
    assert sale["signed_at"] is None
    assert sale["payload"] == {
        "SaleID": "91EE7B1D-BD35-4E43-B98A-DB86BE777624",
        "SaleOrderNumber": "SO-00044",
        "CreditNoteNumber": "CR-00004",
        "TaskID": "5a1c0e3d-8a44-4b7e-9d1e-3f2a6c7b8d90",
        "EventType": "Sale/CreditNoteAuthorised",
    }
    assert stock_row["event_id"] == hashlib.sha256(stock).hexdigest()
    assert (stock_row["event_type"], stock_row["resource_ids"]) == ("Stock/AvailableStockLevelChanged", [])
    assert stock_row["payload"] == [{"ID": "p1", "SKU": "Bread", "Location": "Main Warehouse", "OnHand": 497.0}]
    assert receiver.rejections() == {}


def test_cin7_with_a_wrong_or_missing_token_is_refused(receiver: Receiver) -> None:
    body = cin7_credit_note()
    assert receiver.post(CIN7, body, bearer("not-the-token")).status_code == 401
    assert receiver.post(CIN7, body, {"Content-Type": "application/json"}).status_code == 401
    basic = base64.b64encode(f"cin7:{CIN7_TOKEN}".encode()).decode()
    assert receiver.post(CIN7, body, {"Authorization": f"Basic {basic}"}).status_code == 401  # bearer configured
    # a secret in the URL is never read (and would end up in access logs)
    assert receiver.post(f"{CIN7}?token={CIN7_TOKEN}", body, {}).status_code == 401
    assert receiver.rows() == []
    assert receiver.rejections() == {("cin7", "bad_auth"): 2, ("cin7", "missing_auth"): 2}


def test_an_authentic_but_unreadable_body_is_a_400_and_not_stored(receiver: Receiver) -> None:
    for body in (b"not json", b'"a string"', json.dumps({"event": "return.updated"}).encode()):  # the last: no id
        assert receiver.post(REVENI, body, sign(body)).status_code == 400
    assert receiver.post(CIN7, b"\xff\xfe", bearer()).status_code == 400
    assert receiver.rows() == []
    assert receiver.rejections() == {("reveni", "unreadable"): 3, ("cin7", "unreadable"): 1}


def test_secrets_and_personal_data_are_never_in_answers_or_logs(receiver: Receiver) -> None:
    body = reveni_event()
    receiver.post(REVENI, body, sign(body))
    receiver.post(REVENI, body, sign(body, key="wrong"))
    receiver.post(CIN7, cin7_credit_note(), bearer())
    receiver.post(CIN7, cin7_credit_note(), bearer("wrong-token"))
    output = receiver.output()
    # the log is there and says what happened (so its silence below means something)
    assert "reveni return.updated event" in output
    assert "refused (401 bad_signature)" in output
    assert "refused (401 bad_auth)" in output
    assert f"POST {REVENI} HTTP/1.1" in output  # uvicorn's access log
    everything = output + "\n".join(receiver.answers)
    # except where a test sent the token in the URL itself: the access log records query strings, which is
    # why the receiver reads nothing from them (test_cin7_with_a_wrong_or_missing_token_is_refused)
    everything = everything.replace(f"{CIN7}?token={CIN7_TOKEN}", "a token sent in the URL")
    for secret in (REVENI_KEY, CIN7_TOKEN, receiver.db.password):
        assert secret not in everything
    for personal in PERSONAL:
        assert personal not in everything


PLUGIN_SCRIPT = r"""
import json, sys
from fastapi.testclient import TestClient
from airflow import plugins_manager
from airflow.api_fastapi.app import create_app

apps, _ = plugins_manager.get_fastapi_plugins()
mounted = [(a["name"], a["url_prefix"]) for a in apps]
body, headers = json.loads(sys.argv[1]).encode(), json.loads(sys.argv[2])
app = create_app()
with TestClient(app) as client:  # enters the lifespans, as the API server does
    good = client.post("/returns-recon/webhooks/reveni", content=body, headers=headers)
    forged = client.post(
        "/returns-recon/webhooks/reveni", content=body, headers={"X-REVENI-SIGNATURE": "t=1,v1=" + "0" * 64}
    )
    api = client.get("/api/v2/version")
print("RESULT " + json.dumps({"mounted": mounted, "good": [good.status_code, good.json()],
                              "forged": [forged.status_code, forged.json()], "api": api.status_code}))
"""


def test_airflow_api_server_loads_the_plugin_and_routes_to_the_receiver(
    module_db: fixtures.TestDatabase, tmp_path: Path
) -> None:
    with module_db.connect() as conn:
        conn.execute("TRUNCATE raw.webhook_inbox, ops.webhook_rejections")
    env = receiver_env(module_db, tmp_path / "airflow")
    env.update(
        {
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__API_AUTH__JWT_SECRET": uuid.uuid4().hex,
            "_AIRFLOW_PROCESS_CONTEXT": "server",
        }
    )
    body = reveni_event("plugin-event-1")
    done = subprocess.run(
        [sys.executable, "-c", PLUGIN_SCRIPT, json.dumps(body.decode()), json.dumps(sign(body))],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (line,) = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    result = json.loads(line.removeprefix("RESULT "))
    assert ["returns-recon webhooks", "/returns-recon"] in result["mounted"]
    assert result["good"] == [200, {"accepted": True, "duplicate": False}]
    assert result["forged"] == [401, {"accepted": False, "error": "unverified"}]
    assert result["api"] == 200  # Airflow's own API still answers beside it
    with module_db.connect() as conn:
        assert conn.execute("SELECT event_id FROM raw.webhook_inbox").fetchall() == [("plugin-event-1",)]
        assert conn.execute("SELECT reason, rejected FROM ops.webhook_rejections").fetchall() == [("bad_signature", 1)]
    assert REVENI_KEY not in done.stdout + done.stderr
