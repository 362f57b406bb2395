"""A model run on a few given rows in a fresh warehouse, as a person would paste it into psql: int_items (every leg's
state of an item, stated once, read by detection and publication) over hand-made upstream rows; the same text with
the values bound, as the engine runs it, gives the same rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from returns_recon.reconcile.sql import load

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC)
LONG_AGO = NOW - timedelta(days=5)  # past both SLAs (48 h and 72 h below)
JUST_NOW = NOW - timedelta(hours=1)
SLAS = {"release_sla": "48 hours", "restock_sla": "72 hours"}

# the returns: kind, map_ok, sale_id, received_at, holding, sellable, Sitoo warehouse, exchange order and status
RETURNS = [
    ("W1", "warehouse", True, "S1", LONG_AGO, "Holding", "Sellable", None, None, None),
    ("W2", "warehouse", True, "S2", None, "Holding", "Sellable", None, None, None),
    ("W3", "warehouse", False, "S3", LONG_AGO, None, None, None, None, None),
    ("S1", "store", True, None, LONG_AGO, None, None, 7, None, None),
    ("X1", "warehouse", True, "S4", LONG_AGO, "Holding", "Sellable", None, "S9", "AUTHORISED"),
]
# the items: return, SKU, quantity, exchange SKU, validation, restock, validated at
ITEMS = [
    ("i-overdue", "W1", "A", 1, None, "accepted", True, LONG_AGO),
    ("i-released", "W1", "B", 2, None, "accepted", True, JUST_NOW),
    ("i-missing", "W1", "C", 1, None, "pending", None, None),
    ("i-unknown", "W1", "NOPE", 1, None, "accepted", True, LONG_AGO),
    ("i-not-received", "W2", "A", 1, None, "pending", None, None),
    ("i-unmapped", "W3", "A", 1, None, "accepted", True, LONG_AGO),
    ("i-store-missing", "S1", "A", 1, None, "accepted", True, LONG_AGO),
    ("i-store-elsewhere", "S1", "B", 1, None, "accepted", True, LONG_AGO),
    ("i-store-pending", "S1", "C", 1, None, "accepted", True, JUST_NOW),
    ("i-exchange", "X1", "A", 1, "A-L", "accepted", True, JUST_NOW),
    ("i-exchange-wanted", "W2", "B", 1, "B-L", "pending", None, None),
]
# restock lines by return and SKU (to holding, to sellable, elsewhere); transfers and Sitoo transactions by item
RESTOCKS = [("W1", "A", 1, 0, 0), ("W1", "B", 2, 0, 0), ("X1", "A", 1, 0, 0)]
REFERENCES = [
    # return, item, into sellable, out of sellable, first release, Sitoo transactions, at mapped, elsewhere
    ("W1", "i-released", 1, 0, JUST_NOW, 0, None, None),
    ("S1", "i-store-elsewhere", 0, 0, None, 1, False, True),
]
# the states each leg shows: restock, release, Sitoo stock, exchange
EXPECTED = {
    "i-overdue": ("ok", "overdue", "not_applicable", "not_applicable"),
    "i-released": ("ok", "released", "not_applicable", "not_applicable"),
    "i-missing": ("missing", "not_due", "not_applicable", "not_applicable"),
    "i-unknown": ("blocked", "blocked", "not_applicable", "not_applicable"),
    "i-not-received": ("not_due", "not_due", "not_applicable", "not_applicable"),
    "i-unmapped": ("blocked", "blocked", "not_applicable", "not_applicable"),
    "i-store-missing": ("not_applicable", "not_applicable", "missing", "not_applicable"),
    "i-store-elsewhere": ("not_applicable", "not_applicable", "wrong_location", "not_applicable"),
    "i-store-pending": ("not_applicable", "not_applicable", "pending", "not_applicable"),
    "i-exchange": ("ok", "pending", "not_applicable", "authorised"),
    "i-exchange-wanted": ("not_due", "not_due", "not_applicable", "missing"),
}
LEGS = "SELECT item_id, restock_leg, release_leg, sitoo_stock_leg, exchange_leg FROM ({}) AS m ORDER BY item_id"


def given_rows(conn) -> None:
    """The upstream models as tables of a scratch schema (first on the search path), the staging rows inserted."""
    conn.execute("CREATE SCHEMA scratch")
    conn.execute("SET search_path = scratch")
    conn.execute(
        """CREATE TABLE int_returns (return_id text, kind text, map_ok boolean, sale_id text, received_at timestamptz,
               holding text, sellable text, sitoo_warehouse_id integer, exchange_sale_id text,
               exchange_order_status text)"""
    )
    conn.cursor().executemany("INSERT INTO int_returns VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", RETURNS)
    conn.execute(
        "CREATE TABLE int_item_restocks (return_id text, sku text, to_holding int, to_sellable int, elsewhere int)"
    )
    conn.cursor().executemany("INSERT INTO int_item_restocks VALUES (%s, %s, %s, %s, %s)", RESTOCKS)
    conn.execute(
        """CREATE TABLE int_item_references (return_id text, item_id text, into_sellable bigint,
               out_of_sellable bigint, first_release_at timestamptz, sitoo_transactions bigint,
               sitoo_at_mapped boolean, sitoo_elsewhere boolean, sitoo_first_at timestamptz)"""
    )
    conn.cursor().executemany(
        "INSERT INTO int_item_references VALUES (%s, %s, %s, %s, %s, %s, %s, %s, NULL)", REFERENCES
    )
    conn.cursor().executemany(
        """INSERT INTO staging.stg_reveni__return_items (item_id, return_id, line_no, sku, quantity, exchange_sku,
               validation_status, restock, validated_at) VALUES (%s, %s, 1, %s, %s, %s, %s, %s, %s)""",
        ITEMS,
    )
    for sku in ("A", "B", "C"):
        conn.execute(
            "INSERT INTO staging.stg_cin7__products (product_id, sku, _run_id) VALUES (%(sku)s, %(sku)s, 't')",
            {"sku": sku},
        )
        conn.execute(
            "INSERT INTO staging.stg_sitoo__products (product_id, sku, _run_id) VALUES (ascii(%(sku)s), %(sku)s, 't')",
            {"sku": sku},
        )


def test_item_legs_of_a_few_given_rows_as_pasted_into_psql(warehouse_db) -> None:
    model = load("models/int_items")
    with warehouse_db.connect() as conn, conn.transaction(force_rollback=True):
        given_rows(conn)
        pasted = model.render(SLAS)  # what `python -m returns_recon.reconcile.sql render` prints, without the ;
        rows = conn.execute(LEGS.format(pasted)).fetchall()  # no parameters: run as psql would
        bound = conn.execute(LEGS.format(model.text), model.values(SLAS)).fetchall()  # as the engine runs it
    assert {item: legs for item, *legs in rows} == {item: list(legs) for item, legs in EXPECTED.items()}
    assert bound == rows
