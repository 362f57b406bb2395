"""Each fact has one home per language, and the homes agree: the references our documents carry
(returns_recon.references and migration 0019's functions), which exception states are open (returns_recon.states
and recon.is_open, migration 0020), the sale field a return is matched on (staging.sale_match_value, which the
planner folds into the column's index lookup). And migration 0020's views, rebuilt on those functions, give the rows
the views of migrations 0016 and 0018 gave, on a reconciled scenario."""

from __future__ import annotations

import re
import typing

import psycopg
import pytest
from psycopg import sql

from returns_recon import references
from returns_recon.reconcile.engine import set_state
from returns_recon.settings import ReconSettings
from returns_recon.states import EXCEPTION_STATES, OPEN_STATES
from returns_recon.warehouse.migrate import MIGRATIONS_DIR
from tests.fixtures.pipeline import cycle
from tests.fixtures.scenarios import scenario

pytestmark = pytest.mark.integration

IDS = ["r-1", "4f0c2a9e-0b1d-4e7a-9c3e-1a2b3c4d5e6f", "", "50%_off", "ünï", "with space", "a:b"]
# the ids an item reference can carry and be read back from: none with the separators ':' (of return and item) and
# ' ' (of a transfer's suffix); Reveni's are UUIDs
ITEM_IDS = [i for i in IDS if ":" not in i and " " not in i]
MEMOS = [None, "", "by hand", "reveni:", "reveni:r-1", "Reveni:r-1", "reveni-exchange:r-1", " reveni:r-1", "xreveni:r"]
# the Cin7 Core field each setting names, and its staged column (an oracle for the test only)
SALE_FIELDS = {"CustomerReference": "customer_reference", "ExternalID": "external_id", "OrderNumber": "order_number"}
VIEWS = ("exception_details", "money_at_risk_by_return", "money_at_risk")


def _one(conn: psycopg.Connection, query: str, params: tuple = ()) -> typing.Any:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


def test_the_python_references_are_the_sql_functions(warehouse_db) -> None:
    with warehouse_db.connect() as conn:
        for rid in IDS:
            assert references.credit_note_memo(rid) == _one(conn, "SELECT staging.credit_note_memo(%s)", (rid,))
        for rid in ITEM_IDS:
            for iid in ITEM_IDS:
                item = references.item_reference(rid, iid)
                assert item == _one(conn, "SELECT staging.item_reference(%s, %s)", (rid, iid))
                transfer = references.transfer_reference(rid, iid, "transfer_to_sellable#0123456789ab")
                # what Python writes on a transfer, the reconciliation reads back as this return's item
                read = conn.execute(
                    """SELECT split_part(%(t)s, ' ', 1), staging.return_of_item_reference(split_part(%(t)s, ' ', 1)),
                              staging.item_of_item_reference(split_part(%(t)s, ' ', 1))""",
                    {"t": transfer},
                ).fetchone()
                assert read == (references.item_reference_of_transfer(transfer), rid, iid)
        for memo in [*MEMOS, *(references.credit_note_memo(rid) for rid in IDS)]:
            assert references.return_of_memo(memo) == _one(conn, "SELECT staging.return_of_memo(%s)", (memo,)), memo


def test_the_open_states_are_recon_is_open_for_every_state_the_queue_allows(warehouse_db) -> None:
    with warehouse_db.connect() as conn:
        checks = [
            definition
            for (definition,) in conn.execute(
                """SELECT pg_get_constraintdef(oid) FROM pg_constraint
                   WHERE conrelid = 'recon.exceptions'::regclass AND contype = 'c'"""
            )
            if "state" in definition
        ]
        assert len(checks) == 1, checks
        allowed = re.findall(r"'(\w+)'::text", checks[0])
        assert sorted(allowed) == sorted(EXCEPTION_STATES)
        for state in allowed:
            assert _one(conn, "SELECT recon.is_open(%s)", (state,)) is (state in OPEN_STATES), state
        # inlined by the planner: the queue's index on (state, owner) still serves the open exceptions
        conn.execute("SET enable_seqscan = off")
        plan = "\n".join(
            r[0] for r in conn.execute("EXPLAIN SELECT count(*) FROM recon.exceptions WHERE recon.is_open(state)")
        )
    assert "exceptions_state" in plan, plan
    assert "recon.is_open" not in plan, plan


def test_the_sale_match_value_of_every_setting_is_its_column_and_uses_its_index(warehouse_db) -> None:
    settings = typing.get_args(ReconSettings.model_fields["sale_match_field"].annotation)
    assert sorted(settings) == sorted(SALE_FIELDS)
    with warehouse_db.connect() as conn:
        conn.execute(
            """INSERT INTO staging.stg_cin7__sales (sale_id, customer_reference, external_id, order_number,
                                                   customer_currency, updated_at, _run_id)
               VALUES ('s-1', 'the reference', 'the external id', 'SO-1', 'EUR', now(), 'run')"""
        )
        conn.execute("SET enable_seqscan = off")
        for field in settings:
            staged = _one(conn, f"SELECT {SALE_FIELDS[field]} FROM staging.stg_cin7__sales")
            value = "SELECT staging.sale_match_value(s, %s) FROM staging.stg_cin7__sales AS s"
            assert _one(conn, value, (field,)) == staged, field
            lookup = (
                "EXPLAIN SELECT sale_id FROM staging.stg_cin7__sales AS s WHERE staging.sale_match_value(s, {}) = 'x'"
            )
            plan = "\n".join(r[0] for r in conn.execute(sql.SQL(lookup).format(sql.Literal(field))))
            assert f"Index Cond: ({SALE_FIELDS[field]} = 'x'::text)" in plan, plan


def _statement(name: str, start: str, end: str) -> str:
    text = next(MIGRATIONS_DIR.glob(f"{name}_*.sql")).read_text()
    begin = text.index(start)
    return text[begin : text.index(end, begin) + len(end)]


def _earlier_views(schema: str) -> list[str]:
    """The views as migrations 0016 and 0018 created them, in ``schema``."""
    views = [
        _statement("0016", "CREATE VIEW recon.exception_details AS", "\n) event;"),
        _statement("0018", "CREATE VIEW recon.money_at_risk_by_return AS", ";"),
        _statement("0018", "CREATE VIEW recon.money_at_risk AS", ";"),
    ]
    return [re.sub(rf"recon\.({'|'.join(VIEWS)})\b", rf"{schema}.\1", view) for view in views]


@pytest.fixture
def reconciled(simulators, clients_for, warehouse_db, tmp_path):
    """A warehouse after one hourly cycle (postings sent) of a scenario with every kind of exception; of those with
    money at risk, one acknowledged and one resolved by a person, one auto-resolved (as a run does)."""
    path = scenario(tmp_path, 2020, returns=200)
    simulators.load(path)
    cycle(warehouse_db, clients_for(), path, "one-home-1")
    with warehouse_db.connect(autocommit=True) as conn:
        keys = [
            key
            for (key,) in conn.execute(
                "SELECT exception_key FROM recon.exception_details WHERE money_at_risk <> 0 ORDER BY 1 LIMIT 3"
            )
        ]
        assert len(keys) == 3
        set_state(conn, keys[0], "acknowledged", "ana@finance")
        set_state(conn, keys[1], "resolved", "ana@finance", "credited by phone")
        conn.execute("UPDATE recon.exceptions SET state = 'auto_resolved' WHERE exception_key = %s", (keys[2],))
    return warehouse_db


def test_the_views_rebuilt_on_the_functions_give_the_rows_of_their_first_definitions(reconciled) -> None:
    with reconciled.connect() as conn:
        conn.execute("CREATE SCHEMA earlier")
        for view in _earlier_views("earlier"):
            conn.execute(view)
        for view in VIEWS:
            now = conn.execute(f"SELECT * FROM recon.{view} LIMIT 0")
            columns = [(c.name, c.type_code) for c in now.description or ()]
            then = conn.execute(f"SELECT * FROM earlier.{view} LIMIT 0")
            assert columns == [(c.name, c.type_code) for c in then.description or ()], view
            # one statement: now() (age_days) is the same on both sides
            differ = conn.execute(
                f"""SELECT (SELECT count(*) FROM (TABLE recon.{view} EXCEPT ALL TABLE earlier.{view}) AS gained),
                           (SELECT count(*) FROM (TABLE earlier.{view} EXCEPT ALL TABLE recon.{view}) AS lost),
                           (SELECT count(*) FROM recon.{view})"""
            ).fetchone()
            assert differ is not None
            assert differ[:2] == (0, 0), (view, differ)
            assert differ[2] > 0, f"{view} is empty: nothing compared"
        # the rows compared reach every part the functions replaced
        reached = conn.execute(
            """SELECT count(*) FILTER (WHERE credit_note_numbers IS NOT NULL),
                      count(*) FILTER (WHERE transfer_numbers IS NOT NULL),
                      count(*) FILTER (WHERE sitoo_transaction_ids IS NOT NULL),
                      count(*) FILTER (WHERE stock_found_at IS NOT NULL),
                      count(*) FILTER (WHERE cin7_sale_id IS NOT NULL),
                      count(*) FILTER (WHERE cin7_exchange_order_number IS NOT NULL),
                      count(DISTINCT state) FILTER (WHERE money_at_risk <> 0) = 4
               FROM recon.exception_details"""
        ).fetchone()
    assert reached is not None
    assert all(reached), reached
