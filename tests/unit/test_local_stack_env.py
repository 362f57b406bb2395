"""The local stack's environment: a port moved in the shell (or .env) moves everything that uses it, the
API server stays on loopback, and Airflow's login is kept."""

from __future__ import annotations

import json

import pytest
from dotenv import dotenv_values

from local_stack.env import ROOT, project_env

pytestmark = pytest.mark.unit

SIMULATED = {
    "AIRFLOW_CONN_REVENI_DEFAULT": "SIM_REVENI_PORT",
    "AIRFLOW_CONN_CIN7_CORE_DEFAULT": "SIM_CIN7_PORT",
    "AIRFLOW_CONN_SITOO_DEFAULT": "SIM_SITOO_PORT",
    "AIRFLOW_CONN_SMTP_DEFAULT": "SIM_SMTP_PORT",
    "AIRFLOW_CONN_RECON_WAREHOUSE": "RECON_WAREHOUSE_PORT",
}


def _port(env: dict[str, str], conn: str) -> int:
    return json.loads(env[conn])["port"]


def test_moving_a_port_moves_the_connections_and_the_execution_api_url() -> None:
    moved = {variable: str(20000 + i) for i, variable in enumerate(SIMULATED.values())}
    env = project_env({**moved, "AIRFLOW__API__PORT": "9191"})
    for conn, variable in SIMULATED.items():
        assert _port(env, conn) == int(moved[variable]), conn
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:9191/execution/"


def test_defaults_are_the_documented_ports_and_an_explicit_value_wins() -> None:
    example = dotenv_values(ROOT / ".env.example", interpolate=False)
    env = project_env({})
    for conn, variable in SIMULATED.items():
        assert _port(env, conn) == int(example[variable]), conn
    assert (
        env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == f"http://127.0.0.1:{example['AIRFLOW__API__PORT']}/execution/"
    )
    own = '{"conn_type": "http", "host": "api.reveni.io", "schema": "https", "password": "k"}'
    env = project_env(
        {
            "AIRFLOW_CONN_REVENI_DEFAULT": own,
            "SIM_REVENI_PORT": "1",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": "http://airflow:8080/execution/",
        }
    )
    assert env["AIRFLOW_CONN_REVENI_DEFAULT"] == own
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow:8080/execution/"


def test_every_port_is_documented_in_env_example() -> None:
    example = dotenv_values(ROOT / ".env.example", interpolate=False)
    for variable in (
        "AIRFLOW__API__PORT",
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT",
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT",
        *SIMULATED.values(),
    ):
        assert example.get(variable, "").isdigit(), variable


def test_local_means_local_and_keeps_the_login(tmp_path) -> None:
    env = project_env({"RECON_LOCAL_DIR": str(tmp_path)})
    assert env["AIRFLOW__API__HOST"] == "127.0.0.1"
    assert "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS" not in env
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"] == str(tmp_path / "airflow-passwords.json")
