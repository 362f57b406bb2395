"""SQL kept as SQL: one statement per ``.sql`` file, read once, never split (reconcile/sql, quality/sql).

Parameters are psycopg's named placeholders ``%(name)s`` only, listed in the file's ``-- parameters:`` header line
(checked when the file is loaded); a literal percent sign is written ``%%``. ``Statement.values`` picks a file's
values for psycopg to bind; ``Statement.render`` writes them in as literals, for psql or for a tool that takes
text (Great Expectations' query assets).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from psycopg import sql

# psycopg's placeholder grammar, as far as these files may use it: %% (a literal %) or %(name)s; any other % is refused
_PERCENT = re.compile(r"%%|%\((\w+)\)s|%")
_DECLARED = re.compile(r"^-- parameters:(.*)$", re.MULTILINE)


class SqlFileError(ValueError):
    """A .sql file breaks the folder's conventions (its parameters, its placeholders)."""


@dataclass(frozen=True)
class Statement:
    name: str  # the path under this folder, without .sql: "models/int_items"
    text: str
    parameters: frozenset[str]

    def values(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The values this statement takes from ``params`` (always a mapping, so %% always means %)."""
        missing = self.parameters - params.keys()
        if missing:
            raise SqlFileError(f"{self.name}.sql needs {', '.join(sorted(missing))}")
        return {name: params[name] for name in self.parameters}

    def render(self, params: Mapping[str, Any]) -> str:
        """The statement with the values written in as literals: text to paste into psql."""
        values = self.values(params)

        def literal(match: re.Match) -> str:
            if match.group(0) == "%%":
                return "%"
            return sql.Literal(values[match.group(1)]).as_string()

        return _PERCENT.sub(literal, self.text)


def parse(name: str, text: str) -> Statement:
    used: set[str] = set()
    for match in _PERCENT.finditer(text):
        if match.group(0) == "%":
            line = text.count("\n", 0, match.start()) + 1
            raise SqlFileError(f"{name}.sql line {line}: a % that is neither %% nor a named %(parameter)s")
        if match.group(1):
            used.add(match.group(1))
    headers = _DECLARED.findall(text)
    if len(headers) > 1:
        raise SqlFileError(f"{name}.sql declares its parameters twice")
    declared = {part.strip() for part in headers[0].split(",") if part.strip()} if headers else set()
    if declared != used:
        raise SqlFileError(
            f"{name}.sql declares the parameters {sorted(declared)} but uses {sorted(used)} "
            "(its header line: -- parameters: a, b)"
        )
    return Statement(name, text, frozenset(used))


@functools.cache
def load(root: Path, name: str) -> Statement:
    """The statement of ``root/<name>.sql`` (read once per process)."""
    return parse(name, (root / f"{name}.sql").read_text())


def names(root: Path) -> list[str]:
    """Every .sql file under ``root``, as names for ``load``."""
    return sorted(path.relative_to(root).with_suffix("").as_posix() for path in root.rglob("*.sql"))
