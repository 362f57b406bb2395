"""An API or warehouse host that does not answer fails the task within its budget (at most a minute),
naming the connection and host:port, never a secret, and is not retried by Airflow (issue 18, item 9).

Real sockets on 127.0.0.1: a closed port (connection refused), a listener whose backlog is full (the
connect times out), and a listener that accepts the connection and never answers (the read, or
PostgreSQL's startup, times out). The budget itself is asserted in tests/unit/test_reachability.py;
here small timeouts keep the tests short, and the attempts made are counted, not timed."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg
import pytest

from returns_recon.apis.client import RetrySettings, TransientError
from returns_recon.errors import NotRetryable
from returns_recon.orchestration.hooks import ReveniHook
from returns_recon.reachability import WAREHOUSE_PAUSES, Unreachable
from tests.fixtures.warehouse import TestDatabase as Database

pytestmark = pytest.mark.integration

SECRET = "never-in-a-message-4f1c"
QUICK = RetrySettings(
    attempts=3, initial_wait=0.05, max_wait=0.1, connect_timeout=0.5, read_timeout=0.5, unreachable_budget=3
)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Silent:
    """Accepts every TCP connection and never sends a byte; counts the connections."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                self.accepted.append(self.sock.accept()[0])
            except OSError:
                return

    def close(self) -> None:
        self.sock.close()
        for conn in self.accepted:
            conn.close()


@pytest.fixture
def silent() -> Iterator[Silent]:
    server = Silent()
    yield server
    server.close()


@pytest.fixture
def backlog_full() -> Iterator[int]:
    """A listener that never accepts, its queue filled: the kernel drops further SYNs (a connect timeout)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):  # the handshake completes (or not) in the background
            filler.connect(("127.0.0.1", port))
        fillers.append(filler)
    yield port
    for sock in (*fillers, listener):
        sock.close()


def reveni_client(monkeypatch: pytest.MonkeyPatch, port: int, retry: RetrySettings = QUICK):
    conn = {
        "conn_type": "http",
        "host": "127.0.0.1",
        "port": port,
        "schema": "http",
        "password": SECRET,
        "extra": {"store_id": "s1"},
    }
    monkeypatch.setenv("AIRFLOW_CONN_REVENI_DEFAULT", json.dumps(conn))
    return ReveniHook(retry=retry).client()


def assert_names_the_connection(err: Unreachable, conn_id: str, port: int, reason: str) -> None:
    message = str(err)
    assert isinstance(err, NotRetryable), "Airflow's retry policy fails a NotRetryable task at once"
    assert f"cannot reach 127.0.0.1:{port} (Airflow connection '{conn_id}')" in message
    assert reason in message
    assert SECRET not in message


def test_an_api_refusing_connections_fails_naming_the_connection_and_host_port(monkeypatch) -> None:
    port = closed_port()
    client = reveni_client(monkeypatch, port)
    with pytest.raises(Unreachable) as caught:
        client.get("returns", {"page_size": 1}, label="probe")
    assert_names_the_connection(caught.value, "reveni_default", port, "connection refused")
    assert client.calls["probe"] == QUICK.no_answer_attempts(connected=False) > 1


def test_an_api_whose_connect_times_out_fails_naming_the_connection(monkeypatch, backlog_full) -> None:
    client = reveni_client(monkeypatch, backlog_full)
    with pytest.raises(Unreachable) as caught:
        client.get("returns", label="probe")
    assert_names_the_connection(caught.value, "reveni_default", backlog_full, "no connection within 0.5 s")
    assert client.calls["probe"] == QUICK.no_answer_attempts(connected=False)


def test_an_api_that_connects_but_never_answers_fails_after_its_read_timeouts(monkeypatch, silent) -> None:
    client = reveni_client(monkeypatch, silent.port)
    with pytest.raises(Unreachable) as caught:
        client.get("returns", label="probe")
    assert_names_the_connection(caught.value, "reveni_default", silent.port, "no answer within 0.5 s")
    assert len(silent.accepted) == QUICK.no_answer_attempts(connected=True) == 2


class AnswersOnceThenHangs(BaseHTTPRequestHandler):
    hang = threading.Event()

    def do_GET(self) -> None:
        if self.server.answered:  # type: ignore[attr-defined]
            self.hang.wait(5)
            return
        self.server.answered = True  # type: ignore[attr-defined]
        body = b"[]"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        return


def test_a_host_that_has_answered_is_reachable_and_a_later_hang_is_retried_as_transient(monkeypatch) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), AnswersOnceThenHangs)
    server.answered = False  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = reveni_client(monkeypatch, server.server_address[1])
        assert client.get("returns", label="first") == []
        with pytest.raises(TransientError) as caught:
            client.get("returns", label="later")
        assert not isinstance(caught.value, NotRetryable), "a glitch once the host answered stays retryable"
        assert client.calls["later"] == QUICK.attempts
    finally:
        AnswersOnceThenHangs.hang.set()
        server.shutdown()
        server.server_close()


def warehouse_conn_json(port: int, **extra) -> str:
    return json.dumps(
        {
            "conn_type": "postgres",
            "host": "127.0.0.1",
            "port": port,
            "login": "recon",
            "password": SECRET,
            "schema": "recon",
            "extra": extra,
        }
    )


def test_a_warehouse_refusing_connections_fails_naming_recon_warehouse_and_host_port(monkeypatch) -> None:
    from returns_recon.orchestration.connections import warehouse_connection

    port = closed_port()
    monkeypatch.setenv("AIRFLOW_CONN_RECON_WAREHOUSE", warehouse_conn_json(port))
    with pytest.raises(Unreachable) as caught, warehouse_connection():
        pass
    assert_names_the_connection(caught.value, "recon_warehouse", port, "connection refused")
    assert f"after {len(WAREHOUSE_PAUSES) + 1} attempts" in str(caught.value)


def test_a_warehouse_that_accepts_but_never_answers_times_out_on_connect(monkeypatch, silent) -> None:
    from returns_recon.orchestration.connections import warehouse_connection

    # the connection's own connect_timeout wins over the default (2 s is libpq's smallest)
    monkeypatch.setenv("AIRFLOW_CONN_RECON_WAREHOUSE", warehouse_conn_json(silent.port, connect_timeout=2))
    with pytest.raises(Unreachable) as caught, warehouse_connection():
        pass
    assert_names_the_connection(caught.value, "recon_warehouse", silent.port, "no answer within the connect timeout")
    assert len(silent.accepted) == len(WAREHOUSE_PAUSES) + 1


def test_a_warehouse_that_answers_with_a_refusal_is_not_called_unreachable(monkeypatch, empty_database) -> None:
    from returns_recon.orchestration.connections import warehouse_connection

    wrong = Database(empty_database.host, empty_database.port, empty_database.user, SECRET, empty_database.dbname)
    monkeypatch.setenv("AIRFLOW_CONN_RECON_WAREHOUSE", wrong.airflow_conn_json())
    with pytest.raises(psycopg.OperationalError) as caught, warehouse_connection():
        pass
    assert not isinstance(caught.value, Unreachable)
    assert "password authentication failed" in str(caught.value)


def test_under_airflow_an_unreachable_api_fails_its_task_at_once_naming_it(run_dag, empty_database) -> None:
    port = closed_port()
    conn = {
        "conn_type": "http",
        "host": "127.0.0.1",
        "port": port,
        "schema": "http",
        "password": SECRET,
        "extra": {"store_id": "s1"},
    }
    result = run_dag(
        "returns_recon_hourly",
        AIRFLOW_CONN_RECON_WAREHOUSE=empty_database.airflow_conn_json(),
        AIRFLOW_CONN_REVENI_DEFAULT=json.dumps(conn),
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert f"cannot reach 127.0.0.1:{port} (Airflow connection 'reveni_default'): connection refused" in output
    assert "action=fail" in output, "the retry policy fails a NotRetryable error on its first attempt"
    assert SECRET not in output
