"""The go-live check against the simulators: every assumption passes on the defaults; a simulator
switched to the other answer (``/_sim/behaviour/{service}``) refutes the right check and, for a
blocking one, holds that system's postings while the other system's are sent; an override releases
them; the CLI exits non-zero on a blocking failure; the DAG runs it under Airflow."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import psycopg
import pytest

from returns_recon.golive import CHECKS, accounts_of, held_systems, run_golive_check
from returns_recon.postings.execute import execute, quality_gate
from returns_recon.postings.plan import plan
from tests.fixtures.pipeline import SETTINGS, cycle
from tests.fixtures.scenarios import scenario

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
# what no simulator can show: the Cin7 Core simulator sends no rate-limit header (nor does the vendor document one)
UNVERIFIABLE_ON_SIMULATORS = {"rate_limit"}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scenario with every exception type planted, its location map beside it."""
    return scenario(tmp_path_factory.mktemp("golive"), 1515, returns=300)


def verdicts(report) -> dict[str, str]:
    return {r.check.id: r.verdict for r in report.results}


def test_every_assumption_passes_against_the_default_simulators_and_a_wrong_match_field_is_refuted(
    simulators, world, clients_for, warehouse_db
) -> None:
    simulators.load(world)
    clients = clients_for()
    with warehouse_db.connect(autocommit=True) as conn:
        assert set(held_systems(conn, SETTINGS)) == {"cin7", "sitoo"}, "never checked: both held"
    cycle(warehouse_db, clients, world, "golive-ok", post=False)
    with warehouse_db.connect(autocommit=True) as conn:
        report = run_golive_check(conn, clients, SETTINGS, "golive-ok-again")
        ours = accounts_of(clients)
        assert held_systems(conn, SETTINGS, ours) == {}
        # a pass on one account does not release another (the sandbox's pass, then the live connection)
        elsewhere = held_systems(conn, SETTINGS, {**ours, "cin7": "another-account"})
        assert set(elsewhere) == {"cin7"}
        assert "for this account" in elsewhere["cin7"]
        rows = conn.execute(
            "SELECT check_id, system, outcome, passed, evidence FROM recon.golive_checks "
            "WHERE run_id = 'golive-ok-again'"
        ).fetchall()
        wrong = run_golive_check(
            conn, clients, SETTINGS.model_copy(update={"sale_match_field": "ExternalID"}), "golive-wrong-field"
        )
        cin7_held = held_systems(conn, SETTINGS)
    print(report.render())
    expected = {c.id: "UNVERIFIED" if c.id in UNVERIFIABLE_ON_SIMULATORS else "PASS" for c in CHECKS}
    assert verdicts(report) == expected
    assert report.ok
    assert report.held == {}
    assert len(rows) == len(CHECKS)
    assert {r[0] for r in rows if r[3] is True} == set(expected) - UNVERIFIABLE_ON_SIMULATORS
    assert "postings released" in report.render()
    # the configured match field is refuted with the field that does hold the order number
    match = next(r for r in wrong.results if r.check.id == "sale_match_field")
    assert (match.outcome, match.verdict) == ("refuted", "FAIL")
    assert match.evidence["found_in"] == ["CustomerReference"]
    assert set(cin7_held) == {"cin7"}
    assert "sale_match_field" in cin7_held["cin7"]


def test_a_refuted_cin7_assumption_holds_cin7_postings_sitoo_still_posts_and_the_override_releases_them(
    simulators, world, clients_for, warehouse_db, behaviour
) -> None:
    simulators.load(world)
    behaviour("cin7", credit_note_list_restock_status=False)
    clients = clients_for()
    cycle(warehouse_db, clients, world, "held-1", post=False)  # runs the go-live check: never checked
    with warehouse_db.connect(autocommit=True) as conn:
        latest = dict(
            conn.execute("SELECT check_id, outcome FROM recon.golive_checks WHERE run_id = 'held-1-golive'").fetchall()
        )
        assert latest["credit_note_list_restock_status"] == "refuted"
        held = held_systems(conn, SETTINGS)
        assert set(held) == {"cin7"}
        assert "credit_note_list_restock_status" in held["cin7"]
        quality_gate(conn, "held-1")
        plan(conn, "held-1", SETTINGS)
        report = execute(conn, clients, "held-1", SETTINGS)
        statuses = Counter(conn.execute("SELECT system, status FROM recon.postings").fetchall())
        logged = conn.execute(
            "SELECT response->>'reason' FROM recon.posting_log WHERE run_id = 'held-1' AND outcome = 'held' LIMIT 1"
        ).fetchone()
    assert report.held == sum(n for (system, _), n in statuses.items() if system == "cin7") > 0
    assert {status for system, status in statuses if system == "cin7"} == {"held"}
    assert statuses[("sitoo", "done")] > 0, statuses
    assert "credit_note_list_restock_status" in logged[0]
    # the held postings wait: the next run leaves them held, sends nothing to Cin7 Core
    with warehouse_db.connect(autocommit=True) as conn:
        again = execute(conn, clients, "held-2", SETTINGS)
        assert (again.held, again.done) == (report.held, 0)
        # the merchant overrides explicitly: the held postings are picked up and attempted
        released = execute(conn, clients, "held-3", SETTINGS.model_copy(update={"golive_override": ("cin7",)}))
        left = conn.execute("SELECT count(*) FROM recon.postings WHERE status = 'held'").fetchone()[0]
    assert released.held == 0
    assert released.done + released.adopted + released.refused + released.ambiguous == report.held
    assert left == 0


def test_a_reveni_account_without_a_list_endpoint_is_refuted_and_sitoo_rejecting_parameters_differs(
    simulators, world, clients_for, warehouse_db, behaviour
) -> None:
    simulators.load(world)
    behaviour("reveni", list_endpoint=False)
    behaviour("sitoo", undeclared_query_parameters="reject")
    with warehouse_db.connect(autocommit=True) as conn:
        report = run_golive_check(conn, clients_for(), SETTINGS, "no-list")
    print(report.render())
    found = {r.check.id: r for r in report.results}
    assert (found["list_endpoint"].outcome, found["list_endpoint"].verdict) == ("refuted", "FAIL")
    assert found["list_endpoint"].evidence["status"] == 404
    assert (found["undeclared_query_parameters"].outcome, found["undeclared_query_parameters"].verdict) == (
        "refuted",
        "DIFFERS",
    )
    assert [r.check.id for r in report.blocking_failures] == ["list_endpoint"]
    assert not report.ok
    assert report.held == {}, "Reveni receives no postings; a non-blocking Sitoo difference holds nothing"
    assert "extraction at risk: list_endpoint failed" in report.render()


def test_the_cli_prints_the_report_and_exits_non_zero_on_a_blocking_failure(
    simulators, world, warehouse_db, behaviour
) -> None:
    simulators.load(world)
    behaviour("reveni", list_endpoint=False)
    env = {
        **os.environ,
        **simulators.env(),
        "AIRFLOW_CONN_RECON_WAREHOUSE": warehouse_db.airflow_conn_json(),
        "PYTHONPATH": str(ROOT),
    }
    run = subprocess.run(
        [sys.executable, "-m", "returns_recon.cli", "golive-check", "--run-id", "cli-1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT,
    )
    assert run.returncode == 1, run.stdout + run.stderr[-2000:]
    line = next(x for x in run.stdout.splitlines() if x.startswith("reveni") and "list_endpoint" in x)
    for part in ("expected confirmed", "observed refuted", "FAIL"):
        assert part in line, line
    assert "postings released" in run.stdout
    with warehouse_db.connect() as conn:
        assert conn.execute("SELECT count(*) FROM recon.golive_checks WHERE run_id = 'cli-1'").fetchone()[0] == len(
            CHECKS
        )
    assert warehouse_db.password not in run.stdout + run.stderr


def test_the_golive_dag_runs_the_check_under_airflow(
    run_dag, empty_database, simulators, small_scenario, smtp_sink
) -> None:
    simulators.load(small_scenario)
    _, smtp_env = smtp_sink
    result = run_dag(
        "returns_recon_golive_check",
        AIRFLOW_CONN_RECON_WAREHOUSE=empty_database.airflow_conn_json(),
        **simulators.env(),
        **smtp_env,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    with psycopg.connect(empty_database.url) as conn:
        rows = conn.execute("SELECT check_id, outcome, passed FROM recon.golive_checks").fetchall()
        assert held_systems(conn, SETTINGS) == {}
    assert len(rows) == len(CHECKS)
    # a fresh warehouse has no return yet: the sale match is asked again once a cycle has run
    assert ("sale_match_field", "unverified", None) in rows
    assert not [r for r in rows if r[2] is False], rows
    assert "credit_note_list_restock_status" in output
    assert json.loads(empty_database.airflow_conn_json())["password"] not in output
