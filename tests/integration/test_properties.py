"""Invariants, checked with hypothesis against the real warehouse and simulators:

- applying a posting plan twice (in any order of runs and replays) equals applying it once;
- reconciliation does not depend on the order rows arrive in (nor on how they are batched).

Each example starts from a copy of a prepared database (CREATE DATABASE ... TEMPLATE), so
examples are independent and cheap.
"""

from __future__ import annotations

import json
import random
import uuid
from collections import Counter
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql

from bench.load import JOBS, rows_of
from recon_simulators.generate import location_map_csv_path
from recon_simulators.scenario import read_header_and_records
from returns_recon.extract import entities
from returns_recon.extract.entities import ExtractSummary, load_stream
from returns_recon.extract.run import extract_all
from returns_recon.golive import run_golive_check
from returns_recon.location_map import load_location_map
from returns_recon.postings.execute import execute, quality_gate
from returns_recon.postings.plan import plan
from returns_recon.quality.check import check_warehouse
from returns_recon.reconcile.engine import reconcile
from returns_recon.settings import ReconSettings
from returns_recon.warehouse.migrate import apply_migrations
from tests.fixtures.scenarios import scenario
from tests.fixtures.warehouse import TestDatabase

pytestmark = pytest.mark.integration

SETTINGS = ReconSettings(credit_note_approval_threshold=Decimal("1000000"))
EXAMPLES = settings(
    max_examples=5,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


class Databases:
    """Copies of one prepared database, all owned by one login role."""

    def __init__(self, server, template: TestDatabase) -> None:
        self.server, self.template = server, template

    def copy(self) -> TestDatabase:
        name = f"p_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.server.superuser_dsn(), autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (self.template.dbname,)
            )
            statement = sql.SQL("CREATE DATABASE {} TEMPLATE {} OWNER {}")
            conn.execute(
                statement.format(
                    sql.Identifier(name), sql.Identifier(self.template.dbname), sql.Identifier(self.template.user)
                )
            )
        return TestDatabase(self.template.host, self.template.port, self.template.user, self.template.password, name)

    def drop(self, db: TestDatabase) -> None:
        self.server.drop_database(db.dbname)


def prepared(embedded_server, build) -> Databases:
    name = f"tpl_{uuid.uuid4().hex[:10]}"
    embedded_server.ensure_database(name, name, name)
    template = TestDatabase(embedded_server.host, embedded_server.port, name, name, name)
    with psycopg.connect(template.url, autocommit=True) as conn:
        apply_migrations(conn)
        build(conn, template)
    return Databases(embedded_server, template)


# --- a posting plan applied twice equals it applied once ----------------------------------------------


def documents(simulators, db: TestDatabase) -> Counter:
    """What the simulators hold for every planned posting: (action, reference, document total) counts."""
    with db.connect() as conn:
        rows = conn.execute("SELECT action, reference, payload FROM recon.postings ORDER BY 1, 2").fetchall()
    cin7, sitoo = simulators.cin7_session(), simulators.sitoo_session()
    found: Counter = Counter()
    for action, reference, payload in rows:
        if action == "create_credit_note":
            notes = cin7.get(f"{simulators.cin7}/sale", params={"ID": payload["SaleID"]}, timeout=10).json()[
                "CreditNotes"
            ]
            memo = f"reveni:{payload.get('ReturnID') or reference.split(':')[1]}"
            for note in notes:
                if note.get("Memo") == memo:
                    found[(action, memo, str(note.get("Total")), len(note.get("Restock") or []))] += 1
        elif action.startswith("transfer"):
            listed = cin7.get(f"{simulators.cin7}/stockTransferList", params={"Limit": 1000}, timeout=10).json()[
                "StockTransferList"
            ]
            ours = [t for t in listed if t["Reference"] == payload["Reference"]]
            found.update((action, t["Reference"], t["ToLocation"]) for t in ours)
        elif action == "sitoo_store_stock":
            items = sitoo.get(
                f"{simulators.sitoo_site}/warehousetransactions.json", params={"num": 10000}, timeout=10
            ).json()["items"]
            ours = [t for t in items if t.get("externalid") == reference]
            found.update((action, t["externalid"], t["warehouseid"]) for t in ours)
        else:
            orders = sitoo.get(f"{simulators.sitoo}/orders.json", params={"externalid": reference}, timeout=10)
            found.update((action, o["externalid"]) for o in orders.json()["items"])
    return found


@pytest.fixture(scope="module")
def planned(simulators, embedded_server, tmp_path_factory):
    path = scenario(tmp_path_factory.mktemp("plan"), 5151, returns=150)
    clients_env = simulators.env()

    def build(conn: psycopg.Connection, db: TestDatabase) -> None:
        import os

        from tests.fixtures.simulators import CREDS

        os.environ.update(clients_env)
        from returns_recon.apis.client import RetrySettings
        from returns_recon.extract.run import Clients
        from returns_recon.orchestration.hooks import Cin7CoreHook, ReveniHook, SitooHook

        retry = RetrySettings(initial_wait=0.1, max_wait=1, read_timeout=5)
        clients = Clients(
            ReveniHook(retry=retry).client(),
            Cin7CoreHook(retry=retry).client(),
            SitooHook(retry=retry).client(),
            CREDS.sitoo_site_id,
        )
        simulators.load(path)
        load_location_map(conn, location_map_csv_path(path), "plan")
        extract_all(conn, clients, "plan", "hourly", SETTINGS)
        check_warehouse(conn, db.sqlalchemy_url, "plan", SETTINGS, None)
        reconcile(conn, "plan", SETTINGS, "hourly")
        run_golive_check(conn, clients, SETTINGS, "plan-golive")  # postings are held until it has passed
        quality_gate(conn, "plan")
        plan(conn, "plan", SETTINGS)

    return path, prepared(embedded_server, build)


# A schedule of executor invocations: a full run, or a replay of one planned posting (by index).
steps = st.lists(st.one_of(st.just("run"), st.integers(min_value=0, max_value=200)), min_size=1, max_size=4)


@EXAMPLES
@given(schedule=steps)
def test_applying_the_plan_twice_or_in_any_order_equals_applying_it_once(
    planned, simulators, clients_for, schedule
) -> None:
    path, databases = planned
    clients = clients_for()
    once = databases.copy()
    twice = databases.copy()
    try:
        simulators.load(path)
        with once.connect(autocommit=True) as conn:
            execute(conn, clients, "once", SETTINGS)
        expected = documents(simulators, once)
        assert expected, "the plan posts something"
        assert all(count == 1 for count in expected.values())

        simulators.load(path)
        with twice.connect(autocommit=True) as conn:
            keys = [r[0] for r in conn.execute("SELECT posting_key FROM recon.postings ORDER BY 1")]
            for step in [*schedule, "run", "run"]:
                if step == "run":
                    execute(conn, clients, "again", SETTINGS)
                else:
                    execute(conn, clients, "replay", SETTINGS, [keys[step % len(keys)]])
            statuses = Counter(r[0] for r in conn.execute("SELECT status FROM recon.postings"))
        assert documents(simulators, twice) == expected
        assert set(statuses) <= {"done", "adopted", "refused"}, statuses
    finally:
        databases.drop(once)
        databases.drop(twice)


# --- reconciliation does not depend on the order rows arrive in ---------------------------------------


# what a run found, without the moment it first saw it
EXCEPTIONS = "SELECT exception_key, (evidence - 'first_seen_at')::text FROM recon.exceptions WHERE state = 'open'"
FCT = (
    "SELECT md5(string_agg(f::text, '|' ORDER BY f.item_id)) FROM (SELECT item_id, credit_note_leg, restock_leg, "
    "release_leg, sitoo_record_leg, sitoo_stock_leg, exchange_leg, open_exception_types, overall_status "
    "FROM recon.fct_return_reconciliation) f"
)
JOURNAL = "SELECT md5(string_agg(j::text, '|' ORDER BY j.day, j.currency)) FROM recon.refund_journal j"


def published(db: TestDatabase) -> dict:
    with db.connect() as conn:
        return {
            "exceptions": sorted(conn.execute(EXCEPTIONS).fetchall()),
            "fct": conn.execute(FCT).fetchone()[0],
            "journal": conn.execute(JOURNAL).fetchone()[0],
        }


def load_in_order(db: TestDatabase, path: Path, rng: random.Random | None) -> None:
    _, stream = read_header_and_records(path)
    by_kind: dict[str, list[dict]] = {}
    for kind, record in stream:
        by_kind.setdefault(kind, []).append(json.loads(json.dumps(record), parse_float=Decimal))
    jobs = list(JOBS)
    if rng is not None:
        rng.shuffle(jobs)
    with psycopg.connect(db.url, autocommit=True) as conn:
        for kind, source, entity, model, key, transform in jobs:
            rows = list(by_kind.get(kind, []))
            if rng is not None:
                rng.shuffle(rows)
            rows = [row for r in rows for row in rows_of(r, transform)]
            load_stream(conn, ExtractSummary(source, entity), model, rows, "order", key)
        reconcile(conn, "order", SETTINGS, "daily")


@pytest.fixture(scope="module")
def migrated(embedded_server, tmp_path_factory):
    path = scenario(tmp_path_factory.mktemp("order"), 6161, returns=150)

    def build(conn: psycopg.Connection, _: TestDatabase) -> None:
        load_location_map(conn, location_map_csv_path(path), "order")

    databases = prepared(embedded_server, build)
    reference = databases.copy()
    load_in_order(reference, path, None)
    return path, databases, published(reference)


@EXAMPLES
@given(seed=st.integers(min_value=0, max_value=2**32 - 1), batch=st.sampled_from([1, 7, 50, 1000]))
def test_reconciliation_does_not_depend_on_the_order_rows_arrive_in(migrated, monkeypatch, seed, batch) -> None:
    path, databases, expected = migrated
    monkeypatch.setattr(entities, "BATCH", batch)
    db = databases.copy()
    try:
        load_in_order(db, path, random.Random(seed))
        assert published(db) == expected
    finally:
        databases.drop(db)
