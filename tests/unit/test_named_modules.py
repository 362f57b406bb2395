"""Text that names a module, a function of one, or a file of the package (docstrings, comments, docs)
names something that exists: a module renamed or moved (``returns_recon.airflow`` became
``returns_recon.orchestration``, ``notify/alerts.py`` became ``orchestration/alerts.py``) leaves no
stale pointer behind. Read as text: nothing is imported."""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
# where each top-level name lives
PACKAGES = {
    "returns_recon": ROOT / "include",
    "recon_simulators": ROOT / "tools",
    "local_stack": ROOT / "tools",
}
SOURCES = sorted(
    p
    for folder in ("include", "tools", "tests", "bench", "dags")
    for p in (ROOT / folder).rglob("*")
    if p.suffix in {".py", ".md", ".sql"} and p.is_file() and p != Path(__file__).resolve()  # its examples are stale
)
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
DOTTED = re.compile(r"\b((?:returns_recon|recon_simulators|local_stack)(?:\.[A-Za-z_]\w*)+)")
# a file of the package named in backticks, relative to the package (`notify/digest.py`, `reconcile/engine.py`)
PACKAGE_PATH = re.compile(r"`+((?:[a-z_]+/)+[a-z_]+\.py)(?::([A-Za-z_]\w*))?`+")


@cache
def defined(path: Path) -> frozenset[str]:
    """The names a module defines or imports at any level (a function, class, constant, re-export)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return frozenset(names)


def resolves(dotted: str) -> bool:
    """``a.b.c``: a package path (namespace packages included), then a module, then (optionally) a name
    it defines; data folders of a package (``reconcile.sql.models``) count as found."""
    parts = dotted.split(".")
    folder, module = PACKAGES[parts[0]], None
    rest = parts
    while rest:
        if (folder / rest[0]).is_dir() and any((folder / rest[0]).glob("*.py")):
            init = folder / rest[0] / "__init__.py"
            folder, module, rest = folder / rest[0], init if init.exists() else folder / rest[0], rest[1:]
        elif (folder / f"{rest[0]}.py").exists():
            module, rest = folder / f"{rest[0]}.py", rest[1:]
            break
        else:
            break
    if module is None:
        return False
    if not rest:
        return True
    if module.is_dir():  # a namespace package defines nothing itself
        return (folder / rest[0]).exists()
    return rest[0] in defined(module) or rest[0].startswith("__") or (folder / rest[0]).exists()


def named(paths: list[Path]) -> list[tuple[str, int, str, str | None]]:
    """(where, line, what, attribute): every dotted name and package-relative file named in ``paths``."""
    found = []
    for path in paths:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            where = str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else path.name
            found += [(where, number, m.group(1), None) for m in DOTTED.finditer(line)]
            found += [(where, number, m.group(1), m.group(2)) for m in PACKAGE_PATH.finditer(line)]
    return found


def stale(paths: list[Path]) -> list[str]:
    bad = []
    for where, number, what, attribute in named(paths):
        if "/" not in what:
            if not resolves(what):
                bad.append(f"{where}:{number}: {what}")
            continue
        candidates = [ROOT / what, ROOT / "include" / "returns_recon" / what, ROOT / "tools" / what]
        hit = next((c for c in candidates if c.exists()), None)
        if hit is None and not any(ROOT.glob(f"*/**/{what}")):
            bad.append(f"{where}:{number}: {what}")
        elif hit is not None and attribute and attribute not in defined(hit):
            bad.append(f"{where}:{number}: {what}:{attribute}")
    return bad


def test_the_resolver_tells_real_names_from_stale_ones() -> None:
    assert resolves("returns_recon.orchestration.alerts.dag_failure_alert")
    assert resolves("returns_recon.steps")
    assert resolves("local_stack.dag_test")
    assert resolves("returns_recon.reconcile.sql")
    assert not resolves("returns_recon.airflow")
    assert not resolves("returns_recon.orchestration.alerts.late_run_alert")
    assert not resolves("recon_simulators.local_stack")


def test_every_named_module_exists_in_the_code(tmp_path: Path) -> None:
    assert stale(SOURCES) == []


def test_every_named_module_exists_in_the_docs() -> None:
    assert stale(PAGES) == []


def test_a_stale_name_is_reported(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "glue in ``returns_recon.airflow``; alerts in `notify/alerts.py`;\n"
        "`orchestration/alerts.py:late_run_alert`; fine: `orchestration/alerts.py:dag_failure_alert`\n"
    )
    assert [line.split(": ", 1)[1] for line in stale([page])] == [
        "returns_recon.airflow",
        "notify/alerts.py",
        "orchestration/alerts.py:late_run_alert",
    ]
