"""The warehouse's DSN and SQLAlchemy URL come from the Postgres provider's hook, escaped: a password or
login holding URL syntax stays whole (issue 19: p@ss/w:rd#1 used to break a hand-built URL)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from psycopg.conninfo import conninfo_to_dict
from sqlalchemy.engine import make_url

from returns_recon.orchestration.connections import warehouse_dsn, warehouse_sqlalchemy_url

pytestmark = pytest.mark.unit

HOSTILE = {"login": "re con@x", "password": "p@ss/w:rd#1 ?&=%", "schema": "db/x?y"}


@pytest.fixture
def hostile_warehouse(monkeypatch) -> dict:
    conn = {"conn_type": "postgres", "host": "127.0.0.1", "port": 5999, **HOSTILE}
    monkeypatch.setenv("AIRFLOW_CONN_RECON_WAREHOUSE", json.dumps(conn))
    return conn


def test_dsn_keeps_every_field_whole(hostile_warehouse) -> None:
    params = conninfo_to_dict(warehouse_dsn())
    assert params["user"] == HOSTILE["login"]
    assert params["password"] == HOSTILE["password"]
    assert params["dbname"] == HOSTILE["schema"]
    assert (params["host"], params["port"]) == ("127.0.0.1", "5999")
    assert int(params["connect_timeout"]) > 0  # an unreachable warehouse fails within the budget


def test_sqlalchemy_url_keeps_every_field_whole(hostile_warehouse) -> None:
    url = make_url(warehouse_sqlalchemy_url())
    assert url.drivername == "postgresql+psycopg"
    assert (url.username, url.password, url.database) == (HOSTILE["login"], HOSTILE["password"], HOSTILE["schema"])
    assert url.query["connect_timeout"] == conninfo_to_dict(warehouse_dsn())["connect_timeout"]


def test_the_connections_own_timeout_wins(monkeypatch) -> None:
    conn = {"conn_type": "postgres", "host": "h", "port": 5432, "login": "u", "password": "p" * 8, "schema": "d"}
    monkeypatch.setenv("AIRFLOW_CONN_RECON_WAREHOUSE", json.dumps({**conn, "extra": {"connect_timeout": 3}}))
    assert conninfo_to_dict(warehouse_dsn())["connect_timeout"] == "3"
    assert make_url(warehouse_sqlalchemy_url()).query["connect_timeout"] == "3"


def test_reading_the_warehouse_prints_nothing(tmp_path) -> None:
    """The CLI's output is read by people and scripts: building the DSN must not make Airflow print warnings
    (it masks every string of a connection's extra as a secret and warns about short ones, once per process)."""
    conn = {"conn_type": "postgres", "host": "h", "port": 5432, "login": "u", "password": "p" * 12, "schema": "d"}
    env = {**os.environ, "AIRFLOW_CONN_RECON_WAREHOUSE": json.dumps(conn), "AIRFLOW_HOME": str(tmp_path)}
    code = (
        "from returns_recon.orchestration.connections import warehouse_dsn, warehouse_sqlalchemy_url\n"
        "warehouse_dsn(); warehouse_sqlalchemy_url()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (done.stdout + done.stderr).strip() == ""
