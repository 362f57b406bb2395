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
    lookup_problems,
    raw_value_problems,
    require_well_formed,
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
        (CIN7_CORE, FakeConn(host=""), "is malformed: host: missing"),
        (CIN7_CORE, FakeConn(login=None), "has no login"),
        (CIN7_CORE, FakeConn(password=None), "has no password"),
        (CIN7_CORE, FakeConn(port=70000), "is malformed: port: 70000 is outside 1-65535"),
        (REVENI, FakeConn(), "lacks extra 'store_id'"),
        (SITOO, FakeConn(extra={"account_id": "1"}), "lacks extra 'site_id'"),
        (
            SITOO,
            FakeConn(extra={"account_id": "1", "site_id": "one"}),
            "is malformed: extra 'site_id': 'one' is not a whole number",
        ),
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
        check_connections(ALL_CONNECTIONS, connections.get, environ={})
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
    check_connections(ALL_CONNECTIONS, good.get, environ={})


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


# --- malformed AIRFLOW_CONN_* values: named as malformed, with the field, never the secret --------

GOOD_JSON = {"conn_type": "http", "host": "127.0.0.1", "port": 18082, "login": "acct", "password": SECRET}


def as_json(**changes: Any) -> str:
    return json.dumps({**GOOD_JSON, **changes})


MALFORMED = [
    pytest.param(
        '{"conn_type": "http", "host": "h", "password": "' + SECRET + '"', "JSON", "not valid JSON", id="invalid-json"
    ),
    pytest.param(f"http://acct:{SECRET}@127.0.0.1:80a/x", "port", "not a whole number", id="uri-bad-port"),
    pytest.param(f"http://acct:{SECRET}@127.0.0.1:99999", "port", "not a whole number", id="uri-port-out-of-range"),
    pytest.param(f"http://acct:{SECRET}/x", "port", "not a whole number", id="uri-password-where-port-goes"),
    pytest.param(f"http://acct:{SECRET}@:18082", "host", "missing", id="uri-missing-host"),
    pytest.param(as_json(host=None), "host", "missing", id="json-missing-host"),
    pytest.param(as_json(host=""), "host", "missing", id="json-empty-host"),
    pytest.param(as_json(extra=["store_id"]), "extra", "a JSON array, not an object", id="extra-array"),
    pytest.param(as_json(extra="store_id=1"), "extra", "not valid JSON", id="extra-string-not-json"),
    pytest.param(as_json(extra='"just a string"'), "extra", "a JSON string, not an object", id="extra-json-string"),
    pytest.param(
        f"http://acct:{SECRET}@127.0.0.1:18082?__extra__=%5B1%5D",
        "extra (__extra__)",
        "a JSON array, not an object",
        id="uri-extra-array",
    ),
    pytest.param(as_json(port="abc"), "port", "not a whole number", id="json-port-not-numeric"),
    pytest.param(as_json(port=70000), "port", "70000 is outside 1-65535", id="json-port-out-of-range"),
    pytest.param(as_json(port=True), "port", "not a whole number", id="json-port-boolean"),
    pytest.param(as_json(hots="127.0.0.1"), "hots", "unknown field", id="json-unknown-field"),
    pytest.param(json.dumps([GOOD_JSON]), "JSON", "a JSON array, not an object", id="json-array"),
    pytest.param(f"acct:{SECRET}@127.0.0.1:18082", "conn_type", "no '<type>://'", id="uri-without-scheme"),
]


@pytest.mark.parametrize(("raw", "field_name", "wrong"), MALFORMED)
def test_malformed_value_names_malformed_the_field_and_never_the_secret(raw, field_name, wrong) -> None:
    problems = raw_value_problems(CIN7_CORE, raw)
    assert problems, raw
    message = "\n".join(problems)
    prefix = "connection 'cin7_core_default' (AIRFLOW_CONN_CIN7_CORE_DEFAULT) is malformed: "
    assert f"{prefix}{field_name}: {wrong}" in message
    assert "; expected " in message
    assert SECRET not in message


@pytest.mark.parametrize(("raw", "field_name", "wrong"), MALFORMED)
def test_malformed_value_is_reported_as_malformed_not_as_undefined(raw, field_name, wrong) -> None:
    """Airflow drops a value it cannot parse, so the lookup finds nothing: still "malformed"."""
    with pytest.raises(ConnectionConfigError) as excinfo:
        check_connections([CIN7_CORE], lambda conn_id: None, environ={"AIRFLOW_CONN_CIN7_CORE_DEFAULT": raw})
    message = str(excinfo.value)
    assert "is malformed" in message
    assert f"malformed: {field_name}: " in message
    assert "is not defined" not in message
    assert SECRET not in message


def test_well_formed_values_in_both_forms_have_no_raw_problems() -> None:
    assert raw_value_problems(CIN7_CORE, as_json()) == []
    assert raw_value_problems(CIN7_CORE, as_json(port="18082", extra='{"calls_per_minute": 50}')) == []
    assert raw_value_problems(CIN7_CORE, f"http://acct:{SECRET}@127.0.0.1:18082/http") == []
    assert raw_value_problems(SITOO, f"http://id:{SECRET}@h?account_id=1&site_id=1") == []
    assert raw_value_problems(SITOO, f"http://id:{SECRET}@h?__extra__=%7B%22site_id%22%3A+1%7D") == []
    assert raw_value_problems(CIN7_CORE, "http://https://api.example.com") == []  # protocol in the host
    assert raw_value_problems(CIN7_CORE, "  ") == []  # unset, not malformed


def test_undefined_connection_still_says_set_the_variable() -> None:
    problems = lookup_problems(REVENI, lambda conn_id: None, environ={})
    assert problems == [
        "connection 'reveni_default' (the Reveni merchant API (password = API key)) is not defined: "
        "set AIRFLOW_CONN_REVENI_DEFAULT (see .env.example)"
    ]


def test_a_value_airflow_cannot_parse_is_malformed_without_quoting_the_error() -> None:
    def lookup(conn_id: str) -> None:
        raise ValueError(f"Invalid connection string: http://acct:{SECRET}@h")

    problems = lookup_problems(CIN7_CORE, lookup, environ={"AIRFLOW_CONN_CIN7_CORE_DEFAULT": as_json()})
    assert problems == [
        "connection 'cin7_core_default' (AIRFLOW_CONN_CIN7_CORE_DEFAULT) is malformed: value: Airflow cannot parse "
        "it (ValueError); expected " + problems[0].split("; expected ", 1)[1]
    ]
    assert SECRET not in problems[0]


def test_extra_that_is_not_an_object_on_a_parsed_connection_is_malformed() -> None:
    problems = connection_problems(REVENI, FakeConn(extra=["store_id"]))  # type: ignore[arg-type]
    assert len(problems) == 1
    assert "(AIRFLOW_CONN_REVENI_DEFAULT) is malformed: extra: not a JSON object; expected a JSON object" in problems[0]
    assert SECRET not in problems[0]


def test_malformed_messages_against_airflow_itself() -> None:
    """With Airflow's own parsing in the loop (it returns nothing for these), the message is ours."""
    from returns_recon.orchestration.connections import lookup_connection

    cases = {
        '{"conn_type": "http", "host": "h", "password": "' + SECRET + '"': "JSON: not valid JSON",
        f"http://acct:{SECRET}@127.0.0.1:80a": "port: not a whole number",
        as_json(port="abc"): "port: not a whole number",
        f"http://acct:{SECRET}@:18082": "host: missing",
        as_json(extra="store_id=1"): "extra: not valid JSON",
    }
    for raw, fragment in cases.items():
        environ = {"AIRFLOW_CONN_CIN7_CORE_DEFAULT": raw}
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("AIRFLOW_CONN_CIN7_CORE_DEFAULT", raw)
            with pytest.raises(ConnectionConfigError) as excinfo:
                check_connections([CIN7_CORE], lookup_connection, environ=environ)
        message = str(excinfo.value)
        assert f"is malformed: {fragment}" in message, raw
        assert SECRET not in message


def test_hooks_refuse_a_malformed_connection_by_name() -> None:
    with pytest.raises(ConnectionConfigError, match=r"\(AIRFLOW_CONN_SITOO_DEFAULT\) is malformed: port: "):
        require_well_formed("sitoo_default", {"AIRFLOW_CONN_SITOO_DEFAULT": f"http://id:{SECRET}@h:x"})
    require_well_formed("sitoo_default", {})  # unset: Airflow's own "not defined" applies


def test_the_webhook_receivers_connection_is_optional_and_needs_no_host() -> None:
    """cin7_webhook (what Cin7 Core's webhooks send): a password, no address; the batch runs never require it."""
    from returns_recon.connections import CIN7_WEBHOOK, OPTIONAL_CONNECTIONS

    assert CIN7_WEBHOOK in OPTIONAL_CONNECTIONS
    assert CIN7_WEBHOOK not in ALL_CONNECTIONS, "the hourly and daily preflight (steps.check_connections) checks these"
    bearer = FakeConn(host=None, login=None, port=None, schema=None)
    assert connection_problems(CIN7_WEBHOOK, bearer) == []
    assert connection_problems(CIN7_WEBHOOK, FakeConn(host=None, login="hooks")) == []  # basic auth
    (problem,) = connection_problems(CIN7_WEBHOOK, FakeConn(host=None, password=None))
    assert "has no password" in problem
    assert "AIRFLOW_CONN_CIN7_WEBHOOK" in problem
    assert raw_value_problems(CIN7_WEBHOOK, json.dumps({"conn_type": "http", "password": SECRET})) == []
    (problem,) = raw_value_problems(CIN7_WEBHOOK, '{"conn_type": "http", "password": 1')
    assert "malformed: JSON" in problem
    assert '"password": "..."' in problem
    assert SECRET not in problem
    # the other connections still need their host
    assert "host: missing" in connection_problems(CIN7_CORE, FakeConn(host=None))[0]
    with pytest.raises(ConnectionConfigError, match=r"\(AIRFLOW_CONN_CIN7_WEBHOOK\) is malformed"):
        require_well_formed("cin7_webhook", {"AIRFLOW_CONN_CIN7_WEBHOOK": "[1]"})
