"""Bad input through a whole run: oversized, wrongly typed, missing and hostile values (SQL
metacharacters, unicode, very long strings, NUL) in SKUs, names, memos and amounts are stored as
data or quarantined with a reason; nothing is executed and the run finishes. And no SQL statement
in the package builds external values into its text."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from tests.fixtures.pipeline import cycle
from tests.fixtures.scenarios import scenario

ROOT = Path(__file__).resolve().parents[2]
HOSTILE = [
    "'; DROP TABLE staging.stg_reveni__returns; --",
    "Robert'); DELETE FROM recon.exceptions; --",
    "%s %(run_id)s {match_column} $1 \\ \\\\ \" ' ; --",
    "Ünïcødé ✓ 🚀 \u202e\u200b العربية 中文",
    "L" * 100_000,
    "nul\x00byte",
]


def hostile_scenario(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A generated scenario with hostile values planted; returns {return id: what was planted}."""
    path = scenario(tmp_path, 7373, returns=120)
    document = json.loads(path.read_text())
    returns = document["reveni"]["returns"]
    planted: dict[str, str] = {}
    for ret, value in zip(returns, HOSTILE, strict=False):
        ret["return_items"][0]["sku"] = value
        ret["return_items"][0]["name"] = value
        planted[ret["id"]] = "hostile sku and name"
    typed = returns[len(HOSTILE) :]
    typed[0]["amount"] = {"nested": "object"}
    typed[1]["return_items"][0]["quantity"] = "ten"
    typed[2]["amount"] = "99999999999999999999.99"  # beyond numeric(18, 4)
    typed[3]["currency"] = 978
    typed[4]["return_items"] = [dict(typed[4]["return_items"][0], item_id=f"{typed[4]['id']}-{n}") for n in range(3000)]
    for ret, what in zip(
        typed, ["object amount", "text quantity", "oversized amount", "number currency", "3000 items"], strict=False
    ):
        planted[ret["id"]] = what
    del typed[5]["id"]
    orders = {r["order"]["external_id"] for r in returns[20:]}  # sales of returns left intact
    notes = [
        n for s in document["cin7"]["sales"] if s.get("CustomerReference") in orders for n in s.get("CreditNotes", [])
    ]
    for note, value in zip(notes, HOSTILE, strict=False):
        note["Memo"] = value
    path.write_text(json.dumps(document))
    return path, planted


@pytest.mark.integration
def test_hostile_values_are_stored_as_data_or_quarantined_and_the_run_finishes(
    simulators, clients_for, warehouse_db, tmp_path
) -> None:
    path, planted = hostile_scenario(tmp_path)
    simulators.load(path)
    clients = clients_for()
    cycle(warehouse_db, clients, path, "hostile")
    with warehouse_db.connect() as conn:
        # nothing was executed: every table is there and full
        assert conn.execute("SELECT count(*) FROM staging.stg_reveni__returns").fetchone()[0] > 100
        assert conn.execute("SELECT count(*) FROM recon.exceptions").fetchone()[0] > 0
        assert conn.execute("SELECT count(*) FROM recon.recon_runs WHERE run_id = 'hostile'").fetchone()[0] == 1
        stored = {r[0] for r in conn.execute("SELECT return_id FROM staging.stg_reveni__returns")}
        quarantined = dict(conn.execute("SELECT natural_key, error FROM raw.quarantine WHERE entity = 'returns'"))
        skus = {r[0] for r in conn.execute("SELECT sku FROM staging.stg_reveni__return_items")}
        memos = {r[0] for r in conn.execute("SELECT memo FROM staging.stg_cin7__credit_notes")}
        missing_id = conn.execute(
            "SELECT count(*) FROM raw.quarantine WHERE entity = 'returns' AND natural_key IS NULL"
        ).fetchone()[0]
    for return_id, what in planted.items():
        assert (return_id in stored) != (return_id in quarantined), (what, return_id)
    assert missing_id == 1
    # SQL metacharacters and unicode are data
    for value in HOSTILE[:4]:
        assert value in skus
        assert value in memos
    # what the warehouse cannot hold is quarantined with its reason, the rest of the batch loaded
    by_what = {what: return_id for return_id, what in planted.items()}
    assert "not a decimal amount" in quarantined[by_what["object amount"]]
    assert "quantity" in quarantined[by_what["text quantity"]]
    assert "refused by the warehouse" in quarantined[by_what["oversized amount"]]
    nul_return = next(
        r
        for r, w in planted.items()
        if w == "hostile sku and name" and r not in stored and "refused by the warehouse" in quarantined.get(r, "")
    )
    assert nul_return
    assert by_what["3000 items"] in stored


FORMATTING = (ast.JoinedStr, ast.BinOp)


def _builds_text(node: ast.expr) -> bool:
    """An f-string, a % or + expression, or a str.format() call: SQL text built from values."""
    if isinstance(node, ast.JoinedStr):
        return any(isinstance(v, ast.FormattedValue) for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod | ast.Add):
        return not all(isinstance(side, ast.Constant) for side in (node.left, node.right))
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "format"
        and isinstance(node.func.value, ast.Constant)
    )


@pytest.mark.unit
def test_every_sql_statement_takes_external_values_as_parameters() -> None:
    """execute / executemany / copy never receive SQL text built with f-strings, % or str.format:
    values go as parameters, identifiers through psycopg.sql."""
    offenders = []
    for source in sorted((ROOT / "include" / "returns_recon").rglob("*.py")):
        tree = ast.parse(source.read_text())
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in {"execute", "executemany", "copy"}
                and node.args
                and _builds_text(node.args[0])
            ):
                offenders.append(f"{source.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []
