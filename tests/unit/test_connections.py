from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from returns_recon.connections import (
    ALL_CONNECTIONS,
    CIN7_CORE,
    REVENI,
    SITOO,
    WAREHOUSE,
    ConnectionConfigError,
    check_connections,
    connection_problems,
)

pytestmark = pytest.mark.unit

SECRET = "s3cr3t-never-shown"


@dataclass
class FakeConn:
    conn_type: str | None = "http"
    host: str | None = "127.0.0.1"
    login: str | None = "user"
    password: str | None = SECRET
    port: int | None = 18081
    schema: str | None = "http"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def extra_dejson(self) -> dict[str, Any]:
        return self.extra


def test_missing_connection_names_it_and_the_variable() -> None:
    problems = connection_problems(REVENI, None)
    assert problems == [
        "connection 'reveni_default' (the Reveni merchant API (password = API key)) is not defined: "
        "set AIRFLOW_CONN_REVENI_DEFAULT (see .env.example)"
    ]


def test_well_formed_connection_has_no_problems() -> None:
    conn = FakeConn(extra={"account_id": "90001", "site_id": 1})
    assert connection_problems(SITOO, conn) == []


@pytest.mark.parametrize(
    ("spec", "conn", "fragment"),
    [
        (CIN7_CORE, FakeConn(conn_type="postgres"), "has type 'postgres', expected http"),
        (CIN7_CORE, FakeConn(host=""), "has no host"),
        (CIN7_CORE, FakeConn(login=None), "has no login"),
        (CIN7_CORE, FakeConn(password=None), "has no password"),
        (CIN7_CORE, FakeConn(port=70000), "port 70000, outside 1-65535"),
        (REVENI, FakeConn(), "lacks extra 'store_id'"),
        (SITOO, FakeConn(extra={"account_id": "1"}), "lacks extra 'site_id'"),
        (SITOO, FakeConn(extra={"account_id": "1", "site_id": "one"}), "extra 'site_id'='one'"),
        (WAREHOUSE, FakeConn(conn_type="postgres", schema=None), "names no database"),
    ],
)
def test_each_defect_is_reported(spec, conn, fragment) -> None:
    problems = connection_problems(spec, conn)
    assert len(problems) == 1
    assert fragment in problems[0]
    assert spec.env_var in problems[0]


def test_check_connections_lists_every_problem_and_never_the_secret() -> None:
    connections = {"cin7_core_default": FakeConn(host=None), "sitoo_default": FakeConn()}
    with pytest.raises(ConnectionConfigError) as excinfo:
        check_connections(ALL_CONNECTIONS, connections.get)
    message = str(excinfo.value)
    for conn_id in (
        "recon_warehouse",
        "reveni_default",
        "cin7_core_default",
        "sitoo_default",
        "smtp_default",
    ):
        assert f"'{conn_id}'" in message
    assert SECRET not in message


def test_check_connections_passes_when_all_are_fine() -> None:
    good = {
        "recon_warehouse": FakeConn(conn_type="postgres", schema="recon"),
        "reveni_default": FakeConn(extra={"store_id": "s"}),
        "cin7_core_default": FakeConn(),
        "sitoo_default": FakeConn(extra={"account_id": "1", "site_id": "1"}),
        "smtp_default": FakeConn(conn_type="smtp", login=None, password=None),
    }
    check_connections(ALL_CONNECTIONS, good.get)


def test_env_example_defines_every_connection_well_formed() -> None:
    """The demo configuration itself must pass the same checks the DAGs run."""
    from pathlib import Path

    from airflow.models.connection import Connection
    from dotenv import dotenv_values

    values = dotenv_values(Path(__file__).resolve().parents[2] / ".env.example")
    for spec in ALL_CONNECTIONS:
        raw = values.get(spec.env_var)
        assert raw, f"{spec.env_var} missing from .env.example"
        conn = Connection.from_json(raw, conn_id=spec.conn_id)
        assert connection_problems(spec, conn) == [], spec.conn_id
        json.loads(raw)  # JSON form throughout, as documented
