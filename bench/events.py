"""``make bench-events``: webhook events through a running local Airflow, measured from the warehouse.

A local stack of its own (``local_stack``: embedded warehouse, simulators, SMTP sink, Airflow's API server,
scheduler, DAG processor and triggerer) on free loopback ports, its data in ``.local/bench-events``
(``RECON_LOCAL_DIR``/bench-events), stopped at the end (and on Ctrl-C or SIGTERM); the settings of a live
deployment with its safety valves opened for the bench: postings not dry-run, the credit-note approval threshold
and the postings cap high, ``RECON_GOLIVE_OVERRIDE='["cin7"]'``, webhooks delivered at once.

1. A scenario (the generator, ``refund_without_credit_note`` planted on 70% of the returns, nothing else, no
   messy shapes, no scheduled events). The events are its planted returns alone on their order, whose answer key
   is exactly that exception: an instant return, refunded while in progress or shipped, with no credit note in
   Cin7 Core. Before the bench they are made consistent in the simulator (their refunds taken away: a return
   not refunded yet needs no credit note), then one hourly run (``airflow dags test`` through
   ``local_stack.dag_test``) loads everything and finds them clean, so staging and the queue are warm.
2. Airflow starts (the batch DAGs paused, as they are created; the events DAG unpaused), the simulators subscribe
   the receiver (``local_stack.webhooks``), and one warm-up event goes through the whole path.
3. ``BENCH_EVENTS`` (300) events, one every ``BENCH_EVENTS_INTERVAL`` seconds (1): each return's refund paid
   again through ``/_sim/upsert``, which Reveni announces with a signed ``return.updated`` webhook. The event
   breaks ``refund_without_credit_note`` (spec §2: a paid refund needs exactly one AUTHORISED credit note), whose
   auto-fix is the credit note (§4; nothing blocks it: the sale exists and matches, the amount is under the
   threshold). Some Reveni deliveries come with a forged, a replayed, a stale or an oversized extra send
   (``/_sim/webhooks/misbehave``), and so do the first Cin7 Core deliveries (the echo of our own credit notes).
4. The warehouse is polled every second until every event's exception and posting are seen, at most
   ``BENCH_EVENTS_WAIT`` seconds (180) after the last event.

Results (``bench/results/events.json``, printed with their targets): ``event_to_exception_p95_seconds`` (event
sent → its ``refund_without_credit_note`` row visible in ``recon.exceptions``), ``event_to_posting_p95_seconds``
(event sent → its ``create_credit_note`` recorded done in ``recon.postings``), ``events_lost`` (events whose
exception never appeared), ``forged_accepted`` (forged deliveries answered 2xx or stored in the inbox),
``replayed_processed_twice`` (replayed events with any sign of a second processing: two inbox rows, their row in
two events runs' processed lists, two postings or two sends for their return, two credit notes in Cin7 Core), and
where the time goes (delivery, inbox to processed, the events DAG's runs and tasks). Environment: BENCH_EVENTS (300),
BENCH_EVENTS_INTERVAL (1), BENCH_EVENTS_WAIT (180), BENCH_EVENTS_RETURNS (700), BENCH_EVENTS_SEED (20),
BENCH_EVENTS_FORGED and BENCH_EVENTS_REPLAYED (a tenth of the events each). docs/performance.md, "Events".
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import platform
import re
import shutil
import statistics
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import requests
from dotenv import dotenv_values
from psycopg.rows import dict_row

from local_stack import airflow_services, stack, webhooks
from local_stack.env import ROOT, project_env
from local_stack.settings import api_url, local_dir, run_dir, warehouse_conn
from local_stack.simulators import Simulators, free_port

RESULTS = ROOT / "bench" / "results"
EVENTS_DAG = "returns_recon_events"
BATCH_DAGS = ("returns_recon_hourly", "returns_recon_daily", "returns_recon_golive_check")
EXCEPTION = "refund_without_credit_note"
ACTION = "create_credit_note"
TARGETS = {
    "event_to_exception_p95_seconds": ("<=", 60),
    "event_to_posting_p95_seconds": ("<=", 120),
    "events_lost": ("==", 0),
    "forged_accepted": ("==", 0),
    "replayed_processed_twice": ("==", 0),
}
# every port the local stack listens on: the bench takes free ones, so a `make up` running beside it is left alone
PORTS = (
    "AIRFLOW__API__PORT",
    "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT",
    "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT",
    "RECON_WAREHOUSE_PORT",
    "SIM_REVENI_PORT",
    "SIM_CIN7_PORT",
    "SIM_SITOO_PORT",
    "SIM_SMTP_PORT",
)
# what the caller's environment may not decide for the bench (its own folder, ports and connections)
NOT_INHERITED = (
    "AIRFLOW_HOME",
    "RECON_LOCAL_DIR",
    "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE",
    "RECON_DATA_DOCS_DIR",
    "RECON_LOCATION_MAP_PATH",
)
# a live deployment's settings, its safety valves opened for the bench (docs/postings.md, docs/golive.md)
SETTINGS = {
    "RECON_EMBEDDED_WAREHOUSE": "true",
    "SIM_WEBHOOK_FIRST_DELAY": "0",
    "RECON_POSTINGS_DRY_RUN": "false",
    "RECON_POSTINGS_DISABLED": "[]",
    "RECON_CREDIT_NOTE_APPROVAL_THRESHOLD": "1000000",
    "RECON_MAX_POSTINGS_PER_RUN": "1000",
    "RECON_GOLIVE_OVERRIDE": '["cin7"]',
    "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
}
_REFERENCE = re.compile(r"\$\{(\w+)\}")


# --- the pure parts (tests/unit/test_bench_events.py) ------------------------------------------------------------


def p95(values: Sequence[float | None]) -> float | None:
    """The 95th percentile by nearest rank (the smallest value at or above 95% of them). ``None`` is an event that
    never got there: it counts as infinitely late, so when the rank falls on one the answer is ``None`` (no
    finite p95); none at all is ``None`` too."""
    if not values:
        return None
    ranked = sorted(math.inf if v is None else v for v in values)
    value = ranked[math.ceil(0.95 * len(ranked)) - 1]
    return None if math.isinf(value) else round(value, 2)


def verdict(results: Mapping[str, Any], targets: Mapping[str, tuple[str, float]] = TARGETS) -> dict[str, str]:
    """``met`` or ``MISSED`` per target, with the bound (as ``bench.run``); a value that is missing or ``None``
    (no finite percentile) misses."""
    checks = {"<=": lambda a, b: a <= b, ">=": lambda a, b: a >= b, "<": lambda a, b: a < b, "==": lambda a, b: a == b}
    out = {}
    for key, (op, bound) in targets.items():
        value = results.get(key)
        met = value is not None and checks[op](value, bound)
        out[key] = ("met" if met else "MISSED") + f" ({op} {bound})"
    return out


def spread(count: int, among: int, offset: int = 0) -> set[int]:
    """``count`` positions spread evenly over ``range(among)``, shifted by ``offset`` (wrapping)."""
    count = max(0, min(count, among))
    return {(i * among // count + offset) % among for i in range(count)} if count else set()


def planted(document: Mapping[str, Any]) -> list[dict]:
    """The scenario's returns whose answer key is exactly ``refund_without_credit_note``, in scenario order."""
    types: dict[str, set[str]] = defaultdict(set)
    for entry in document["expected_exceptions"]:
        types[entry["return_id"]].add(entry["type"])
    return [r for r in document["reveni"]["returns"] if types.get(r["id"]) == {EXCEPTION}]


def candidates(document: Mapping[str, Any]) -> list[dict]:
    """The planted returns alone on their order (another return of the sale would share its credit-note
    evidence), in scenario order."""
    orders = Counter(r["order"]["external_id"] for r in document["reveni"]["returns"])
    return [r for r in planted(document) if orders[r["order"]["external_id"]] == 1]


def latencies(sent: Mapping[str, float], seen: Mapping[str, float]) -> list[float | None]:
    """Seconds from each event sent to its effect seen (``None``: never seen)."""
    return [round(seen[key] - at, 3) if key in seen else None for key, at in sent.items()]


def summary(values: Sequence[float | None]) -> dict[str, float | int | None]:
    finite = [v for v in values if v is not None]
    return {
        "p50": round(statistics.median(finite), 2) if finite else None,
        "p95": p95(values),
        "max": round(max(finite), 2) if finite else None,
        "missing": len(values) - len(finite),
    }


# --- the stack ---------------------------------------------------------------------------------------------------


def bench_env(local: Path) -> dict[str, str]:
    """The project's environment for the bench's own stack: free ports, its own folder, its connections."""
    ports = {name: str(free_port()) for name in PORTS}
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in PORTS and k not in NOT_INHERITED and not k.startswith("AIRFLOW_CONN_")
    }
    # the connections of .env.example (the simulators' demo credentials), on the bench's ports; not the caller's
    # own (a .env may point AIRFLOW_CONN_RECON_WAREHOUSE at a warehouse this bench would empty)
    example = dotenv_values(ROOT / ".env.example", interpolate=False)
    for key, value in example.items():
        if key.startswith("AIRFLOW_CONN_") and value:
            base[key] = _REFERENCE.sub(lambda m: ports.get(m.group(1), m.group(0)), value)
    base.update(ports)
    base.update(SETTINGS)
    base.update({"RECON_LOCAL_DIR": str(local), "AIRFLOW_HOME": str(local / "airflow")})
    env = project_env(base)
    conn = warehouse_conn(env)
    if conn.host != "127.0.0.1" or str(conn.port) != ports["RECON_WAREHOUSE_PORT"]:
        raise SystemExit(f"the bench's warehouse connection is not its own ({conn.host}:{conn.port}): not running")
    return env


def reap(pids: Iterable[int], seconds: float = 120) -> None:
    """Collect the exit of those of ``pids`` that are this process's children once they end, in the background:
    the stack's servers are children of the bench (they are ``make up``'s only until it exits), and a child that
    has ended but not been collected still counts as running for ``stack.stop_background``."""

    def collect() -> None:
        left, deadline = set(pids), time.monotonic() + seconds
        while left and time.monotonic() < deadline:
            for pid in list(left):
                try:
                    if os.waitpid(pid, os.WNOHANG)[0]:
                        left.discard(pid)
                except ChildProcessError:  # not ours (a killed run's), or collected already
                    left.discard(pid)
            time.sleep(0.05)

    threading.Thread(target=collect, name="reap", daemon=True).start()


def stop_stack(env: dict[str, str]) -> list[str]:
    """Stop whatever the bench's stack runs (from its pid files: nothing else)."""
    pids = []
    for path in run_dir(env).glob("*.pid"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            pids.append(int(path.read_text().split()[0]))
    reap(pids)
    stopped = airflow_services.stop(env)
    stopped += [name for name in ("simulators", "smtp_sink") if stack.stop_background(env, name)]
    stack.stop_warehouse(env)
    return stopped


def simulators_of(env: dict[str, str]) -> Simulators:
    return Simulators(int(env["SIM_REVENI_PORT"]), int(env["SIM_CIN7_PORT"]), int(env["SIM_SITOO_PORT"]))


def make_scenario(local: Path, returns: int, seed: int) -> Path:
    from recon_simulators.generate import location_map_csv_path, write_location_map_csv
    from recon_simulators.generator import GeneratorConfig, generate

    path = local / "scenario.json"
    clock = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    config = GeneratorConfig(
        returns=returns, seed=seed, clock=clock, rates={EXCEPTION: 0.7}, event_fraction=0.0, messy={}
    )
    generate(config, path)
    write_location_map_csv(path, location_map_csv_path(path))
    return path


class Airflow:
    """The REST API of the bench's Airflow, as its admin (``POST /auth/token``)."""

    def __init__(self, env: dict[str, str]) -> None:
        self.base = api_url(env)
        user, password, _ = airflow_services.admin_password(env)
        answer = requests.post(f"{self.base}/auth/token", json={"username": user, "password": password}, timeout=30)
        answer.raise_for_status()
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"

    def get(self, path: str, **params: Any) -> Any:
        answer = self.session.get(f"{self.base}/api/v2/{path}", params=params, timeout=30)
        answer.raise_for_status()
        return answer.json()

    def every(self, path: str, key: str, **params: Any) -> list[dict]:
        """Every row of a paged list (``limit``/``offset``, ``total_entries``)."""
        rows: list[dict] = []
        while True:
            page = self.get(path, limit=100, offset=len(rows), **params)
            rows += page[key]
            if not page[key] or len(rows) >= page["total_entries"]:
                return rows

    def dag(self, dag_id: str) -> dict | None:
        answer = self.session.get(f"{self.base}/api/v2/dags/{dag_id}", timeout=30)
        return answer.json() if answer.status_code == 200 else None

    def pause(self, dag_id: str) -> None:
        self.session.patch(f"{self.base}/api/v2/dags/{dag_id}", json={"is_paused": True}, timeout=30)

    def wait_for_events_dag(self, timeout: float = 180) -> None:
        """Until the events DAG is parsed and unpaused, the batch DAGs paused (pausing any that is not)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            events = self.dag(EVENTS_DAG)
            batch = {dag_id: self.dag(dag_id) for dag_id in BATCH_DAGS}
            for dag_id, dag in batch.items():
                if dag is not None and not dag["is_paused"]:
                    self.pause(dag_id)
            if events is not None and not events["is_paused"] and all(batch.values()):
                return
            time.sleep(2)
        raise SystemExit(f"{EVENTS_DAG} was not parsed and unpaused within {timeout:.0f} s; see {self.base}")


# --- observing the warehouse ---------------------------------------------------------------------------------------

SEEN_EXCEPTIONS = """SELECT DISTINCT return_id FROM recon.exceptions
WHERE exception_type = %(type)s AND return_id = ANY(%(ids)s)"""
DONE_POSTINGS = """SELECT DISTINCT return_id FROM recon.postings
WHERE action = %(action)s AND status IN ('done', 'adopted') AND return_id = ANY(%(ids)s)"""


class Observer:
    """When each event was sent, and when its exception and its done posting were first seen (wall clock)."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn
        self.sent: dict[str, float] = {}
        self.exception_seen: dict[str, float] = {}
        self.posting_seen: dict[str, float] = {}

    def poll(self) -> None:
        for query, params, seen in (
            (SEEN_EXCEPTIONS, {"type": EXCEPTION}, self.exception_seen),
            (DONE_POSTINGS, {"action": ACTION}, self.posting_seen),
        ):
            waiting = [key for key in self.sent if key not in seen]
            if waiting:
                rows = self.conn.execute(query, {**params, "ids": waiting}).fetchall()
                now = time.time()
                for (key,) in rows:
                    seen[key] = now

    def complete(self) -> bool:
        return len(self.exception_seen) == len(self.posting_seen) == len(self.sent)

    def wait(self, until: float, interval: float = 1.0) -> None:
        """Poll until every sent event is seen in full, or the wall clock reaches ``until``."""
        while True:
            self.poll()
            if self.complete() or time.time() >= until:
                return
            time.sleep(interval)


# --- the run -----------------------------------------------------------------------------------------------------


def log_step(message: str) -> None:
    print(f"[{datetime.now(UTC).strftime('%H:%M:%S')}] {message}", flush=True)


def start(env: dict[str, str], returns: int, seed: int, wanted: int) -> tuple[list[dict], dict[str, float]]:
    """The stack, the scenario loaded, the events' returns made consistent and one hourly run; returns the returns
    to send (clean after the hourly run, at least ``wanted``) and the setup timings."""
    from recon_simulators.generate import location_map_csv_path

    local = Path(env["RECON_LOCAL_DIR"])
    timings: dict[str, float] = {}
    started = time.perf_counter()
    path = make_scenario(local, returns, seed)
    document = json.loads(path.read_text())
    chosen = candidates(document)
    if len(chosen) < wanted:
        raise SystemExit(f"the scenario has {len(chosen)} returns to send, {wanted} wanted: raise BENCH_EVENTS_RETURNS")
    env["RECON_LOCATION_MAP_PATH"] = str(location_map_csv_path(path))
    stack.start_warehouse(env, fresh=True)
    stack.start_simulators(env, path)
    stack.start_smtp_sink(env)
    sims = simulators_of(env)
    if requests.get(f"{sims.admin}/webhooks", timeout=10).json()["webhooks"]:
        raise SystemExit("the simulators already have webhook subscriptions: not a fresh world")
    # every planted return not refunded yet, so consistent: the hourly run finds nothing to post (and nothing is
    # subscribed yet: no webhook is sent)
    for ret in planted(document):
        sims.upsert("reveni.returns", {**ret, "refunds": []})
    stack.ensure_airflow_db(env)
    timings["setup_seconds"] = round(time.perf_counter() - started, 1)
    log_step(f"scenario {path} ({returns} returns, {len(chosen)} to send) loaded; one hourly run")
    started = time.perf_counter()
    hourly_log = run_dir(env) / "hourly.log"
    # the warm-up reads Cin7 Core unthrottled (one sale detail per return-related sale); the events are measured
    # at the local stack's pacing again
    limits = requests.get(f"{sims.admin}/faults/cin7", timeout=10).json()
    sims.faults("cin7", **{**limits, "rate_limit_per_minute": None})
    cin7 = json.loads(env["AIRFLOW_CONN_CIN7_CORE_DEFAULT"])
    cin7["extra"] = {**cin7.get("extra", {}), "calls_per_minute": 100_000}
    unthrottled = {**env, "AIRFLOW_CONN_CIN7_CORE_DEFAULT": json.dumps(cin7)}
    try:
        with hourly_log.open("wb") as log:
            command = [sys.executable, "-m", "local_stack.dag_test", "returns_recon_hourly"]
            outcome = stack.run(command, unthrottled, stdout=log, stderr=log)
    finally:
        sims.faults("cin7", **limits)
    timings["hourly_seconds"] = round(time.perf_counter() - started, 1)
    if outcome.returncode != 0:
        raise SystemExit(f"the hourly run failed; its log: {hourly_log}")
    with psycopg.connect(warehouse_conn(env).libpq_url(), autocommit=True) as conn:
        dirty = {
            row[0]
            for row in conn.execute(
                "SELECT DISTINCT return_id FROM recon.exceptions WHERE recon.is_open(state) AND return_id = ANY(%s)",
                ([r["id"] for r in chosen],),
            )
        }
    clean = [r for r in chosen if r["id"] not in dirty]
    log_step(f"hourly run done in {timings['hourly_seconds']} s; {len(clean)} of {len(chosen)} returns clean")
    if len(clean) < wanted:
        raise SystemExit(f"only {len(clean)} returns are clean after the hourly run, {wanted} wanted")
    return clean, timings


def start_airflow(env: dict[str, str]) -> Airflow:
    started = time.perf_counter()
    airflow_services.admin_password(env)  # before the API server starts: it reads the file
    airflow_services.start(env)
    webhooks.subscribe(env)
    api = Airflow(env)
    api.wait_for_events_dag()
    log_step(f"Airflow up, {EVENTS_DAG} unpaused, the batch DAGs paused ({time.perf_counter() - started:.0f} s)")
    return api


def send(sims: Simulators, observer: Observer, ret: dict) -> None:
    observer.sent[ret["id"]] = time.time()
    sims.upsert("reveni.returns", ret)


def drive(
    sims: Simulators, observer: Observer, events: list[dict], interval: float, extras: Mapping[str, set[int]]
) -> None:
    """One event every ``interval`` seconds; the Reveni misbehaviours of ``extras`` (kind -> positions) come with
    their event. The warehouse is polled between sends."""
    began = time.monotonic()
    for index, ret in enumerate(events):
        while (due := began + index * interval - time.monotonic()) > 0:
            time.sleep(min(due, 0.5))
        counts = {kind: 1 for kind, positions in extras.items() if index in positions}
        if counts:
            sims_misbehave(sims, counts, "reveni")
        send(sims, observer, ret)
        observer.poll()
        if index % 30 == 29:
            log_step(
                f"{index + 1} events sent; exceptions seen {len(observer.exception_seen)}, "
                f"postings done {len(observer.posting_seen)}"
            )


def sims_misbehave(sims: Simulators, counts: Mapping[str, int], service: str) -> None:
    answer = requests.post(f"{sims.admin}/webhooks/misbehave", json={**counts, "service": service}, timeout=10)
    answer.raise_for_status()


# --- measuring ---------------------------------------------------------------------------------------------------


def _iso(value: str | None) -> float | None:
    return datetime.fromisoformat(value).timestamp() if value else None


def inbox_rows(conn: psycopg.Connection) -> list[dict]:
    columns = "inbox_id, source, event_id, event_type, resource_ids, deliveries, received_at, processed_at"
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(f"SELECT {columns}, processed_by_run FROM raw.webhook_inbox ORDER BY inbox_id").fetchall()


def events_runs(api: Airflow, since: float) -> list[dict]:
    runs = api.every(f"dags/{EVENTS_DAG}/dagRuns", "dag_runs")
    runs = [r for r in runs if (_iso(r.get("queued_at")) or 0) >= since]
    return sorted(runs, key=lambda r: r.get("start_date") or "~")


def processed_per_run(api: Airflow, runs: Iterable[dict]) -> dict[str, list[int]]:
    """Each events run's processed inbox ids, from its ``reconcile_events`` task's return value (XCom)."""
    out: dict[str, list[int]] = {}
    for run in runs:
        path = f"dags/{EVENTS_DAG}/dagRuns/{run['dag_run_id']}/taskInstances/reconcile.reconcile_events"
        try:
            value = api.get(f"{path}/xcomEntries/return_value", deserialize="true")["value"]
        except requests.HTTPError:
            continue
        if isinstance(value, str):
            value = json.loads(value)
        out[run["dag_run_id"]] = list(value.get("inbox_ids") or []) if isinstance(value, dict) else []
    return out


def where_the_time_goes(api: Airflow, runs: list[dict]) -> dict[str, Any]:
    """The events DAG's runs during the bench: how long they took, how long they waited to start, per task."""
    durations = [(_iso(r["end_date"]) or 0) - (_iso(r["start_date"]) or 0) for r in runs if r.get("end_date")]
    waits = [
        (_iso(r["start_date"]) or 0) - (_iso(r["queued_at"]) or 0)
        for r in runs
        if r.get("start_date") and r.get("queued_at")
    ]
    ended = [r for r in runs if r.get("start_date") and r.get("end_date")]
    gaps = [(_iso(b["start_date"]) or 0) - (_iso(a["end_date"]) or 0) for a, b in itertools.pairwise(ended)]
    tasks: dict[str, list[float]] = defaultdict(list)
    ids = {r["dag_run_id"] for r in runs}
    for ti in api.every(f"dags/{EVENTS_DAG}/dagRuns/~/taskInstances", "task_instances"):
        if ti["dag_run_id"] in ids and ti.get("duration") is not None:
            tasks[ti["task_id"]].append(ti["duration"])
    return {
        "events_runs": len(runs),
        "events_runs_states": dict(Counter(r["state"] for r in runs)),
        "events_run_seconds_mean": round(statistics.mean(durations), 1) if durations else None,
        "events_run_seconds_max": round(max(durations), 1) if durations else None,
        "events_run_queued_to_start_seconds_mean": round(statistics.mean(waits), 1) if waits else None,
        "events_run_gap_after_previous_seconds_mean": round(statistics.mean(gaps), 1) if gaps else None,
        "events_task_seconds_mean": {k: round(statistics.mean(v), 1) for k, v in sorted(tasks.items())},
    }


def duplicates_in_cin7(sims: Simulators, conn: psycopg.Connection, return_ids: Iterable[str]) -> dict[str, int]:
    """Return id -> credit notes carrying its memo in Cin7 Core (read from the simulator), for returns with one
    planned."""
    out = {}
    rows = conn.execute(
        "SELECT return_id, payload FROM recon.postings WHERE action = %s AND return_id = ANY(%s)",
        (ACTION, list(return_ids)),
    ).fetchall()
    for return_id, payload in rows:
        out[return_id] = len(sims.documents(ACTION, payload))
    return out


def measure(
    env: dict[str, str], api: Airflow, observer: Observer, since: float, results: dict[str, Any]
) -> dict[str, Any]:
    sims = simulators_of(env)
    attempts = requests.get(f"{sims.admin}/webhooks/log", timeout=60).json()["attempts"]
    conn = observer.conn
    inbox = inbox_rows(conn)
    by_event = defaultdict(list)
    for row in inbox:
        by_event[(row["source"], row["event_id"])].append(row)
    returns = list(observer.sent)

    # latencies
    to_exception = latencies(observer.sent, observer.exception_seen)
    to_posting = latencies(observer.sent, observer.posting_seen)
    results["events_sent"] = len(returns)
    results["event_to_exception_seconds"] = summary(to_exception)
    results["event_to_posting_seconds"] = summary(to_posting)
    results["event_to_exception_p95_seconds"] = p95(to_exception)
    results["event_to_posting_p95_seconds"] = p95(to_posting)
    results["events_lost"] = sum(1 for v in to_exception if v is None)
    results["postings_missing"] = sum(1 for v in to_posting if v is None)

    # the path of each event: delivered (the simulator's log) → stored (inbox) → processed (inbox)
    first_ok: dict[tuple[str, str], float] = {}
    for attempt in attempts:
        key = (attempt["service"], attempt["event_id"])
        if attempt["kind"] == "delivery" and attempt["ok"] and key not in first_ok:
            first_ok[key] = _iso(attempt["at"]) or 0
    delivered: dict[str, float] = {}
    stored: dict[str, float] = {}
    processed: dict[str, float] = {}
    for row in inbox:
        if row["source"] != "reveni" or not row["resource_ids"] or row["resource_ids"][0] not in observer.sent:
            continue
        rid = row["resource_ids"][0]
        if (row["source"], row["event_id"]) in first_ok and rid not in delivered:
            delivered[rid] = first_ok[(row["source"], row["event_id"])]
        stored.setdefault(rid, row["received_at"].timestamp())
        if row["processed_at"] is not None:
            processed.setdefault(rid, row["processed_at"].timestamp())
    results["event_to_delivered_seconds"] = summary(latencies(observer.sent, delivered))
    results["event_to_inbox_seconds"] = summary(latencies(observer.sent, stored))
    results["event_to_processed_seconds"] = summary(latencies(observer.sent, processed))

    # misbehaving deliveries
    kinds = defaultdict(list)
    for attempt in attempts:
        kinds[attempt["kind"]].append(attempt)
    for kind in ("forged", "stale", "oversized"):
        sent = kinds[kind]
        accepted = [a for a in sent if a["ok"] or (a["service"], a["event_id"]) in by_event]
        results[f"{kind}_sent"] = dict(Counter(a["service"] for a in sent))
        results[f"{kind}_accepted"] = len(accepted)
        results[f"{kind}_answers"] = dict(Counter(str(a["status"]) for a in sent))
    rejections = conn.execute(
        "SELECT source, reason, sum(rejected) FROM ops.webhook_rejections GROUP BY 1, 2"
    ).fetchall()
    results["rejections"] = {f"{source}.{reason}": int(n) for source, reason, n in rejections}

    # replays: one inbox row, one processing, one posting, one document
    runs = events_runs(api, since)
    per_run = processed_per_run(api, runs)
    times_processed = Counter(i for ids in per_run.values() for i in ids)
    results["events_runs_with_processed_list"] = len(per_run)
    results["inbox_rows_in_processed_lists"] = sum(times_processed.values())
    results["inbox_rows_processed_since_start"] = sum(
        1 for r in inbox if r["processed_at"] is not None and r["processed_at"].timestamp() >= since
    )
    results["inbox_rows_processed_twice"] = sum(1 for n in times_processed.values() if n > 1)
    sale_to_return = {
        payload.get("SaleID"): rid
        for rid, payload in conn.execute(
            "SELECT return_id, payload FROM recon.postings WHERE action = %s AND return_id = ANY(%s)", (ACTION, returns)
        ).fetchall()
    }
    postings = Counter(
        rid
        for (rid,) in conn.execute(
            "SELECT return_id FROM recon.postings WHERE action = %s AND return_id = ANY(%s)", (ACTION, returns)
        ).fetchall()
    )
    sends = Counter(
        rid
        for (rid,) in conn.execute(
            """SELECT p.return_id FROM recon.posting_log l JOIN recon.postings p USING (posting_key)
               WHERE l.step = 'request' AND p.action = %s AND p.return_id = ANY(%s)""",
            (ACTION, returns),
        ).fetchall()
    )
    replayed = kinds["replayed"]
    replay_returns: dict[tuple[str, str], str | None] = {}
    twice = 0
    for attempt in replayed:
        key = (attempt["service"], attempt["event_id"])
        rows = by_event.get(key, [])
        ids = rows[0]["resource_ids"] if rows else []
        rid = ids[0] if ids and attempt["service"] == "reveni" else sale_to_return.get(ids[0]) if ids else None
        replay_returns[key] = rid
        again = len(rows) > 1 or any(times_processed[r["inbox_id"]] > 1 for r in rows)
        again = again or (rid is not None and (postings[rid] > 1 or sends[rid] > 1))
        twice += again
    documents = duplicates_in_cin7(sims, conn, {r for r in replay_returns.values() if r})
    twice += sum(1 for rid in replay_returns.values() if rid and documents.get(rid, 0) > 1)
    results["replayed_sent"] = dict(Counter(a["service"] for a in replayed))
    results["replayed_answers"] = dict(Counter(str(a["status"]) for a in replayed))
    results["replayed_counted_as_deliveries"] = sum(
        1 for key in replay_returns if by_event.get(key) and by_event[key][0]["deliveries"] > 1
    )
    results["replayed_processed_twice"] = twice
    results["postings_per_return_max"] = max(postings.values(), default=0)
    results["credit_notes_per_replayed_return_max"] = max(documents.values(), default=0)
    results.update(where_the_time_goes(api, runs))
    # the exceptions and postings came from the events DAG alone: no batch run reconciled meanwhile
    results["recon_runs_by_mode"] = dict(
        conn.execute(
            "SELECT mode, count(*) FROM recon.recon_runs WHERE started_at >= to_timestamp(%s) GROUP BY mode", (since,)
        ).fetchall()
    )
    results["inbox_rows"] = dict(Counter(f"{r['source']} {r['event_type']}" for r in inbox))
    return results


def main() -> None:
    from bench.run import interrupt_on_sigterm

    interrupt_on_sigterm()
    count = int(os.environ.get("BENCH_EVENTS", "300"))
    interval = float(os.environ.get("BENCH_EVENTS_INTERVAL", "1"))
    wait = float(os.environ.get("BENCH_EVENTS_WAIT", "180"))
    returns = int(os.environ.get("BENCH_EVENTS_RETURNS", str(max(700, count * 7 // 3))))
    seed = int(os.environ.get("BENCH_EVENTS_SEED", "20"))
    extras = {  # Reveni deliveries with a misbehaving extra send, spread over the events
        "forged": spread(int(os.environ.get("BENCH_EVENTS_FORGED", str(count // 10))), count, 3),
        "replayed": spread(int(os.environ.get("BENCH_EVENTS_REPLAYED", str(count // 10))), count, 7),
        "stale": spread(count // 30, count, 5),
        "oversized": spread(count // 60, count, 11),
    }
    cin7_extras = {"forged": max(count // 30, 1), "replayed": max(count // 30, 1)}  # the first echoes of our notes
    began = time.perf_counter()
    local = local_dir(dict(os.environ)) / "bench-events"
    results: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "events_interval_seconds": interval,
        "wait_after_last_seconds": wait,
    }
    env = bench_env(local)
    stop_stack(env)  # a killed run's leftovers (its pid files), then a clean folder
    stack.embedded_warehouse(env, warehouse_conn(env)).discard()
    shutil.rmtree(local, ignore_errors=True)
    local.mkdir(parents=True)
    log_step(f"bench-events: {count} events, one every {interval:g} s; the stack in {local} (logs: {run_dir(env)})")
    try:
        with stack.stop_on_interrupt():
            chosen, timings = start(env, returns, seed, count + 1)
            results.update(timings)
            api = start_airflow(env)
            sims = simulators_of(env)
            with psycopg.connect(warehouse_conn(env).libpq_url(), autocommit=True) as conn:
                observer = Observer(conn)
                warm, events = chosen[0], chosen[1 : count + 1]
                send(sims, observer, warm)  # the whole path once: the trigger runs, the first run's imports are made
                observer.wait(time.time() + 300)
                if not observer.complete():
                    reached = "its exception, not its posting" if observer.exception_seen else "not even its exception"
                    raise SystemExit(f"the warm-up event reached {reached} in 300 s; the logs are in {run_dir(env)}")
                results["warmup_event_to_posting_seconds"] = latencies(observer.sent, observer.posting_seen)[0]
                log_step(f"warm-up event done in {results['warmup_event_to_posting_seconds']} s; driving")
                observer.sent.clear()
                observer.exception_seen.clear()
                observer.posting_seen.clear()
                since = time.time()
                sims_misbehave(sims, cin7_extras, "cin7")
                drive(sims, observer, events, interval, extras)
                last = max(observer.sent.values())
                log_step(f"all {len(events)} sent; waiting (at most {wait:g} s) for the last exceptions and postings")
                observer.wait(last + wait)
                results["drained_seconds_after_last_event"] = round(time.time() - last, 1)
                measure(env, api, observer, since, results)
    finally:
        stopped = stop_stack(env)
        log_step(f"stopped {', '.join(stopped) or 'nothing'} and the warehouse; logs in {run_dir(env)}")
    results["bench_minutes"] = round((time.perf_counter() - began) / 60, 1)
    results["targets"] = verdict(results)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "events.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    print("\nresult                                   value   target")
    for key, (op, bound) in TARGETS.items():
        value = results.get(key)
        print(f"  {key:<36} {'n/a' if value is None else value!s:>9}   {op} {bound}  {results['targets'][key]}")
    print(f"written to {RESULTS / 'events.json'} ({results['bench_minutes']} min)")


if __name__ == "__main__":
    main()
