"""A merchant's own reader role (issue 22): with a merchants file each merchant has its own warehouse database,
and finance of that merchant reads it as ``recon_reader_<merchant>``, which can connect to that database only.

The role reads what ``recon_reader`` reads (the ``recon`` schema, its tables and views, the ones published later
too) by grants of its own, not by membership, so nothing it is given reaches another database. ``CONNECT`` on
the database is taken from ``PUBLIC`` and given to the role: no other merchant's reader (and not the shared
``recon_reader``) can connect. The role is created ``NOLOGIN``: the DBA gives it a password (``ALTER ROLE ...
LOGIN PASSWORD ...``), as for ``recon_reader``."""

from __future__ import annotations

import logging

import psycopg
from psycopg import sql

from returns_recon.warehouse.migrate import MigrationError

log = logging.getLogger(__name__)


def isolate_reader(conn: psycopg.Connection, role: str) -> None:
    """Create ``role`` if missing, let it read ``recon`` and be the only reader that may connect here."""
    database = conn.execute("SELECT current_database()").fetchone()[0]  # type: ignore[index]
    who = sql.Identifier(role)
    if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone() is None:
        try:
            conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(who))
        except psycopg.errors.InsufficientPrivilege as err:
            raise MigrationError(
                f"cannot create the merchant's reader role {role}: the warehouse login lacks CREATEROLE. A DBA can "
                f"run `CREATE ROLE {role} LOGIN PASSWORD '...'` (the migration then grants it what it reads)"
            ) from err
        log.info("created the reader role %s (NOLOGIN: give it a password to use it)", role)
    statements = [
        sql.SQL("GRANT USAGE ON SCHEMA recon TO {}").format(who),
        sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA recon TO {}").format(who),
        sql.SQL("ALTER DEFAULT PRIVILEGES IN SCHEMA recon GRANT SELECT ON TABLES TO {}").format(who),
        sql.SQL("REVOKE ALL ON SCHEMA raw, staging FROM {}").format(who),
        sql.SQL("REVOKE CONNECT, TEMPORARY ON DATABASE {} FROM PUBLIC").format(sql.Identifier(database)),
        sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(database), who),
    ]
    with conn.transaction():
        for statement in statements:
            conn.execute(statement)
    log.info("%s reads recon in %s and is its only reader that may connect", role, database)
