"""Readers never freeze publishing: a `recon_reader` session idle in a transaction is cut off by its
idle timeout while the swap of the published tables retries with a short lock timeout; other readers
are never held up longer than about one lock timeout; a reader sees the previous tables or the new
ones, never an empty or a half-published set; a lock nobody releases fails the run naming its holder.

Timings here are correctness bounds (an order of magnitude above what is expected), not benchmarks.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import psycopg
import pydantic
import pytest
from psycopg import sql

from recon_simulators.generate import location_map_csv_path
from returns_recon.extract.run import extract_all
from returns_recon.location_map import load_location_map
from returns_recon.reconcile import engine
from returns_recon.settings import ReconSettings
from returns_recon.warehouse.migrate import apply_migrations
from tests.fixtures.scenarios import scenario

pytestmark = pytest.mark.integration

IDLE_TIMEOUT = 3.0  # seconds: recon_reader's idle_in_transaction_session_timeout in these tests
LOCK_TIMEOUT = 0.5  # seconds: each attempt of the swap waits this long for its locks
LOCK_WAIT = 10.0  # seconds: the swap retries this long in all
FAST = {
    "RECON_READER_IDLE_TIMEOUT_SECONDS": str(IDLE_TIMEOUT),
    "RECON_PUBLISH_LOCK_TIMEOUT_SECONDS": str(LOCK_TIMEOUT),
    "RECON_PUBLISH_LOCK_WAIT_SECONDS": str(LOCK_WAIT),
}
# generous bounds: a reader waits about one lock timeout at most, the run ends soon after the idle timeout
READER_BOUND = LOCK_TIMEOUT + 5.0
RUN_BOUND = 60.0
# one statement, so one snapshot, over the three published tables
SNAPSHOT = """SELECT (SELECT count(*) FROM recon.fct_return_reconciliation),
                     (SELECT coalesce(sum(refunded), 0) FROM recon.daily_summary),
                     (SELECT coalesce(sum(returns), 0) FROM recon.daily_summary),
                     (SELECT coalesce(sum(reveni_refunded), 0) FROM recon.refund_journal)"""


def settings(**overrides) -> ReconSettings:
    return ReconSettings(credit_note_approval_threshold=Decimal("1000000"), **overrides)


@dataclass
class Published:
    """A database reconciled once (the published tables exist), with the reader role's timeouts of FAST."""

    db: object
    path: Path
    reader_url: str


@pytest.fixture
def published(empty_database, embedded_server, simulators, clients_for, tmp_path, monkeypatch) -> Published:
    for key, value in FAST.items():
        monkeypatch.setenv(key, value)
    # as on a real warehouse, the pipeline's login administers recon_reader (it created it); on the shared test
    # server another test's login may have created the role first
    with psycopg.connect(embedded_server.superuser_dsn(), autocommit=True) as su:
        su.execute("DO $$ BEGIN CREATE ROLE recon_reader NOLOGIN; EXCEPTION WHEN duplicate_object THEN END $$")
        # a login, reached over the server's local socket (trust): its password stays whatever other tests set
        su.execute("ALTER ROLE recon_reader LOGIN")
        su.execute(
            sql.SQL("GRANT recon_reader TO {} WITH ADMIN OPTION, INHERIT FALSE, SET FALSE").format(
                sql.Identifier(empty_database.user)
            )
        )
    with empty_database.connect() as conn:
        apply_migrations(conn)
    db = empty_database
    path = scenario(tmp_path, 9191, returns=120)
    simulators.load(path)
    with psycopg.connect(db.url, autocommit=True) as conn:
        load_location_map(conn, location_map_csv_path(path), "locks-0")
        extract_all(conn, clients_for(), "locks-0", "hourly", settings())
        engine.reconcile(conn, "locks-0", settings(recon_window_days=5), "hourly")
    return Published(db, path, f"host={embedded_server.data_dir} port={db.port} user=recon_reader dbname={db.dbname}")


class Probe(threading.Thread):
    """A reader running ``query`` over and over, timing each from its own side."""

    def __init__(self, conn: psycopg.Connection, query: str = SNAPSHOT) -> None:
        super().__init__(daemon=True)
        self.conn, self.query = conn, query
        self.samples: list[tuple[float, tuple]] = []
        self.errors: list[BaseException] = []
        self.in_flight_since: float | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                self.in_flight_since = time.monotonic()
                row = self.conn.execute(self.query).fetchone()
                self.samples.append((time.monotonic() - self.in_flight_since, row))
                self.in_flight_since = None
                time.sleep(0.02)
        except BaseException as err:  # reported by the test
            self.errors.append(err)

    def longest_wait(self) -> float:
        waits = [took for took, _ in self.samples]
        if self.in_flight_since is not None:
            waits.append(time.monotonic() - self.in_flight_since)
        return max(waits, default=0.0)


class Run(threading.Thread):
    """One reconciliation in a thread, so a run that waits forever fails the test instead of hanging it."""

    def __init__(self, db, run_id: str, recon_settings: ReconSettings) -> None:
        super().__init__(daemon=True)
        self.db, self.run_id, self.settings = db, run_id, recon_settings
        self.result: engine.ReconResult | None = None
        self.error: BaseException | None = None
        self.took: float | None = None

    def run(self) -> None:
        started = time.monotonic()
        try:
            with psycopg.connect(self.db.url, autocommit=True) as conn:
                self.result = engine.reconcile(conn, self.run_id, self.settings, "hourly")
        except BaseException as err:  # reported by the test
            self.error = err
        finally:
            self.took = time.monotonic() - started


def snapshot(url: str) -> tuple:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(SNAPSHOT).fetchone()


def stop_all(probes: list[Probe], *holders: psycopg.Connection, run: Run | None = None) -> None:
    """Release whatever a failing test left waiting, so it fails rather than hangs."""
    for holder in holders:
        holder.close()
    for probe in probes:
        probe.stop.set()
        probe.join(timeout=RUN_BOUND)
        probe.conn.close()
    if run is not None:
        run.join(timeout=RUN_BOUND)


def test_an_idle_reader_neither_freezes_publishing_nor_holds_up_other_readers(published) -> None:
    idle = psycopg.connect(published.reader_url)  # not autocommit: the first SELECT opens a transaction
    probe = Probe(psycopg.connect(published.reader_url, autocommit=True))
    before = snapshot(published.reader_url)
    run = Run(published.db, "locks-1", settings())  # the whole window: more rows than the first run published
    try:
        assert idle.execute("SELECT count(*) FROM recon.fct_return_reconciliation").fetchone()[0] > 0
        # finance's session is now idle in transaction, holding ACCESS SHARE on the published table
        probe.start()
        run.start()
        run.join(timeout=RUN_BOUND)
        waited = probe.longest_wait()
        assert not run.is_alive(), (
            f"the reconciliation did not end within {RUN_BOUND:.0f} s of an idle reader "
            f"(a second reader has been waiting {waited:.1f} s)"
        )
        assert run.error is None, run.error
        assert waited <= READER_BOUND, f"a second reader waited {waited:.1f} s for the publish"
        # let the second reader read at least twice after the publish (on a loaded machine it may lag)
        published_at, deadline = len(probe.samples), time.monotonic() + RUN_BOUND
        while len(probe.samples) < published_at + 2 and probe.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        # it was the idle reader that gave way: its own timeout ended its session
        with pytest.raises(psycopg.Error, match="idle-in-transaction timeout"):
            idle.execute("SELECT 1")
    finally:
        stop_all([probe], idle, run=run)
    assert probe.errors == []
    after = snapshot(published.reader_url)
    assert after != before, "the second run must publish other tables for this test to see the swap"
    seen = {row for _, row in probe.samples}
    assert seen <= {before, after}, "a reader saw an empty or a half-published set of tables"
    assert after in seen, "the second reader never saw the new tables"


def test_readers_see_the_previous_tables_or_the_new_ones_never_a_partial_set(published) -> None:
    probes = [Probe(psycopg.connect(published.reader_url, autocommit=True)) for _ in range(3)]
    before = snapshot(published.reader_url)
    run = Run(published.db, "locks-2", settings())
    try:
        for probe in probes:
            probe.start()
        run.start()
        run.join(timeout=RUN_BOUND)
        time.sleep(0.3)  # the readers read the new tables a few times
        assert not run.is_alive(), f"the reconciliation did not end within {RUN_BOUND:.0f} s"
        assert run.error is None, run.error
    finally:
        stop_all(probes, run=run)
    after = snapshot(published.reader_url)
    assert after != before
    assert (after[1], before[1]) == (after[3], before[3]), "refunds add up in daily_summary and refund_journal"
    for probe in probes:
        assert probe.errors == []
        seen = [row for _, row in probe.samples]
        assert set(seen) <= {before, after}, "a reader saw an empty or a half-published set of tables"
        assert (seen[0], seen[-1]) == (before, after), "every reader saw the old tables, then the new ones"
        assert all(row[0] > 0 for row in seen)


def test_a_lock_held_for_the_whole_retry_window_fails_the_run_naming_its_holder(published) -> None:
    holder = published.db.connect()  # the pipeline's own role: no idle timeout cuts it off
    holder.execute("SET application_name = 'adhoc-analysis'")
    holder.commit()
    holder_pid = holder.info.backend_pid
    holder.execute("SELECT count(*) FROM recon.daily_summary WHERE 'planted-query-text' <> ''").fetchone()
    probe = Probe(psycopg.connect(published.reader_url, autocommit=True))
    before = snapshot(published.reader_url)
    run = Run(published.db, "locks-3", settings())
    try:
        probe.start()
        run.start()
        run.join(timeout=LOCK_WAIT + RUN_BOUND)
        waited = probe.longest_wait()
        assert not run.is_alive(), (
            f"the reconciliation neither published nor gave up within {LOCK_WAIT + RUN_BOUND:.0f} s "
            f"(a reader has been waiting {waited:.1f} s)"
        )
        assert waited <= READER_BOUND, f"a reader waited {waited:.1f} s while publishing retried"
    finally:
        stop_all([probe], holder, run=run)
    assert isinstance(run.error, engine.PublishBlocked), run.error
    message = str(run.error)
    assert LOCK_WAIT <= run.took <= LOCK_WAIT + RUN_BOUND / 2, run.took
    assert f"pid {holder_pid}" in message
    assert f"user {published.db.user}" in message
    assert "idle in transaction since" in message
    assert "adhoc-analysis" in message
    assert "daily_summary" in message
    assert "planted-query-text" not in message, "no query text in the error"
    # nothing of the failed run is published: the previous tables and runs stay
    assert snapshot(published.reader_url) == before
    with published.db.connect() as conn:
        assert conn.execute("SELECT count(*) FROM recon.recon_runs WHERE run_id = 'locks-3'").fetchone() == (0,)
    assert probe.errors == []


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"reader_idle_timeout_seconds": 600, "publish_lock_wait_seconds": 300}, "RECON_PUBLISH_LOCK_WAIT_SECONDS"),
        ({"publish_lock_timeout_seconds": 0}, "publish_lock_timeout_seconds"),
        ({"reader_idle_timeout_seconds": 0}, "reader_idle_timeout_seconds"),
    ],
)
def test_timeouts_that_cannot_work_are_refused_at_once(values, named) -> None:
    with pytest.raises(pydantic.ValidationError, match=named):
        ReconSettings(**values)


def test_the_reader_timeout_follows_the_setting_at_migrate_time(published, monkeypatch) -> None:
    def reader_timeout() -> str:
        with psycopg.connect(published.reader_url) as reader:  # role settings apply to new sessions
            return reader.execute("SHOW idle_in_transaction_session_timeout").fetchone()[0]

    assert reader_timeout() == "3s"
    monkeypatch.setenv("RECON_READER_IDLE_TIMEOUT_SECONDS", "120")
    monkeypatch.setenv("RECON_PUBLISH_LOCK_WAIT_SECONDS", "200")
    with published.db.connect() as conn:
        assert apply_migrations(conn) == []
    assert reader_timeout() == "2min"
    with published.db.connect() as conn:  # the pipeline's own sessions are not cut off
        assert conn.execute("SHOW idle_in_transaction_session_timeout").fetchone() == ("0",)
