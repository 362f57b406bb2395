"""Facts stated once: the references our documents carry (returns_recon.references, migration 0019's functions) and
which exception states are open (returns_recon.states, recon.is_open of migration 0020). The Python answers here;
tests/integration/test_single_definitions.py holds them to the SQL functions."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import local_stack
import returns_recon
from returns_recon import references
from returns_recon.reconcile.sql import ROOT as RECONCILE_SQL
from returns_recon.states import CLOSED_STATES, EXCEPTION_STATES, OPEN_STATES

pytestmark = pytest.mark.unit

PACKAGE = Path(returns_recon.__file__).parent
LOCAL_STACK = Path(local_stack.__file__).parent
ROOT = PACKAGE.parents[1]
PYTHON = sorted([*PACKAGE.rglob("*.py"), *LOCAL_STACK.rglob("*.py")])
# the home of the reference format, and a module whose "reveni:<store>" is the key of an API budget, not a reference
REFERENCE_HOMES = {PACKAGE / "references.py", PACKAGE / "orchestration" / "hooks.py"}
# every SQL file of the pipeline but the migrations (0020 is the home of recon.is_open; the earlier ones are frozen)
SQL = sorted(p for p in PACKAGE.rglob("*.sql") if "migrations" not in p.parts)
OPEN_LIST = re.compile(r"""["']open["']\s*,\s*["']acknowledged["']""")


def _strings(path: Path) -> list[str]:
    return [
        node.value
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    ]


def test_the_builders_write_the_documented_formats() -> None:
    assert references.credit_note_memo("r-1") == "reveni:r-1"
    assert references.item_reference("r-1", "i-1") == "reveni:r-1:i-1"
    assert references.transfer_reference("r-1", "i-1", "transfer_to_sellable#abc") == (
        "reveni:r-1:i-1 transfer_to_sellable#abc"
    )


def test_the_readers_read_back_what_the_builders_write_and_nothing_else() -> None:
    assert references.return_of_memo(references.credit_note_memo("r-1")) == "r-1"
    for memo in (None, "", "by hand", "Reveni:r-1", "reveni-exchange:r-1", " reveni:r-1"):
        assert references.return_of_memo(memo) is None, memo
    transfer = references.transfer_reference("r-1", "i-1", "by hand")
    assert references.item_reference_of_transfer(transfer) == references.item_reference("r-1", "i-1")


def test_no_other_module_spells_the_reference_format() -> None:
    spelled = [
        f"{path.relative_to(ROOT)}: {value!r}"
        for path in PYTHON
        if path not in REFERENCE_HOMES
        for value in _strings(path)
        if "reveni:" in value or "reveni-exchange:" in value
    ]
    assert spelled == [], "use returns_recon.references (Python) or migration 0019's functions (SQL)"


def test_the_states_are_the_open_and_the_closed_ones() -> None:
    assert set(OPEN_STATES) | set(CLOSED_STATES) == set(EXCEPTION_STATES)
    assert not set(OPEN_STATES) & set(CLOSED_STATES)
    assert len(EXCEPTION_STATES) == len(set(EXCEPTION_STATES))


@pytest.mark.parametrize("path", PYTHON + SQL, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_file_lists_the_open_states_but_their_home(path: Path) -> None:
    if path == PACKAGE / "states.py":
        return
    assert not OPEN_LIST.search(path.read_text()), (
        f"{path.name}: use returns_recon.states.OPEN_STATES (Python) or recon.is_open(state) (SQL)"
    )


def test_the_sql_guard_sees_the_reconciliation_files() -> None:
    assert any(path.is_relative_to(RECONCILE_SQL) for path in SQL)
