"""The Airflow connections the pipeline needs, and how to tell a usable one from a broken one.

Validation is a plain function over a connection-like object, so it is unit-testable without
Airflow. Messages name the connection and the environment variable to set, and never echo a
secret.

Airflow quietly drops an ``AIRFLOW_CONN_*`` value it cannot parse (the connection then looks
"not defined"), so the raw value is checked first, in either of Airflow's forms (JSON, or URI):
a malformed one is reported as ``connection 'x' (AIRFLOW_CONN_X) is malformed: <field>: <what is
wrong>; expected <shape>``. Parse errors are never quoted: Airflow's own quote the whole URI,
password included.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit

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
    needs_host: bool = True
    needs_login: bool = True
    needs_password: bool = True
    needs_schema: bool = False
    required_extras: tuple[str, ...] = ()
    integer_extras: tuple[str, ...] = field(default=())
    boolean_extras: tuple[str, ...] = field(default=())  # true or false (a JSON boolean, or the text)

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
    # whether the account has the paged GET returns (not public: reveni_api.md §1); default true
    boolean_extras=("list_endpoint",),
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

# What Cin7 Core's webhooks must send to the receiver (returns_recon.webhooks, docs/webhooks.md): Cin7 Core signs
# nothing, it sends the ExternalAuthorizationType its webhook was created with (apib L27940-L27950). A receiver
# setting, not an address: no host.
CIN7_WEBHOOK = ConnectionSpec(
    "cin7_webhook",
    "the webhook receiver's Cin7 Core credentials (password = bearer token; login + password = basic auth)",
    ("http", "generic"),
    needs_host=False,
    needs_login=False,
)

# The batch DAGs need these (their preflight checks them all).
ALL_CONNECTIONS: tuple[ConnectionSpec, ...] = (WAREHOUSE, REVENI, CIN7_CORE, SITOO, SMTP)
API_CONNECTIONS: tuple[ConnectionSpec, ...] = (REVENI, CIN7_CORE, SITOO)
# Only the webhook receiver reads these; without them the batch runs work as before (the receiver refuses Cin7
# Core's deliveries).
OPTIONAL_CONNECTIONS: tuple[ConnectionSpec, ...] = (CIN7_WEBHOOK,)


@dataclass(frozen=True)
class ConnectionIds:
    """Which Airflow connections one merchant's runs use (the defaults: the single merchant of the environment;
    a merchants file names its own, ``returns_recon.merchants``). No Sitoo: a merchant without stores."""

    warehouse: str = WAREHOUSE.conn_id
    reveni: str = REVENI.conn_id
    cin7: str = CIN7_CORE.conn_id
    sitoo: str | None = SITOO.conn_id
    smtp: str = SMTP.conn_id
    cin7_webhook: str = CIN7_WEBHOOK.conn_id

    def api_specs(self) -> tuple[ConnectionSpec, ...]:
        """The API connections' specs under these ids (Sitoo's only when the merchant has it)."""
        specs = [replace(REVENI, conn_id=self.reveni), replace(CIN7_CORE, conn_id=self.cin7)]
        if self.sitoo:
            specs.append(replace(SITOO, conn_id=self.sitoo))
        return tuple(specs)

    def warehouse_spec(self) -> ConnectionSpec:
        return replace(WAREHOUSE, conn_id=self.warehouse)

    def required_specs(self) -> tuple[ConnectionSpec, ...]:
        """What a batch run's preflight checks (ALL_CONNECTIONS under these ids)."""
        return (self.warehouse_spec(), *self.api_specs(), replace(SMTP, conn_id=self.smtp))


DEFAULT_IDS = ConnectionIds()


def env_var_name(conn_id: str) -> str:
    return f"AIRFLOW_CONN_{conn_id.upper()}"


class ConnectionConfigError(NotRetryable):
    """One or more connections are missing or malformed; the message says what to set."""


JSON_FIELDS = ("conn_type", "description", "host", "login", "password", "schema", "port", "extra")
PORT_SHAPE = "a whole number 1-65535, e.g. 443"
HOST_SHAPE = "a host name or address, e.g. 127.0.0.1"


def malformed(spec: ConnectionSpec, name: str, wrong: str, expected: str) -> str:
    """The one sentence for a malformed connection: which field, what is wrong, the shape wanted."""
    return f"connection '{spec.conn_id}' ({spec.env_var}) is malformed: {name}: {wrong}; expected {expected}"


def _json_shape(spec: ConnectionSpec) -> str:
    extra = ", ".join(f'"{key}": "..."' for key in spec.required_extras)
    address = '"host": "...", "port": 443' if spec.needs_host else '"password": "..."'
    return (
        f'one JSON object like {{"conn_type": "{spec.conn_types[0]}", {address}'
        + (f', "extra": {{{extra}}}' if extra else "")
        + "} (see .env.example)"
    )


def _uri_shape(spec: ConnectionSpec) -> str:
    return (
        f"{spec.conn_types[0]}://login:password@host:port/schema?extra_key=value, or the JSON form (see .env.example)"
    )


def _extra_shape(spec: ConnectionSpec) -> str:
    keys = ", ".join(f'"{key}": "..."' for key in spec.required_extras)
    return f"a JSON object{f' like {{{keys}}}' if keys else ''}"


def _port_problem(spec: ConnectionSpec, port: object) -> list[str]:
    """``port`` as it appears in the JSON form (Airflow takes a number or a numeric string)."""
    if port in (None, ""):
        return []
    if isinstance(port, bool) or not isinstance(port, int | str) or not str(port).strip().isdigit():
        return [malformed(spec, "port", f"not a whole number (a JSON {type(port).__name__})", PORT_SHAPE)]
    if not 0 < int(port) < 65536:
        return [malformed(spec, "port", f"{int(port)} is outside 1-65535", PORT_SHAPE)]
    return []


def _extra_problem(spec: ConnectionSpec, extra: object, name: str = "extra") -> list[str]:
    if extra in (None, ""):
        return []
    if isinstance(extra, str):
        try:
            extra = json.loads(extra)
        except ValueError:
            return [malformed(spec, name, "not valid JSON", _extra_shape(spec))]
    if not isinstance(extra, dict):
        return [malformed(spec, name, f"a JSON {_json_type(extra)}, not an object", _extra_shape(spec))]
    return []


def _json_type(value: object) -> str:
    return {list: "array", str: "string", bool: "boolean", int: "number", float: "number"}.get(
        type(value), type(value).__name__
    )


def _json_form_problems(spec: ConnectionSpec, raw: str) -> list[str]:
    try:
        value = json.loads(raw)
    except ValueError as err:
        # position only: the message of a JSONDecodeError never quotes the document
        where = f"line {err.lineno} column {err.colno}" if isinstance(err, json.JSONDecodeError) else "somewhere"
        return [malformed(spec, "JSON", f"not valid JSON ({where})", _json_shape(spec))]
    if not isinstance(value, dict):
        return [malformed(spec, "JSON", f"a JSON {_json_type(value)}, not an object", _json_shape(spec))]
    problems: list[str] = []
    unknown = sorted(set(value) - set(JSON_FIELDS))
    if unknown:
        problems.append(malformed(spec, ", ".join(unknown), "unknown field", f"only {', '.join(JSON_FIELDS)}"))
    for name in ("conn_type", "host", "login", "password", "schema"):
        if value.get(name) is not None and not isinstance(value[name], str):
            problems.append(malformed(spec, name, f"a JSON {_json_type(value[name])}", "a string"))
    if spec.needs_host and not value.get("host"):
        problems.append(malformed(spec, "host", "missing", HOST_SHAPE))
    problems += _port_problem(spec, value.get("port"))
    problems += _extra_problem(spec, value.get("extra"))
    return problems


def _uri_form_problems(spec: ConnectionSpec, raw: str) -> list[str]:
    shape = _uri_shape(spec)
    if raw.count("://") > 2:
        return [malformed(spec, "URI", "more than two '://'", shape)]
    try:
        parts = urlsplit(raw)
    except ValueError:
        return [malformed(spec, "host", "not a valid host (unbalanced '[' or ']')", shape)]
    if not parts.scheme or "://" not in raw:
        return [malformed(spec, "conn_type", "no '<type>://' at the start (nor is it a JSON object)", shape)]
    if raw.count("://") == 2:  # Airflow's "protocol in the host" form: type://protocol://host
        try:
            parts = urlsplit(raw.split("://", 1)[1])
        except ValueError:
            return [malformed(spec, "host", "not a valid host (unbalanced '[' or ']')", shape)]
    problems: list[str] = []
    if spec.needs_host and not parts.hostname:
        problems.append(malformed(spec, "host", "missing", HOST_SHAPE))
    try:
        port = parts.port
    except ValueError:  # never quote it: a stray ':' can put the password where the port goes
        problems.append(malformed(spec, "port", "not a whole number in 1-65535", PORT_SHAPE))
    else:
        if port == 0:
            problems.append(malformed(spec, "port", "0 is outside 1-65535", PORT_SHAPE))
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    if "__extra__" in query:
        problems += _extra_problem(spec, query["__extra__"] or None, "extra (__extra__)")
    return problems


def raw_value_problems(spec: ConnectionSpec, raw: str) -> list[str]:
    """What is malformed in the text of ``AIRFLOW_CONN_<ID>`` (JSON form if it starts with '{')."""
    raw = raw.strip()
    if not raw:
        return []
    if raw.startswith("{"):
        return _json_form_problems(spec, raw)
    try:
        value = json.loads(raw)  # a JSON array, string or number is not a URI either
    except ValueError:
        return _uri_form_problems(spec, raw)
    return [malformed(spec, "JSON", f"a JSON {_json_type(value)}, not an object", _json_shape(spec))]


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
    if spec.needs_host and not conn.host:
        problems.append(malformed(spec, "host", "missing", HOST_SHAPE))
    if conn.port is not None and not 0 < int(conn.port) < 65536:
        problems.append(malformed(spec, "port", f"{conn.port} is outside 1-65535", PORT_SHAPE))
    if spec.needs_login and not conn.login:
        problems.append(f"{where} has no login: {hint}")
    if spec.needs_password and not conn.password:
        problems.append(f"{where} has no password: {hint}")
    if spec.needs_schema and not conn.schema:
        problems.append(f"{where} names no database: {hint}")
    try:
        extras = conn.extra_dejson or {}
        if not isinstance(extras, Mapping):
            raise TypeError(type(extras).__name__)
    except (TypeError, ValueError):
        extras = None
        problems.append(malformed(spec, "extra", "not a JSON object", _extra_shape(spec)))
    if extras is not None:
        for key in spec.required_extras:
            if extras.get(key) in (None, ""):
                problems.append(f"{where} lacks extra '{key}': {hint}")
        for key in spec.integer_extras:
            value = extras.get(key)
            if value not in (None, "") and not str(value).isdigit():
                problems.append(
                    malformed(spec, f"extra '{key}'", f"{value!r} is not a whole number", "e.g. 1 (see .env.example)")
                )
        for key in spec.boolean_extras:
            value = extras.get(key)
            if value not in (None, "") and true_or_false(value) is None:
                problems.append(malformed(spec, f"extra '{key}'", f"{value!r} is not true or false", BOOLEAN_SHAPE))
    return problems


BOOLEAN_SHAPE = "true or false, e.g. false (see .env.example)"


def true_or_false(value: object) -> bool | None:
    """A true/false extra: a JSON boolean, or the text true or false in any case (an extra given in the URI form
    is text); None for anything else."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return {"true": True, "false": False}.get(value.strip().lower())
    return None


def reveni_list_endpoint(extra: Mapping[str, Any] | None) -> bool:
    """Whether the Reveni account has the paged list ``GET returns`` (extra ``list_endpoint`` of ``reveni_default``,
    default true): without it the batch runs read returns by id (docs/extraction.md, docs/webhooks.md). A value
    that is neither true nor false raises ``ConnectionConfigError`` naming the connection and the field."""
    value = (extra or {}).get("list_endpoint")
    if value in (None, ""):
        return True
    flag = true_or_false(value)
    if flag is None:
        raise ConnectionConfigError(
            "Misconfigured connections:\n- "
            + malformed(REVENI, "extra 'list_endpoint'", f"{value!r} is not true or false", BOOLEAN_SHAPE)
        )
    return flag


def lookup_problems(
    spec: ConnectionSpec, lookup: Callable[[str], ConnectionLike | None], environ: Mapping[str, str] | None = None
) -> list[str]:
    """The raw ``AIRFLOW_CONN_<ID>`` first (a malformed one is named as such, not as undefined),
    then the connection Airflow makes of it."""
    raw = (os.environ if environ is None else environ).get(spec.env_var) or ""
    if raw.strip():
        problems = raw_value_problems(spec, raw)
        if problems:
            return problems
    try:
        conn = lookup(spec.conn_id)
    except (TypeError, ValueError) as err:  # a parse error: its text may quote the password
        shape = _json_shape(spec) if raw.strip().startswith("{") else _uri_shape(spec)
        return [malformed(spec, "value", f"Airflow cannot parse it ({type(err).__name__})", shape)]
    if conn is None and raw.strip():
        shape = _json_shape(spec) if raw.strip().startswith("{") else _uri_shape(spec)
        return [malformed(spec, "value", "set, but Airflow cannot parse it", shape)]
    return connection_problems(spec, conn)


def check_connections(
    specs: Iterable[ConnectionSpec],
    lookup: Callable[[str], ConnectionLike | None],
    environ: Mapping[str, str] | None = None,
) -> None:
    """Raise ConnectionConfigError listing every problem across ``specs``; return if all are fine.

    ``environ`` (default ``os.environ``) holds the raw ``AIRFLOW_CONN_*`` values."""
    problems = [p for spec in specs for p in lookup_problems(spec, lookup, environ)]
    if problems:
        raise ConnectionConfigError("Misconfigured connections:\n- " + "\n- ".join(problems))


def require_well_formed(conn_id: str, environ: Mapping[str, str] | None = None) -> None:
    """Raise ConnectionConfigError if ``AIRFLOW_CONN_<ID>`` is set but malformed (for hooks, which
    would otherwise report it as undefined)."""
    spec = next((s for s in (*ALL_CONNECTIONS, *OPTIONAL_CONNECTIONS) if s.conn_id == conn_id), None)
    spec = spec or ConnectionSpec(conn_id, conn_id, ("http",))
    raw = (os.environ if environ is None else environ).get(spec.env_var) or ""
    problems = raw_value_problems(spec, raw)
    if problems:
        raise ConnectionConfigError("Misconfigured connections:\n- " + "\n- ".join(problems))
