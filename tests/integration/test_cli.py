"""The CLI as a person runs it (issue 18, item 10): ``python -m returns_recon.cli`` in a subprocess, the
warehouse given by the shell or by a ``.env`` in the current directory; every acknowledgement, resolution and
re-opening kept in recon.exception_events, which nothing can rewrite."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import psycopg
import pytest

from returns_recon.reconcile import queue
from tests.fixtures.warehouse import TestDatabase as Database

pytestmark = pytest.mark.integration

KEYS = {"refund_without_credit_note:R-1": "finance", "missing_restock:R-2:I-1": "operations"}
# what a run's detection found (the table the queue's statements read)
FOUND = (
    "CREATE TEMP TABLE found (exception_key text, exception_type text, return_id text, item_id text, sku text, "
    "evidence jsonb)"
)


@pytest.fixture
def queue_db(warehouse_db: Database) -> Database:
    """Two open exceptions, opened by a run of the pipeline (its own merge statement)."""
    with warehouse_db.connect() as conn:
        conn.execute(FOUND)
        conn.execute(
            "INSERT INTO found SELECT k, split_part(k, ':', 1), split_part(k, ':', 2), "
            "nullif(split_part(k, ':', 3), ''), NULL, '{}' FROM unnest(%s::text[]) k",
            (list(KEYS),),
        )
        conn.execute(queue.MERGE, {"run_id": "run-1"})
    return warehouse_db


def cli(*args: str, db: Database | None = None, cwd=None, env: dict | None = None) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k != "AIRFLOW_CONN_RECON_WAREHOUSE"}
    if db is not None:
        environ["AIRFLOW_CONN_RECON_WAREHOUSE"] = db.airflow_conn_json()
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "returns_recon.cli", *args],
        env=environ,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=180,
    )


def events(db: Database, key: str) -> list[tuple]:
    with db.connect() as conn:
        return conn.execute(
            "SELECT from_state, to_state, changed_by, run_id, note FROM recon.exception_events "
            "WHERE exception_key = %s ORDER BY event_id",
            (key,),
        ).fetchall()


def test_the_cli_reads_dotenv_in_the_current_directory_and_the_shell_wins(queue_db, tmp_path) -> None:
    (tmp_path / ".env").write_text(f"AIRFLOW_CONN_RECON_WAREHOUSE='{queue_db.airflow_conn_json()}'\n")
    listed = cli("exceptions", "list", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert sorted(line.split("\t")[0] for line in listed.stdout.splitlines()) == sorted(KEYS)
    # a value set in the shell is not overridden by .env: here it points at a closed port
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    shell = json.loads(queue_db.airflow_conn_json()) | {"port": closed}
    refused = cli("exceptions", "list", cwd=tmp_path, env={"AIRFLOW_CONN_RECON_WAREHOUSE": json.dumps(shell)})
    assert refused.returncode == 1
    assert f"cannot reach 127.0.0.1:{closed} (Airflow connection 'recon_warehouse')" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert queue_db.password not in refused.stderr + refused.stdout


@pytest.mark.parametrize("by", ["", "   "], ids=["empty", "blank"])
def test_an_empty_by_is_refused(queue_db, by: str) -> None:
    key = next(iter(KEYS))
    run = cli("exceptions", "ack", key, "--by", by, db=queue_db)
    assert run.returncode == 2
    assert "--by" in run.stderr
    assert "who decided" in run.stderr
    with queue_db.connect() as conn:
        assert conn.execute(
            "SELECT state, acknowledged_by FROM recon.exceptions WHERE exception_key = %s", (key,)
        ).fetchone() == ("open", None)
    assert [e[1] for e in events(queue_db, key)] == ["open"]


def test_every_acknowledgement_and_resolution_is_kept_in_order(queue_db) -> None:
    key = next(iter(KEYS))
    steps = [
        ("ack", "ana@finance", "looking into it"),
        ("ack", "ben@finance", "mine now"),
        ("resolve", "ben@finance", "credited by phone"),
        ("reopen", "ana@finance", None),
    ]
    for action, by, note in steps:
        run = cli("exceptions", action, key, "--by", by, *(["--note", note] if note else []), db=queue_db)
        assert run.returncode == 0, run.stderr[-2000:]
    assert events(queue_db, key) == [
        (None, "open", "pipeline", "run-1", None),
        ("open", "acknowledged", "ana@finance", None, "looking into it"),
        ("acknowledged", "acknowledged", "ben@finance", None, "mine now"),
        ("acknowledged", "resolved", "ben@finance", None, "credited by phone"),
        ("resolved", "open", "ana@finance", None, None),
    ]
    history = cli("exceptions", "history", key, db=queue_db)
    assert history.returncode == 0, history.stderr[-2000:]
    lines = [line.split("\t")[1:] for line in history.stdout.splitlines()[1:]]
    assert lines == [
        ["-", "open", "pipeline", "run-1", ""],
        ["open", "acknowledged", "ana@finance", "", "looking into it"],
        ["acknowledged", "acknowledged", "ben@finance", "", "mine now"],
        ["acknowledged", "resolved", "ben@finance", "", "credited by phone"],
        ["resolved", "open", "ana@finance", "", ""],
    ]


def test_the_history_is_append_only(queue_db) -> None:
    key = next(iter(KEYS))
    assert cli("exceptions", "resolve", key, "--by", "ana", db=queue_db).returncode == 0
    rewrites = [
        "UPDATE recon.exception_events SET changed_by = 'someone else'",
        "DELETE FROM recon.exception_events",
        "TRUNCATE recon.exception_events",
    ]
    for statement in rewrites:  # as the pipeline's own login, which owns the table
        with queue_db.connect() as conn, pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
            conn.execute(statement)
    assert [e[2] for e in events(queue_db, key)] == ["pipeline", "ana"]


def test_the_pipeline_records_its_own_changes(queue_db) -> None:
    """Opened, auto-resolved when gone, re-opened when back: the queue's own statements, set-based."""
    key = next(iter(KEYS))
    with queue_db.connect() as conn:
        conn.execute(FOUND)
        conn.execute("CREATE TEMP TABLE int_returns AS SELECT 'R-1'::text AS return_id")
        # a batch run (no scope): R-1's exception is gone: auto-resolved
        conn.execute(queue.AUTO_RESOLVE, {"run_id": "run-2", "scope": None})
        conn.execute("INSERT INTO found VALUES (%s, 'refund_without_credit_note', 'R-1', NULL, NULL, '{}')", (key,))
        conn.execute(queue.MERGE, {"run_id": "run-3"})  # back: re-opened
        conn.execute(queue.MERGE, {"run_id": "run-4"})  # still there: no change, no event
    assert events(queue_db, key) == [
        (None, "open", "pipeline", "run-1", None),
        ("open", "auto_resolved", "pipeline", "run-2", None),
        ("auto_resolved", "open", "pipeline", "run-3", None),
    ]


def test_the_reader_reads_the_history_and_cannot_write_it(queue_db, embedded_server) -> None:
    embedded_server.set_role_password("recon_reader", "reader-login-pw")
    reader = Database(queue_db.host, queue_db.port, "recon_reader", "reader-login-pw", queue_db.dbname)
    with reader.connect() as conn:
        assert conn.execute("SELECT count(*) FROM recon.exception_events").fetchone() == (len(KEYS),)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(
                "INSERT INTO recon.exception_events (exception_key, to_state, changed_by) VALUES ('x', 'open', 'me')"
            )


def test_owners_match_in_any_case_and_an_unknown_owner_warns(queue_db) -> None:
    upper = cli("exceptions", "list", "--owner", "FINANCE", db=queue_db)
    assert upper.returncode == 0, upper.stderr[-2000:]
    assert [line.split("\t")[0] for line in upper.stdout.splitlines()] == ["refund_without_credit_note:R-1"]
    assert "warning" not in upper.stderr
    unknown = cli("exceptions", "list", "--owner", "financ", db=queue_db)
    assert unknown.returncode == 0
    assert unknown.stdout == ""
    assert "warning: no owner 'financ'; the owners are: " in unknown.stderr
    for owner in ("customer service", "data", "finance", "operations"):
        assert owner in unknown.stderr


@pytest.mark.parametrize("action", ["ack", "resolve", "reopen", "history"])
def test_a_key_that_does_not_exist_exits_non_zero(queue_db, action: str) -> None:
    by = [] if action == "history" else ["--by", "ana"]
    run = cli("exceptions", action, "no-such-key", *by, db=queue_db)
    assert run.returncode == 1
    assert "no exception with key no-such-key" in run.stderr
    with queue_db.connect() as conn:
        assert conn.execute("SELECT count(*) FROM recon.exception_events").fetchone() == (len(KEYS),)


def test_with_a_merchants_file_the_cli_works_on_the_merchant_named(
    queue_db: Database, warehouse_db_2: Database, tmp_path
) -> None:
    """Each merchant's queue is in its own warehouse: ``--merchant`` picks it; without it the CLI says which."""
    merchants = tmp_path / "merchants.yaml"
    merchants.write_text(
        "merchants:\n"
        "  - id: north\n    connections: {warehouse: wh_north, reveni: r_north, cin7: c_north}\n"
        "    location_map: map.csv\n"
        "  - id: south\n    connections: {warehouse: wh_south, reveni: r_south, cin7: c_south}\n"
        "    location_map: map.csv\n"
    )
    env = {
        "RECON_MERCHANTS_PATH": str(merchants),
        "AIRFLOW_CONN_WH_NORTH": queue_db.airflow_conn_json(),
        "AIRFLOW_CONN_WH_SOUTH": warehouse_db_2.airflow_conn_json(),
    }
    north = cli("--merchant", "north", "exceptions", "list", env=env)
    assert north.returncode == 0, north.stderr
    assert {line.split("\t")[0] for line in north.stdout.splitlines()} == set(KEYS)
    south = cli("--merchant", "south", "exceptions", "list", env=env)
    assert south.returncode == 0, south.stderr
    assert south.stdout == ""  # South's warehouse has no exceptions
    unnamed = cli("exceptions", "list", env=env)
    assert unnamed.returncode == 1
    assert "name the merchant: --merchant ID (one of north, south)" in unnamed.stderr
    assert cli("--merchant", "west", "exceptions", "list", env=env).returncode == 1


@pytest.fixture
def warehouse_db_2(embedded_server):
    from tests.fixtures.warehouse import new_database

    with new_database(embedded_server, migrated=True) as db:
        yield db
