"""Two merchants from one deployment (issue 22), under the real Airflow (`airflow dags test`): each merchant's
runs use its own warehouse, connections, settings and mails; one merchant's broken account fails its run and
nothing of the other's; each merchant's reader role reads its own warehouse and cannot connect to the other's."""

from __future__ import annotations

import json
from email.header import decode_header, make_header
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from recon_simulators.generate import location_map_csv_path
from tests.fixtures.scenarios import scenario
from tests.fixtures.warehouse import TestDatabase as Database
from tests.fixtures.warehouse import new_database

pytestmark = pytest.mark.integration

MERCHANTS = """
merchants:
  - id: north
    name: North Shop
    connections:
      warehouse: recon_warehouse_north
      reveni: reveni_north
      cin7: cin7_core_north
      sitoo: sitoo_north
    location_map: {location_map}
    settings:
      email_recipients: {{finance: [finance@north.example], operations: [ops@north.example]}}
      golive_override: [cin7, sitoo]
  - id: south
    name: South Shop
    connections:
      warehouse: recon_warehouse_south
      reveni: reveni_south
      cin7: cin7_core_south
    location_map: {location_map}
    settings:
      email_recipients: {{finance: [finance@south.example]}}
"""


def count(db: Database, query: str) -> int:
    with psycopg.connect(db.url) as conn:
        return conn.execute(query).fetchone()[0]


@pytest.fixture
def two_warehouses(embedded_server):
    with new_database(embedded_server) as north, new_database(embedded_server) as south:
        yield north, south


def merchant_env(simulators, north: Database, south: Database, tmp_path: Path, scenario: Path) -> dict[str, str]:
    path = tmp_path / "merchants.yaml"
    path.write_text(MERCHANTS.format(location_map=location_map_csv_path(scenario)))
    sims = simulators.env()
    refused = json.loads(sims["AIRFLOW_CONN_REVENI_DEFAULT"]) | {"password": "not-the-key"}
    return {
        "RECON_MERCHANTS_PATH": str(path),
        "RECON_EMAIL_RECIPIENTS": json.dumps({"data": ["data@agency.example"]}),
        # set explicitly: a merchant's migration fails unless it can give its own reader the timeout
        "RECON_READER_IDLE_TIMEOUT_SECONDS": "240",
        "AIRFLOW_CONN_RECON_WAREHOUSE_NORTH": north.airflow_conn_json(),
        "AIRFLOW_CONN_REVENI_NORTH": sims["AIRFLOW_CONN_REVENI_DEFAULT"],
        "AIRFLOW_CONN_CIN7_CORE_NORTH": sims["AIRFLOW_CONN_CIN7_CORE_DEFAULT"],
        "AIRFLOW_CONN_SITOO_NORTH": sims["AIRFLOW_CONN_SITOO_DEFAULT"],
        "AIRFLOW_CONN_RECON_WAREHOUSE_SOUTH": south.airflow_conn_json(),
        "AIRFLOW_CONN_REVENI_SOUTH": json.dumps(refused),  # South's API key is wrong: its runs fail
        "AIRFLOW_CONN_CIN7_CORE_SOUTH": sims["AIRFLOW_CONN_CIN7_CORE_DEFAULT"],
        # no recon_warehouse, reveni_default...: nothing may fall back to the single merchant's connections
        "AIRFLOW_CONN_RECON_WAREHOUSE": "",
        "AIRFLOW_CONN_REVENI_DEFAULT": "",
    }


def test_two_merchants_runs_data_mails_and_readers_stay_apart(
    run_dag, two_warehouses, simulators, smtp_sink, embedded_server, tmp_path
) -> None:
    north, south = two_warehouses
    path = scenario(tmp_path, 22, returns=200)
    simulators.load(path)
    sink, smtp_env = smtp_sink
    env = {**merchant_env(simulators, north, south, tmp_path, path), **smtp_env}

    failed = run_dag("returns_recon_south_hourly", **env)
    output = failed.stdout + failed.stderr
    assert failed.returncode != 0
    assert "reveni_south" in output or "401" in output, output[-3000:]
    assert "not-the-key" not in output

    done = run_dag("returns_recon_north_daily", **env)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    # North's data in North's warehouse only; South's run stopped before extracting anything
    assert count(north, "SELECT count(*) FROM staging.stg_reveni__returns") > 0
    assert count(north, "SELECT count(*) FROM recon.exceptions") > 0
    assert count(south, "SELECT count(*) FROM staging.stg_reveni__returns") == 0
    assert count(south, "SELECT count(*) FROM recon.exceptions") == 0
    # South's failure alert to the data team, naming South's DAG; North's mails to North's people, named North
    subjects = {str(make_header(decode_header(m["Subject"]))): m["To"] for m in sink.messages}
    alerts = {s: to for s, to in subjects.items() if "failed" in s}
    assert len(alerts) == 1, subjects
    assert "returns_recon_south_hourly" in next(iter(alerts)), alerts
    assert set(alerts.values()) == {"data@agency.example"}
    digests = {s: to for s, to in subjects.items() if s not in alerts}
    assert digests, "the daily run sends North's mails"
    assert set(digests.values()) <= {"finance@north.example", "ops@north.example", "data@agency.example"}
    assert all(s.startswith("[returns recon · North Shop]") for s in digests), list(digests)

    # each merchant's reader: its own warehouse only, with the idle timeout in it
    for db, role in ((north, "recon_reader_north"), (south, "recon_reader_south")):
        assert (
            count(
                db,
                "SELECT count(*) FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole"
                f" WHERE r.rolname = '{role}' AND 'idle_in_transaction_session_timeout=240000ms' = ANY(s.setconfig)"
                " AND s.setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())",
            )
            == 1
        ), role
    with psycopg.connect(embedded_server.superuser_dsn(), autocommit=True) as conn:
        for role in ("recon_reader_north", "recon_reader_south"):
            conn.execute(sql.SQL("ALTER ROLE {} LOGIN PASSWORD 'reader-pw'").format(sql.Identifier(role)))

    def reader(role: str, db: Database) -> psycopg.Connection:
        return psycopg.connect(host=db.host, port=db.port, dbname=db.dbname, user=role, password="reader-pw")

    with reader("recon_reader_north", north) as conn:
        assert conn.execute("SELECT count(*) FROM recon.exceptions").fetchone()[0] > 0
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT count(*) FROM staging.stg_reveni__returns")
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        reader("recon_reader_north", south)
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        reader("recon_reader_south", north)
