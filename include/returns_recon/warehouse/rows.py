"""Reading the one row of a statement that always returns exactly one."""

from __future__ import annotations

from typing import TypeVar

import psycopg

Row = TypeVar("Row")


def one_row(cursor: psycopg.Cursor[Row]) -> Row:
    """The row of a statement that returns exactly one whatever the data (an aggregate without GROUP BY,
    ``SELECT EXISTS (...)``, a function call); its absence is a bug, not data, so it raises."""
    row = cursor.fetchone()
    if row is None:
        raise LookupError("the statement returned no row; it always returns one")
    return row
