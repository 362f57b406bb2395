"""The only module of the package that touches Airflow: it turns Airflow connections into the
plain inputs the rest of the package takes. Imported inside tasks, never at DAG-parse time."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import psycopg

from returns_recon.connections import (
    WAREHOUSE,
    ConnectionLike,
    ConnectionSpec,
    check_connections,
)
from returns_recon.reachability import WAREHOUSE_CONNECT_TIMEOUT, connect_warehouse


def lookup_connection(conn_id: str) -> ConnectionLike | None:
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return None


def require_connections(specs: Iterable[ConnectionSpec]) -> None:
    check_connections(specs, lookup_connection)


def warehouse_dsn() -> str:
    """libpq connection string of ``recon_warehouse`` (for the shared rate-limit budgets and the CLI), with
    the connect timeout of ``reachability``."""
    from psycopg.conninfo import make_conninfo

    require_connections([WAREHOUSE])
    conn = lookup_connection(WAREHOUSE.conn_id)
    return make_conninfo(
        host=conn.host,
        port=conn.port or 5432,
        user=conn.login,
        password=conn.password,
        dbname=conn.schema,
        connect_timeout=WAREHOUSE_CONNECT_TIMEOUT,
    )


def connect_warehouse_dsn(**kwargs) -> psycopg.Connection:
    """psycopg.connect to ``recon_warehouse``; an unreachable one fails within the budget, naming it."""
    from psycopg.conninfo import conninfo_to_dict

    dsn = warehouse_dsn()
    params = conninfo_to_dict(dsn)
    return connect_warehouse(
        lambda: psycopg.connect(dsn, **kwargs), WAREHOUSE.conn_id, str(params["host"]), int(params["port"])
    )


def warehouse_sqlalchemy_url() -> str:
    """SQLAlchemy URL of ``recon_warehouse`` (psycopg 3 driver), for Great Expectations."""
    from sqlalchemy.engine import URL

    require_connections([WAREHOUSE])
    conn = lookup_connection(WAREHOUSE.conn_id)
    url = URL.create(
        "postgresql+psycopg",
        conn.login,
        conn.password,
        conn.host,
        conn.port or 5432,
        conn.schema,
        query={"connect_timeout": str(WAREHOUSE_CONNECT_TIMEOUT)},
    )
    return url.render_as_string(hide_password=False)


def api_clients(budget_dsn: str | None = None):
    """Clients for the three APIs, through their Airflow connections and hooks."""
    from returns_recon.apis.hooks import Cin7CoreHook, ReveniHook, SitooHook
    from returns_recon.connections import API_CONNECTIONS
    from returns_recon.extract.run import Clients

    require_connections(API_CONNECTIONS)
    site_id = int(lookup_connection("sitoo_default").extra_dejson["site_id"])
    return Clients(
        ReveniHook(budget_dsn=budget_dsn).client(),
        Cin7CoreHook(budget_dsn=budget_dsn).client(),
        SitooHook(budget_dsn=budget_dsn).client(),
        site_id,
    )


@contextmanager
def warehouse_connection() -> Iterator[psycopg.Connection]:
    """A psycopg 3 connection to the ``recon_warehouse`` connection, closed afterwards. A warehouse that
    does not answer fails within a minute naming the connection and host:port (``reachability``)."""
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    require_connections([WAREHOUSE])
    airflow_conn = copy.deepcopy(lookup_connection(WAREHOUSE.conn_id))
    extra = dict(airflow_conn.extra_dejson or {})
    extra.setdefault("connect_timeout", WAREHOUSE_CONNECT_TIMEOUT)  # the connection's own value wins
    airflow_conn.extra = json.dumps(extra)
    hook = PostgresHook(postgres_conn_id=WAREHOUSE.conn_id, connection=airflow_conn)
    conn = connect_warehouse(hook.get_conn, WAREHOUSE.conn_id, airflow_conn.host, airflow_conn.port or 5432)
    conn.autocommit = True  # each unit of work opens its own transaction
    try:
        yield conn
    finally:
        conn.close()
