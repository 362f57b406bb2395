"""The Airflow connections the pipeline needs, and how to tell a usable one from a broken one.

Validation is a plain function over a connection-like object, so it is unit-testable without
Airflow. Messages name the connection and the environment variable to set, and never echo a
secret.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from returns_recon.errors import NotRetryable


class ConnectionLike(Protocol):
    conn_type: str | None
    host: str | None
    login: str | None
    password: str | None
    port: int | None
    schema: str | None

    @property
    def extra_dejson(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class ConnectionSpec:
    conn_id: str
    purpose: str
    conn_types: tuple[str, ...]
    needs_login: bool = True
    needs_password: bool = True
    needs_schema: bool = False
    required_extras: tuple[str, ...] = ()
    integer_extras: tuple[str, ...] = field(default=())

    @property
    def env_var(self) -> str:
        return env_var_name(self.conn_id)


WAREHOUSE = ConnectionSpec(
    "recon_warehouse",
    "the Postgres staging warehouse",
    ("postgres",),
    needs_schema=True,
)
REVENI = ConnectionSpec(
    "reveni_default",
    "the Reveni merchant API (password = API key)",
    ("http",),
    needs_login=False,
    required_extras=("store_id",),
)
CIN7_CORE = ConnectionSpec(
    "cin7_core_default",
    "the Cin7 Core External API v2 (login = account id, password = application key)",
    ("http",),
)
SITOO = ConnectionSpec(
    "sitoo_default",
    "the Sitoo REST API v2 (login = API id, password = API password)",
    ("http",),
    required_extras=("account_id", "site_id"),
    integer_extras=("site_id",),
)
SMTP = ConnectionSpec(
    "smtp_default",
    "the SMTP server for exception emails",
    ("smtp",),
    needs_login=False,
    needs_password=False,
)

ALL_CONNECTIONS: tuple[ConnectionSpec, ...] = (WAREHOUSE, REVENI, CIN7_CORE, SITOO, SMTP)
API_CONNECTIONS: tuple[ConnectionSpec, ...] = (REVENI, CIN7_CORE, SITOO)


def env_var_name(conn_id: str) -> str:
    return f"AIRFLOW_CONN_{conn_id.upper()}"


class ConnectionConfigError(NotRetryable):
    """One or more connections are missing or malformed; the message says what to set."""


def connection_problems(spec: ConnectionSpec, conn: ConnectionLike | None) -> list[str]:
    """Everything wrong with one connection, as sentences that say what to fix."""
    where = f"connection '{spec.conn_id}' ({spec.purpose})"
    hint = f"set {spec.env_var} (see .env.example)"
    if conn is None:
        return [f"{where} is not defined: {hint}"]
    problems: list[str] = []
    if (conn.conn_type or "") not in spec.conn_types:
        wanted = " or ".join(spec.conn_types)
        problems.append(f"{where} has type '{conn.conn_type}', expected {wanted}: {hint}")
    if not conn.host:
        problems.append(f"{where} has no host: {hint}")
    if conn.port is not None and not 0 < int(conn.port) < 65536:
        problems.append(f"{where} has port {conn.port}, outside 1-65535: {hint}")
    if spec.needs_login and not conn.login:
        problems.append(f"{where} has no login: {hint}")
    if spec.needs_password and not conn.password:
        problems.append(f"{where} has no password: {hint}")
    if spec.needs_schema and not conn.schema:
        problems.append(f"{where} names no database: {hint}")
    try:
        extras = dict(conn.extra_dejson or {})
    except (TypeError, ValueError):
        extras = None
        problems.append(f"{where} has an extra that is not a JSON object: {hint}")
    if extras is not None:
        for key in spec.required_extras:
            if extras.get(key) in (None, ""):
                problems.append(f"{where} lacks extra '{key}': {hint}")
        for key in spec.integer_extras:
            value = extras.get(key)
            if value not in (None, "") and not str(value).isdigit():
                problems.append(f"{where} has extra '{key}'={value!r}, expected a whole number: {hint}")
    return problems


def check_connections(specs: Iterable[ConnectionSpec], lookup: Callable[[str], ConnectionLike | None]) -> None:
    """Raise ConnectionConfigError listing every problem across ``specs``; return if all are fine."""
    problems = [p for spec in specs for p in connection_problems(spec, lookup(spec.conn_id))]
    if problems:
        raise ConnectionConfigError("Misconfigured connections:\n- " + "\n- ".join(problems))
