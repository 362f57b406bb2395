"""`make up` serves the Airflow UI with our DAGs and no import errors, checked through the
REST API; `make stop` stops what it started."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
EXPECTED_DAGS = {"returns_recon_hourly", "returns_recon_daily", "returns_recon_golive_check"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def test_up_serves_our_dags_without_import_errors(tmp_path: Path, warehouse_db) -> None:
    port = _free_port()
    env = {
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "RECON_LOCAL_DIR": str(tmp_path / "local"),
        "AIRFLOW__API__PORT": str(port),
        "RECON_EMBEDDED_WAREHOUSE": "false",
        "AIRFLOW_CONN_RECON_WAREHOUSE": warehouse_db.airflow_conn_json(),
    }
    import os

    full_env = {**os.environ, **env}
    stack = [sys.executable, "-m", "local_stack"]
    up = subprocess.run([*stack, "up"], env=full_env, cwd=ROOT, capture_output=True, text=True, timeout=400)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        base = f"http://127.0.0.1:{port}/api/v2"
        deadline = time.monotonic() + 180
        dag_ids: set[str] = set()
        while time.monotonic() < deadline and dag_ids != EXPECTED_DAGS:
            dag_ids = {d["dag_id"] for d in _get(f"{base}/dags")["dags"]}
            time.sleep(2)
        assert dag_ids == EXPECTED_DAGS
        assert _get(f"{base}/importErrors")["total_entries"] == 0
    finally:
        stop = subprocess.run([*stack, "stop"], env=full_env, cwd=ROOT, capture_output=True, text=True)
    assert stop.returncode == 0, stop.stdout + stop.stderr
    assert "stopped airflow" in stop.stdout
    with pytest.raises(OSError):
        _get(f"http://127.0.0.1:{port}/api/v2/monitor/health")
