"""The fault suite: full hourly and daily runs (extract, checks, reconcile, plan and post) against
the simulators with each fault switched on alone, then all together. After each, a settling run
without faults; the result must equal the fault-free run: the same rows in staging, the same open
exceptions, no document posted twice in the simulators, every return published or quarantined.

Run by ``make chaos`` (part of ``make test``), serially, so the tally prints:
faults injected, runs survived, duplicates found (0), records lost (0).
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from returns_recon.apis.client import RetrySettings
from returns_recon.golive import CHECKS, OFF_CONTRACT, run_golive_check
from returns_recon.postings.execute import execute, quality_gate
from returns_recon.postings.plan import plan
from returns_recon.warehouse.migrate import apply_migrations
from tests.fixtures.pipeline import ROOT, SETTINGS, cycle, execute_killed_after_first_send
from tests.fixtures.scenarios import scenario
from tests.fixtures.warehouse import TestDatabase

pytestmark = [pytest.mark.integration, pytest.mark.faults]

RECOVERY = SETTINGS.model_copy(update={"trailing_days": 60})
RETRY = RetrySettings(initial_wait=0.1, max_wait=1, read_timeout=1.5)
API = ("reveni", "cin7", "sitoo")
# each fault alone: the simulators' settings per service ("all" = every API)
API_FAULTS = {
    "cin7 throttle 429": {"cin7": {"rate_limit_per_minute": 30, "throttle_form": "429"}},
    "cin7 throttle 503": {"cin7": {"rate_limit_per_minute": 30, "throttle_form": "503"}},
    "cin7 throttle 400": {"cin7": {"rate_limit_per_minute": 30, "throttle_form": "400"}},
    "sitoo 429 bursts": {"sitoo": {"rate_limit_per_minute": 3}},
    "5xx bursts": {"all": {"error_rate_5xx": 0.15}},
    "timeouts": {"all": {"timeout_rate": 0.05, "timeout_seconds": 2}},
    "connection resets": {"all": {"reset_rate": 0.1}},
    "HTML with HTTP 200": {"all": {"html_rate": 0.1}},
    "rows shifting between pages": {"all": {"shift_rate": 0.5}},
    "duplicate rows": {"all": {"duplicate_rate": 0.5}},
    "malformed records": {"all": {"malformed_rate": 0.1}},
}
OTHER_FAULTS = ("late-arriving update", "warehouse connection dropped mid-load", "executor killed after a call")
ALL_TOGETHER = "all together"


@dataclass
class Tally:
    faults_injected: Counter = field(default_factory=Counter)
    runs: int = 0
    runs_survived: int = 0
    duplicates: int = 0
    records_lost: int = 0

    def report(self) -> str:
        lines = [f"  {name:<40} {count:>6}" for name, count in sorted(self.faults_injected.items())]
        return "\n".join([
            "fault suite tally", *lines,
            f"  faults injected {sum(self.faults_injected.values())}, runs {self.runs}, "
            f"runs survived {self.runs_survived}, duplicates found {self.duplicates}, records lost {self.records_lost}",
        ])  # fmt: skip


# --- the pipeline, as the DAG tasks run it -----------------------------------------------------------


def attempt(tally: Tally, step, retries: int = 3) -> None:
    """A task with Airflow's retries: a failed attempt is run again."""
    tally.runs += 1
    for number in range(retries + 1):
        try:
            step()
            tally.runs_survived += 1
            return
        except (psycopg.OperationalError, subprocess.CalledProcessError):
            if number == retries:
                raise


# --- reading the outcome ---------------------------------------------------------------------------


# Assigned by the APIs when we post (ids, document numbers) or by their clocks: they differ between
# two runs of the same postings, so staging is compared on everything else.
GENERATED = {"task_id", "credit_note_number", "number", "transaction_id", "order_id", "_run_id"}
COLUMNS = """SELECT table_name, column_name FROM information_schema.columns
             WHERE table_schema = 'staging' AND data_type NOT LIKE 'timestamp%%' AND data_type <> 'date'
               AND table_name IN (SELECT table_name FROM information_schema.tables
                                  WHERE table_schema = 'staging' AND table_type = 'BASE TABLE')
             ORDER BY table_name, ordinal_position"""


DIGEST = sql.SQL(
    "SELECT count(*), md5(coalesce(string_agg(r, '|' ORDER BY r), '')) FROM (SELECT {row} AS r FROM staging.{table}) t"
)


def staging_rows(conn: psycopg.Connection) -> dict[str, str]:
    """Per staging table: the row count and a digest of its rows (without generated ids and times)."""
    columns: dict[str, list[str]] = {}
    for table, column in conn.execute(COLUMNS):
        if column not in GENERATED:
            columns.setdefault(table, []).append(column)
    result = {}
    for table, names in columns.items():
        row = sql.SQL("ROW({})::text").format(sql.SQL(", ").join(map(sql.Identifier, names)))
        count, digest = conn.execute(DIGEST.format(row=row, table=sql.Identifier(table))).fetchone()
        result[table] = f"{count}:{digest}"
    return result


OPEN = "SELECT exception_key FROM recon.exceptions WHERE state IN ('open', 'acknowledged') ORDER BY 1"
PUBLISHED = "SELECT DISTINCT return_id FROM recon.fct_return_reconciliation"
QUARANTINED = ("SELECT return_id FROM recon.exceptions WHERE exception_type = 'invalid_record' "
               "AND return_id IS NOT NULL AND state = 'open'")  # fmt: skip


def outcome(db: TestDatabase) -> dict:
    with db.connect() as conn:
        return {
            "staging": staging_rows(conn),
            "open": [r[0] for r in conn.execute(OPEN)],
            "published": {r[0] for r in conn.execute(PUBLISHED)},
            "invalid": {r[0] for r in conn.execute(QUARANTINED)},
        }


def duplicates_posted(simulators, db: TestDatabase) -> int:
    """Documents carrying one of our references more than once, read from the simulators' state."""
    with db.connect() as conn:
        postings = conn.execute("SELECT action, reference, payload FROM recon.postings").fetchall()
    found = 0
    cin7, sitoo = simulators.cin7_session(), simulators.sitoo_session()
    transfers = cin7.get(f"{simulators.cin7}/stockTransferList", params={"Limit": 1000},
                         timeout=10).json()["StockTransferList"]  # fmt: skip
    by_reference = Counter(t["Reference"] for t in transfers)
    stock = sitoo.get(f"{simulators.sitoo_site}/warehousetransactions.json", params={"num": 10000}, timeout=10).json()
    by_external = Counter(t.get("externalid") for t in stock["items"])
    for action, reference, payload in postings:
        if action == "create_credit_note":
            notes = cin7.get(f"{simulators.cin7}/sale/creditnote", params={"SaleID": payload["SaleID"]},
                             timeout=10).json()["CreditNotes"]  # fmt: skip
            memo = f"reveni:{payload.get('ReturnID') or reference.split(':')[1]}"
            found += max(0, sum(1 for n in notes if n.get("Memo") == memo) - 1)
        elif action.startswith("transfer"):
            found += max(0, by_reference[payload["Reference"]] - 1)
        elif action == "sitoo_store_stock":
            found += max(0, by_external[reference] - 1)
        else:
            orders = sitoo.get(f"{simulators.sitoo}/orders.json", params={"externalid": reference}, timeout=10)
            found += max(0, len(orders.json()["items"]) - 1)
    return found


# --- one case -----------------------------------------------------------------------------------------


def new_db(embedded_server) -> TestDatabase:
    name = f"f_{uuid.uuid4().hex[:12]}"
    embedded_server.ensure_database(name, name, name)
    db = TestDatabase(embedded_server.host, embedded_server.port, name, name, name)
    with db.connect() as conn:
        apply_migrations(conn)
    return db


def late_update(simulators, path: Path, db: TestDatabase | None) -> None:
    """A change to a return: stamped two hours behind our watermark when ``db`` has one (late), else now."""
    document = json.loads(path.read_text())
    ret = next(r for r in document["reveni"]["returns"] if r["status"] == "accepted" and r["currency"])
    at = None
    if db is not None:
        with db.connect() as conn:
            watermark = conn.execute("SELECT watermark FROM raw.extract_watermarks "
                                     "WHERE source = 'reveni' AND entity = 'returns'").fetchone()[0]  # fmt: skip
        at = datetime.fromtimestamp(datetime.fromisoformat(watermark).timestamp() - 7200, UTC).isoformat()
    simulators.upsert("reveni.returns", {**ret, "refund_method": "store_credit"}, at=at)


def set_faults(simulators, spec: dict[str, dict]) -> None:
    for service in API:
        config = spec.get(service) or spec.get("all") or {}
        simulators.faults(service, **config, seed=7)


def injected(simulators) -> int:
    counters = simulators.counters()
    return sum(c["total_throttled"] + sum(c["faults"].values()) for c in counters.values())


def run_case(name: str, simulators, clients_for, embedded_server, path: Path, tally: Tally) -> dict:
    db = new_db(embedded_server)
    simulators.load(path)
    simulators.clock(speed=60)  # throttle windows pass in a second
    clients = clients_for(retry=RETRY)
    spec = {}
    if name in API_FAULTS:
        spec = API_FAULTS[name]
    elif name == ALL_TOGETHER:
        spec = {"cin7": {**API_FAULTS["cin7 throttle 429"]["cin7"]}, "sitoo": {"rate_limit_per_minute": 3},
                "all": {}}  # fmt: skip
        shared = {k: v for faults in API_FAULTS.values() if "all" in faults for k, v in faults["all"].items()}
        spec = {service: {**shared, **spec.get(service, {})} for service in API}
    late = name in ("late-arriving update", ALL_TOGETHER)
    drop = name in ("warehouse connection dropped mid-load", ALL_TOGETHER)
    kill = name in ("executor killed after a call", ALL_TOGETHER)
    if not late:
        late_update(simulators, path, None)
    if drop:
        with db.connect() as conn:
            install_connection_drop(conn)
    with db.connect(autocommit=True) as conn:  # the merchant went live before this day of faults
        golive = run_golive_check(conn, clients, SETTINGS, f"{name}-golive",
                                  checks=[c for c in CHECKS if c.id not in OFF_CONTRACT])  # fmt: skip
    assert golive.held == {}, golive.render()
    simulators.counters(reset=True)
    set_faults(simulators, spec)
    if kill:
        attempt(tally, lambda: hourly_with_kill(db, clients, path, simulators, tally))
    else:
        attempt(tally, lambda: cycle(db, clients, path, f"{name}-hourly"))
    if drop:
        with db.connect() as conn:
            tally.faults_injected["warehouse connection dropped mid-load"] += connection_drops(conn)
    if late:
        late_update(simulators, path, db)
        tally.faults_injected["late-arriving update"] += 1
    attempt(tally, lambda: cycle(db, clients, path, f"{name}-daily", mode="daily"))
    count = injected(simulators)
    with db.connect() as conn:  # before settling: what the faults kept out
        quarantined = conn.execute("SELECT count(*) FROM raw.quarantine WHERE superseded_at IS NULL").fetchone()[0]
    for label in spec and [name if name != ALL_TOGETHER else "all API faults together"]:
        tally.faults_injected[label] += count
    set_faults(simulators, {})
    # settling: the recovery on call runs (operations.md): a daily run whose trailing window covers
    # the records a fault kept out (quarantined ones are read again once the source serves them well)
    attempt(tally, lambda: cycle(db, clients, path, f"{name}-settle", RECOVERY, mode="daily"))
    result = outcome(db)
    result["duplicates"] = duplicates_posted(simulators, db)
    result["api_faults"] = count
    result["quarantined"] = quarantined
    return result


def install_connection_drop(conn: psycopg.Connection) -> None:
    """The first write of Cin7 sales into staging kills its own session: the warehouse connection
    lost in the middle of a load. A sequence (not rolled back with the session) makes it once."""
    conn.execute("CREATE SEQUENCE public.fault_drop_seq")
    conn.execute("""
        CREATE FUNCTION public.fault_drop_connection() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF nextval('public.fault_drop_seq') = 1 THEN
                PERFORM pg_terminate_backend(pg_backend_pid());
            END IF;
            RETURN NULL;
        END $$""")  # fmt: skip
    conn.execute("CREATE TRIGGER fault_drop AFTER INSERT OR UPDATE ON staging.stg_cin7__sales "
                 "FOR EACH STATEMENT EXECUTE FUNCTION public.fault_drop_connection()")  # fmt: skip


def connection_drops(conn: psycopg.Connection) -> int:
    return int(conn.execute("SELECT is_called FROM public.fault_drop_seq").fetchone()[0])


def hourly_with_kill(db: TestDatabase, clients, path: Path, simulators, tally: Tally) -> None:
    """The hourly run, its posting task killed (SIGKILL) right after its first call, then retried."""
    cycle(db, clients, path, "kill-hourly", post=False)
    with psycopg.connect(db.url, autocommit=True) as conn:
        quality_gate(conn, "kill-hourly")
        plan(conn, "kill-hourly", SETTINGS)
    execute_killed_after_first_send(db, simulators, "kill-hourly")
    tally.faults_injected["executor killed after a call"] += 1
    with psycopg.connect(db.url, autocommit=True) as conn:  # Airflow's retry of the posting task
        execute(conn, clients, "kill-hourly", SETTINGS)


# --- the suite ----------------------------------------------------------------------------------------


def test_every_fault_alone_and_all_together_loses_nothing_and_posts_nothing_twice(
    simulators, clients_for, embedded_server, tmp_path
) -> None:
    path = scenario(tmp_path, 4242, returns=120)
    returns = {r["id"] for r in json.loads(path.read_text())["reveni"]["returns"]}
    tally = Tally()
    baseline = run_case("fault-free", simulators, clients_for, embedded_server, path, tally)
    assert baseline["duplicates"] == 0
    assert baseline["published"] | baseline["invalid"] == returns
    mismatches = {}
    for name in [*API_FAULTS, *OTHER_FAULTS, ALL_TOGETHER]:
        result = run_case(name, simulators, clients_for, embedded_server, path, tally)
        tally.duplicates += result["duplicates"]
        if name in ("malformed records", ALL_TOGETHER):
            tally.faults_injected["malformed records"] += result["quarantined"] - baseline["quarantined"]
        lost = returns - result["published"] - result["invalid"]
        tally.records_lost += len(lost)
        differences = [part for part in ("open", "published") if result[part] != baseline[part]]
        staging = baseline["staging"]
        differences += [f"staging.{t}" for t in staging if result["staging"].get(t) != staging[t]]
        if differences or lost or result["duplicates"]:
            mismatches[name] = {"differs": differences, "lost": sorted(lost)[:5], "duplicates": result["duplicates"]}
    print("\n" + tally.report())
    print(json.dumps(mismatches, indent=1))
    (ROOT / ".local").mkdir(exist_ok=True)
    (ROOT / ".local" / "fault-suite-tally.txt").write_text(tally.report() + "\n")
    assert mismatches == {}
    assert tally.duplicates == 0
    assert tally.records_lost == 0
    assert tally.runs_survived == tally.runs
    for name in [*API_FAULTS, *OTHER_FAULTS]:
        assert tally.faults_injected[name] > 0, f"{name}: the fault was actually injected"
