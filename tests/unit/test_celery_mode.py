"""`make up EXECUTOR=celery`'s settings (local_stack.celery_mode), without starting anything; the whole stack
runs in tests/integration/test_celery_executor.py."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from dotenv import dotenv_values

from local_stack import celery_mode
from local_stack.env import worker_hostname

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


def test_the_broker_port_is_a_line_of_env_example() -> None:
    example = dotenv_values(ROOT / ".env.example", interpolate=False)
    assert example.get("RECON_REDIS_PORT") == celery_mode.DEFAULT_REDIS_PORT
    assert celery_mode.redis_port({}) == int(celery_mode.DEFAULT_REDIS_PORT)
    assert celery_mode.redis_port({"RECON_REDIS_PORT": "6390"}) == 6390


def test_passwords_are_generated_once_into_a_file_of_mode_600(tmp_path: Path) -> None:
    env = {"RECON_LOCAL_DIR": str(tmp_path)}
    first = celery_mode.passwords(env)
    assert set(first) == {"redis", "airflow_meta"}
    assert first["redis"] != first["airflow_meta"]
    assert len(first["redis"]) >= 24
    path = tmp_path / "celery-secrets.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == first
    assert celery_mode.passwords(env) == first


def test_configure_keeps_what_the_user_set_and_derives_the_rest(tmp_path: Path) -> None:
    own_db = "postgresql+psycopg://airflow:secret@db.example/airflow"
    env = {"RECON_LOCAL_DIR": str(tmp_path), "RECON_REDIS_PORT": "6390", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": own_db}
    # a metadata database of the user's: nothing is created, and the message says it is theirs
    assert celery_mode.configure(env).startswith("yours")
    password = celery_mode.passwords(env)["redis"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == own_db
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"] == f"db+{own_db}"
    assert env["AIRFLOW__CELERY__BROKER_URL"] == f"redis://:{password}@127.0.0.1:6390/0"
    mine = {**env, "AIRFLOW__CELERY__BROKER_URL": "redis://broker.example:6379/1"}
    mine.pop("AIRFLOW__CELERY__RESULT_BACKEND")
    celery_mode.configure(mine)
    assert mine["AIRFLOW__CELERY__BROKER_URL"] == "redis://broker.example:6379/1"


def test_configure_wants_a_metadata_database_without_the_embedded_warehouse(tmp_path: Path) -> None:
    env = {"RECON_LOCAL_DIR": str(tmp_path), "RECON_EMBEDDED_WAREHOUSE": "false"}
    with pytest.raises(SystemExit, match="AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"):
        celery_mode.configure(env)


def test_each_worker_has_its_own_loopback_address_hostname_and_log_server(tmp_path: Path) -> None:
    env = {"RECON_LOCAL_DIR": str(tmp_path), "PATH": "/usr/bin"}
    started = celery_mode.worker_commands(env, 8793)
    assert list(started) == list(celery_mode.process_names()[1:])
    addresses = set()
    for index, worker in enumerate(celery_mode.WORKERS):
        log_server, log_env = started[celery_mode.log_server_name(worker)]
        cmd, worker_env = started[celery_mode.worker_name(worker)]
        address = log_env["RECON_WORKER_ADDRESS"]
        assert address == worker_env["RECON_WORKER_ADDRESS"] == celery_mode.worker_address(index)
        assert address.startswith("127.")
        assert address != "127.0.0.1"
        addresses.add(address)
        assert log_server[-4:] == ["--host", address, "--port", "8793"]
        assert cmd[1:4] == ["celery", "worker", "--concurrency"]
        assert f"{worker}@%h" in cmd
        assert "--skip-serve-logs" in cmd  # Airflow's own would listen on every interface
        assert worker_env["AIRFLOW__CORE__HOSTNAME_CALLABLE"] == "local_stack.env.worker_hostname"
    assert len(addresses) == len(celery_mode.WORKERS) == 2
    assert "RECON_WORKER_ADDRESS" not in env  # the other components keep 127.0.0.1


def test_worker_hostname_is_the_workers_address(monkeypatch) -> None:
    monkeypatch.delenv("RECON_WORKER_ADDRESS", raising=False)
    assert worker_hostname() == "127.0.0.1"
    monkeypatch.setenv("RECON_WORKER_ADDRESS", "127.0.0.3")
    assert worker_hostname() == "127.0.0.3"
