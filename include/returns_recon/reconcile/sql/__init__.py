"""The reconciliation's SQL: one statement per ``.sql`` file in this folder (returns_recon.sqlfiles), read once.

A file under ``models/``, ``detect/`` or ``publish/`` is one model: a query (SELECT or WITH) that the engine
materialises as the table (or view) named after the file, as dbt does; every other file is one whole statement.
To run a file in psql, print it with the values written in: ``python -m returns_recon.reconcile.sql render
models/int_items release_sla='48 hours' restock_sla='24 hours'`` (docs/reconciliation.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from psycopg import sql

from returns_recon import sqlfiles
from returns_recon.sqlfiles import SqlFileError, Statement, parse

__all__ = ["ROOT", "Published", "SqlFileError", "Statement", "Table", "load", "names", "parse"]

ROOT = Path(__file__).parent


def load(name: str) -> Statement:
    """The statement of ``<name>.sql`` in this folder, e.g. ``models/int_items``."""
    return sqlfiles.load(ROOT, name)


def names() -> list[str]:
    return sqlfiles.names(ROOT)


@dataclass(frozen=True)
class Table:
    """A model of the run, materialised as an unlogged table of the transaction's work schema (recon_work)."""

    file: str
    unique_key: tuple[str, ...] = ()
    index: tuple[str, ...] = ()
    analyze: bool = True

    @property
    def name(self) -> str:
        return self.file.rsplit("/", 1)[-1]

    def statements(self) -> list[tuple[sql.Composed, Statement | None]]:
        """The statements that build it, each with the file whose parameters it takes."""
        table = sql.Identifier(self.name)
        query = load(self.file)
        steps: list[tuple[sql.Composed, Statement | None]] = [
            (sql.SQL("CREATE UNLOGGED TABLE {} AS\n").format(table) + sql.SQL(query.text), query)
        ]
        if self.unique_key:
            steps.append((sql.SQL("CREATE UNIQUE INDEX ON {} ({})").format(table, _columns(self.unique_key)), None))
        if self.index:
            steps.append((sql.SQL("CREATE INDEX ON {} ({})").format(table, _columns(self.index)), None))
        if self.analyze:
            steps.append((sql.SQL("ANALYZE {}").format(table), None))
        return steps


@dataclass(frozen=True)
class Published:
    """A published table or view, built in the shadow schema ``schema`` and swapped into recon."""

    file: str
    primary_key: tuple[str, ...] = ()  # a table's; a view has none
    view: bool = False

    @property
    def name(self) -> str:
        return self.file.rsplit("/", 1)[-1]

    def statements(self, schema: str) -> list[tuple[sql.Composed, Statement | None]]:
        relation = sql.Identifier(schema, self.name)
        query = load(self.file)
        kind = sql.SQL("VIEW" if self.view else "TABLE")
        steps: list[tuple[sql.Composed, Statement | None]] = [
            (sql.SQL("CREATE {} {} AS\n").format(kind, relation) + sql.SQL(query.text), query)
        ]
        if self.primary_key:
            steps.append(
                (sql.SQL("ALTER TABLE {} ADD PRIMARY KEY ({})").format(relation, _columns(self.primary_key)), None)
            )
        return steps


def _columns(columns: tuple[str, ...]) -> sql.Composed:
    return sql.SQL(", ").join(map(sql.Identifier, columns))
