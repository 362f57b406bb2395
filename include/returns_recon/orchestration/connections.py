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
    WAREHOUSE,
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


def warehouse_hook() -> PostgresHook:
    """The Postgres provider's hook on ``recon_warehouse``, with the connect timeout of ``reachability``
    unless the connection sets its own. Every DSN and URL of the warehouse comes from it (escaped there)."""
    from airflow.providers.postgres.hooks.postgres import PostgresHook
    from airflow.sdk import BaseHook

    require_connections([WAREHOUSE])
    airflow_conn = copy.deepcopy(BaseHook.get_connection(WAREHOUSE.conn_id))  # defined: checked just above
    extra = dict(airflow_conn.extra_dejson or {})
    # an int: Airflow masks every string of an extra as a secret, and warns on stdout about short ones
    extra.setdefault("connect_timeout", WAREHOUSE_CONNECT_TIMEOUT)  # the connection's own value wins
    airflow_conn.extra = json.dumps(extra)
    return PostgresHook(postgres_conn_id=WAREHOUSE.conn_id, connection=airflow_conn)


def _warehouse_url() -> URL:
    """The hook's SQLAlchemy URL of ``recon_warehouse``, carrying the connect timeout."""
    hook = warehouse_hook()
    url = hook.sqlalchemy_url
    if "connect_timeout" not in url.query:
        url = url.update_query_dict({"connect_timeout": str(hook.connection.extra_dejson["connect_timeout"])})
    return url


def warehouse_sqlalchemy_url() -> str:
    """SQLAlchemy URL of ``recon_warehouse`` (psycopg 3 driver), for Great Expectations."""
    return _warehouse_url().set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def warehouse_dsn() -> str:
    """libpq connection string of ``recon_warehouse`` (for the shared rate-limit budgets and the CLI), with the
    connect timeout: the hook's fields, quoted by psycopg (a password like ``p@ss/w:rd#1`` stays whole)."""
    from psycopg.conninfo import make_conninfo

    url = _warehouse_url()
    options = {name: values[-1] for name, values in url.normalized_query.items()}  # a key twice: the last wins
    return make_conninfo(
        host=url.host, port=url.port or 5432, user=url.username, password=url.password, dbname=url.database, **options
    )


def connect_warehouse_dsn(**kwargs) -> psycopg.Connection:
    """psycopg.connect to ``recon_warehouse``; an unreachable one fails within the budget, naming it."""
    from psycopg.conninfo import conninfo_to_dict

    dsn = warehouse_dsn()
    params = conninfo_to_dict(dsn)
    return connect_warehouse(
        lambda: psycopg.connect(dsn, **kwargs), WAREHOUSE.conn_id, str(params["host"]), int(params.get("port") or 5432)
    )


def api_clients(budget_dsn: str | None = None):
    """Clients for the three APIs, through their Airflow connections and hooks."""
    from airflow.sdk import BaseHook

    from returns_recon.connections import API_CONNECTIONS
    from returns_recon.extract.run import Clients
    from returns_recon.orchestration.hooks import Cin7CoreHook, ReveniHook, SitooHook

    require_connections(API_CONNECTIONS)
    site_id = int(BaseHook.get_connection("sitoo_default").extra_dejson["site_id"])  # defined: checked just above
    reveni = ReveniHook(budget_dsn=budget_dsn)
    return Clients(
        reveni.client(),
        Cin7CoreHook(budget_dsn=budget_dsn).client(),
        SitooHook(budget_dsn=budget_dsn).client(),
        site_id,
        reveni_list_endpoint=reveni.list_endpoint(),
    )


@contextmanager
def warehouse_connection() -> Iterator[psycopg.Connection]:
    """A psycopg 3 connection to the ``recon_warehouse`` connection, closed afterwards. A warehouse that
    does not answer fails within a minute naming the connection and host:port (``reachability``)."""
    hook = warehouse_hook()

    def connect() -> psycopg.Connection:
        conn = hook.get_conn()
        assert isinstance(conn, psycopg.Connection)  # the provider connects with psycopg 3 when it is installed
        return conn

    host = hook.connection.host
    assert host  # require_connections (warehouse_hook) checked it
    conn = connect_warehouse(connect, WAREHOUSE.conn_id, host, hook.connection.port or 5432)
    conn.autocommit = True  # each unit of work opens its own transaction
    try:
        yield conn
    finally:
        conn.close()
