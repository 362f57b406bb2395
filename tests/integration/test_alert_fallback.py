"""An alert gets through when mail is what is down (issue 16, item 10).

SMTP is a closed port on 127.0.0.1; the second channel is the http provider's ``HttpNotifier`` through the
connection named by ``RECON_ALERT_FALLBACK_CONN_ID``, received here by a real HTTP server on 127.0.0.1.
The digest task fails visibly (its reason names the SMTP host and port and the error), the fallback
receives the alerts without a secret in them, and once SMTP is back the digests go out exactly once."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psycopg
import pytest
from aiosmtpd.controller import Controller

from tests.fixtures.simulators import free_port
from tests.fixtures.smtp import _Keep

pytestmark = pytest.mark.integration

RECIPIENTS = {
    "finance": ["fin@example.com"],
    "operations": ["ops@example.com"],
    "customer service": ["care@example.com"],
    "data": ["data@example.com"],
}
SMTP_PASSWORD = "smtp-planted-secret-4c1d"
HOOK_TOKEN = "T0K3N-planted-webhook-path"
FALLBACK_PASSWORD = "fallback-planted-secret-9e2b"


class Receiver:
    """A webhook receiver: keeps (path, headers, JSON body) of every POST it gets."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, dict[str, str], dict]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.posts.append((self.path, dict(self.headers), json.loads(body or b"null")))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def bodies(self) -> list[dict]:
        return [body for _, _, body in self.posts]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()
    rec.thread.start()
    yield rec
    rec.server.shutdown()
    rec.server.server_close()


def smtp_conn(port: int) -> str:
    return json.dumps(
        {
            "conn_type": "smtp",
            "host": "127.0.0.1",
            "port": port,
            "login": "recon-mailer",
            "password": SMTP_PASSWORD,
            "extra": {"disable_tls": True, "disable_ssl": True, "from_email": "returns-recon@example.com"},
        }
    )


def fallback_env(rec: Receiver) -> dict[str, str]:
    conn = {
        "conn_type": "http",
        "host": f"http://127.0.0.1:{rec.port}/hooks/{HOOK_TOKEN}",
        "login": "recon",
        "password": FALLBACK_PASSWORD,
        "extra": {"timeout": 10},
    }
    return {
        "RECON_ALERT_FALLBACK_CONN_ID": "recon_alert_fallback",
        "AIRFLOW_CONN_RECON_ALERT_FALLBACK": json.dumps(conn),
    }


def task_state(home: Path, dag_id: str, task_id: str) -> str:
    with sqlite3.connect(home / "airflow.db") as db:
        row = db.execute(
            "SELECT state FROM task_instance WHERE dag_id = ? AND task_id = ? ORDER BY start_date DESC LIMIT 1",
            (dag_id, task_id),
        ).fetchone()
    return row[0]


def assert_no_secret(text: str, *secrets: str) -> None:
    for secret in (SMTP_PASSWORD, HOOK_TOKEN, FALLBACK_PASSWORD, *secrets):
        assert secret not in text


def test_a_failed_run_with_smtp_down_alerts_through_the_fallback_once(run_dag, empty_database, receiver) -> None:
    broken = json.dumps({"conn_type": "http", "host": "127.0.0.1", "login": "90001-1"})
    result = run_dag(
        "returns_recon_hourly",
        AIRFLOW_CONN_RECON_WAREHOUSE=empty_database.airflow_conn_json(),
        AIRFLOW_CONN_SITOO_DEFAULT=broken,
        RECON_EMAIL_RECIPIENTS=json.dumps(RECIPIENTS),
        AIRFLOW_CONN_SMTP_DEFAULT=smtp_conn(free_port()),
        **fallback_env(receiver),
    )
    assert result.returncode != 0
    assert len(receiver.posts) == 1, (result.stdout + result.stderr)[-3000:]
    path, headers, body = receiver.posts[0]
    assert path == f"/hooks/{HOOK_TOKEN}"
    assert headers["Content-Type"] == "application/json"
    assert body["event"] == "dag_run_failed"
    assert body["dag_id"] == "returns_recon_hourly"
    assert "returns_recon_hourly failed" in body["text"]
    assert "preflight.check_connections" in body["text"]
    assert "mail could not be sent" in body["text"]
    assert "127.0.0.1" in body["text"]
    assert_no_secret(json.dumps(body), empty_database.password)


def test_digest_with_smtp_down_fails_visibly_alerts_the_fallback_and_is_sent_later_exactly_once(
    run_dag, airflow_home, empty_database, simulators, small_scenario, receiver, tmp_path
) -> None:
    simulators.load(small_scenario)
    port = free_port()  # nothing listens here yet: SMTP is down
    env = {
        "AIRFLOW_CONN_RECON_WAREHOUSE": empty_database.airflow_conn_json(),
        **simulators.env(),
        "AIRFLOW_CONN_SMTP_DEFAULT": smtp_conn(port),
        "RECON_EMAIL_RECIPIENTS": json.dumps(RECIPIENTS),
        "RECON_FINANCE_ALL_CLEAR_WEEKDAY": "7",
        "RECON_DATA_DOCS_DIR": str(tmp_path / "docs"),
        **fallback_env(receiver),
    }
    down = run_dag("returns_recon_daily", **env)
    output = down.stdout + down.stderr
    assert down.returncode != 0
    # a failed task in the UI, with its reason in the task log: the SMTP host and port, and the error
    assert task_state(airflow_home, "returns_recon_daily", "notify.send_exception_emails") == "failed"
    assert f"SMTP server 127.0.0.1:{port} (connection smtp_default)" in output
    assert "ConnectionRefusedError" in output
    assert_no_secret(output, empty_database.password)
    # the second channel got the digest failure and the run failure, once each
    by_event = {b["event"]: b for b in receiver.bodies()}
    assert sorted(b["event"] for b in receiver.bodies()) == ["dag_run_failed", "digest_not_sent"], output[-3000:]
    digest_alert = by_event["digest_not_sent"]
    assert f"127.0.0.1:{port}" in digest_alert["text"]
    assert "ConnectionRefusedError" in digest_alert["text"]
    for owner in RECIPIENTS:
        assert owner in digest_alert["text"]
    assert "notify.send_exception_emails" in by_event["dag_run_failed"]["text"]
    assert_no_secret(json.dumps(receiver.bodies()), empty_database.password)
    with psycopg.connect(empty_database.url) as conn:
        assert conn.execute("SELECT count(*) FROM recon.email_log WHERE status = 'sent'").fetchone()[0] == 0

    # SMTP is back: the next run sends each owner's digest, and a run after that sends nothing again
    sink = _Keep()
    controller = Controller(sink, hostname="127.0.0.1", port=port, auth_require_tls=False)
    controller.start()
    try:
        extra = {"disable_tls": True, "disable_ssl": True, "from_email": "returns-recon@example.com"}
        env["AIRFLOW_CONN_SMTP_DEFAULT"] = json.dumps(
            {"conn_type": "smtp", "host": "127.0.0.1", "port": port, "extra": extra}
        )
        up = run_dag("returns_recon_daily", **env)
        assert up.returncode == 0, (up.stdout + up.stderr)[-3000:]
        again = run_dag("returns_recon_daily", **env)
        assert again.returncode == 0, (again.stdout + again.stderr)[-3000:]
    finally:
        controller.stop()
    assert sorted(m["To"] for m in sink.messages) == sorted(a[0] for a in RECIPIENTS.values())
    assert len(receiver.posts) == 2  # nothing more on the fallback once mail works
