"""The only module of the package that touches Airflow: it turns Airflow connections into the
plain inputs the rest of the package takes. Imported inside tasks, never at DAG-parse time."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import psycopg

from returns_recon.connections import (
    WAREHOUSE,
    ConnectionLike,
    ConnectionSpec,
    check_connections,
)


def lookup_connection(conn_id: str) -> ConnectionLike | None:
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return None


def require_connections(specs: Iterable[ConnectionSpec]) -> None:
    check_connections(specs, lookup_connection)


@contextmanager
def warehouse_connection() -> Iterator[psycopg.Connection]:
    """A psycopg 3 connection to the ``recon_warehouse`` connection, closed afterwards."""
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    require_connections([WAREHOUSE])
    conn = PostgresHook(postgres_conn_id=WAREHOUSE.conn_id).get_conn()
    try:
        yield conn
    finally:
        conn.close()
