"""Airflow connections turned into the plain inputs the rest of the package takes (API clients through
the hooks, the warehouse through the Postgres provider's hook). Imported inside tasks, never at DAG-parse time."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import psycopg

from returns_recon.connections import (
    ConnectionIds,
    ConnectionLike,
    ConnectionSpec,
    check_connections,
)
from returns_recon.reachability import WAREHOUSE_CONNECT_TIMEOUT, connect_warehouse

if TYPE_CHECKING:
    from airflow.providers.postgres.hooks.postgres import PostgresHook
    from sqlalchemy.engine import URL


def lookup_connection(conn_id: str) -> ConnectionLike | None:
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return None


def require_connections(specs: Iterable[ConnectionSpec]) -> None:
    check_connections(specs, lookup_connection)


def connection_extra(conn_id: str) -> Mapping[str, Any] | None:
    """The connection's extra (JSON), or None when the connection is not defined."""
    conn = lookup_connection(conn_id)
    return conn.extra_dejson if conn else None


def _ids(ids: ConnectionIds | None) -> ConnectionIds:
    """The given ids, else the running task's merchant's (the defaults with one merchant, or outside a task)."""
    if ids is not None:
        return ids
    from returns_recon.orchestration.merchant import current_ids

    return current_ids()


def warehouse_hook(ids: ConnectionIds | None = None) -> PostgresHook:
    """The Postgres provider's hook on the warehouse connection (``recon_warehouse``, or the merchant's), with the
    connect timeout of ``reachability`` unless the connection sets its own. Every DSN and URL of the warehouse
    comes from it (escaped there)."""
    from airflow.providers.postgres.hooks.postgres import PostgresHook
    from airflow.sdk import BaseHook

    spec = _ids(ids).warehouse_spec()
    require_connections([spec])
    airflow_conn = copy.deepcopy(BaseHook.get_connection(spec.conn_id))  # defined: checked just above
    extra = dict(airflow_conn.extra_dejson or {})
    # an int: Airflow masks every string of an extra as a secret, and warns on stdout about short ones
    extra.setdefault("connect_timeout", WAREHOUSE_CONNECT_TIMEOUT)  # the connection's own value wins
    airflow_conn.extra = json.dumps(extra)
    return PostgresHook(postgres_conn_id=spec.conn_id, connection=airflow_conn)


def _warehouse_url(ids: ConnectionIds | None = None) -> URL:
    """The hook's SQLAlchemy URL of the warehouse, carrying the connect timeout."""
    hook = warehouse_hook(ids)
    url = hook.sqlalchemy_url
    if "connect_timeout" not in url.query:
        url = url.update_query_dict({"connect_timeout": str(hook.connection.extra_dejson["connect_timeout"])})
    return url


def warehouse_sqlalchemy_url(ids: ConnectionIds | None = None) -> str:
    """SQLAlchemy URL of the warehouse (psycopg 3 driver), for Great Expectations."""
    return _warehouse_url(ids).set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def warehouse_dsn(ids: ConnectionIds | None = None) -> str:
    """libpq connection string of ``recon_warehouse`` (for the shared rate-limit budgets and the CLI), with the
    connect timeout: the hook's fields, quoted by psycopg (a password like ``p@ss/w:rd#1`` stays whole)."""
    from psycopg.conninfo import make_conninfo

    url = _warehouse_url(ids)
    options = {name: values[-1] for name, values in url.normalized_query.items()}  # a key twice: the last wins
    return make_conninfo(
        host=url.host, port=url.port or 5432, user=url.username, password=url.password, dbname=url.database, **options
    )


def connect_warehouse_dsn(ids: ConnectionIds | None = None, **kwargs) -> psycopg.Connection:
    """psycopg.connect to the warehouse; an unreachable one fails within the budget, naming it."""
    from psycopg.conninfo import conninfo_to_dict

    ids = _ids(ids)
    dsn = warehouse_dsn(ids)
    params = conninfo_to_dict(dsn)
    return connect_warehouse(
        lambda: psycopg.connect(dsn, **kwargs), ids.warehouse, str(params["host"]), int(params.get("port") or 5432)
    )


def api_clients(budget_dsn: str | None = None, ids: ConnectionIds | None = None):
    """Clients for the APIs, through their Airflow connections and hooks (no Sitoo client for a merchant without
    stores)."""
    from airflow.sdk import BaseHook

    from returns_recon.extract.run import Clients
    from returns_recon.orchestration.hooks import Cin7CoreHook, ReveniHook, SitooHook

    ids = _ids(ids)
    require_connections(ids.api_specs())
    reveni = ReveniHook(ids.reveni, budget_dsn=budget_dsn)
    sitoo, site_id = None, None
    if ids.sitoo:
        site_id = int(BaseHook.get_connection(ids.sitoo).extra_dejson["site_id"])  # defined: checked just above
        sitoo = SitooHook(ids.sitoo, budget_dsn=budget_dsn).client()
    return Clients(
        reveni.client(),
        Cin7CoreHook(ids.cin7, budget_dsn=budget_dsn).client(),
        sitoo,
        site_id,
        reveni_list_endpoint=reveni.list_endpoint(),
    )


@contextmanager
def warehouse_connection(ids: ConnectionIds | None = None) -> Iterator[psycopg.Connection]:
    """A psycopg 3 connection to the warehouse connection (``recon_warehouse``, or the merchant's), closed
    afterwards. A warehouse that does not answer fails within a minute naming the connection and host:port
    (``reachability``)."""
    hook = warehouse_hook(ids)

    def connect() -> psycopg.Connection:
        conn = hook.get_conn()
        assert isinstance(conn, psycopg.Connection)  # the provider connects with psycopg 3 when it is installed
        return conn

    host = hook.connection.host
    assert host  # require_connections (warehouse_hook) checked it
    conn = connect_warehouse(connect, hook.postgres_conn_id, host, hook.connection.port or 5432)
    conn.autocommit = True  # each unit of work opens its own transaction
    try:
        yield conn
    finally:
        conn.close()
