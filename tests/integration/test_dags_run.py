"""The DAGs run end to end under the real Airflow (`airflow dags test`, SQLite metadata DB)."""

from __future__ import annotations

import json

import psycopg
import pytest

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("dag_id", ["returns_recon_hourly", "returns_recon_daily"])
def test_dag_succeeds_migrates_and_extracts(
    run_dag, empty_database, simulators, small_scenario, smtp_sink, dag_id: str
) -> None:
    simulators.load(small_scenario)
    _, smtp_env = smtp_sink
    result = run_dag(
        dag_id, AIRFLOW_CONN_RECON_WAREHOUSE=empty_database.airflow_conn_json(), **simulators.env(), **smtp_env
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "state=success" in output
    with psycopg.connect(empty_database.url) as conn:
        applied = conn.execute("SELECT count(*) FROM public.schema_migrations").fetchone()[0]
        returns = conn.execute("SELECT count(*) FROM staging.stg_reveni__returns").fetchone()[0]
        mapped = conn.execute("SELECT count(*) FROM staging.dim_location_map").fetchone()[0]
    assert applied >= 2
    assert returns > 0
    assert mapped > 0
    assert empty_database.password not in output


def test_misconfigured_connection_fails_at_once_naming_what_to_set(run_dag, empty_database) -> None:
    broken = json.dumps({"conn_type": "http", "host": "127.0.0.1", "login": "90001-1"})
    result = run_dag(
        "returns_recon_hourly",
        AIRFLOW_CONN_RECON_WAREHOUSE=empty_database.airflow_conn_json(),
        AIRFLOW_CONN_SITOO_DEFAULT=broken,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "connection 'sitoo_default'" in output
    assert "lacks extra 'account_id'" in output
    assert "set AIRFLOW_CONN_SITOO_DEFAULT" in output
    # not retried: the retry policy fails a NotRetryable error on its first attempt
    assert output.count("lacks extra 'account_id': set") == 1
    assert "action=fail" in output


def test_dry_run_from_the_trigger_form_sends_nothing(
    run_dag, empty_database, simulators, small_scenario, smtp_sink
) -> None:
    """The run's Param `dry_run` (the trigger form) plans and logs the postings of that run and sends none."""
    simulators.load(small_scenario)
    _, smtp_env = smtp_sink
    result = run_dag(
        "returns_recon_hourly",
        conf={"dry_run": True},
        AIRFLOW_CONN_RECON_WAREHOUSE=empty_database.airflow_conn_json(),
        RECON_POSTINGS_DRY_RUN="false",
        RECON_GOLIVE_OVERRIDE='["cin7", "sitoo"]',
        **simulators.env(),
        **smtp_env,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    with psycopg.connect(empty_database.url) as conn:
        statuses = dict(conn.execute("SELECT status, count(*) FROM recon.postings GROUP BY 1").fetchall())
    assert statuses, "the scenario plans corrective postings"
    assert set(statuses) == {"dry_run"}
