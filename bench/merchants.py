"""``python -m bench.merchants`` (and the last part of ``make bench``): ten merchants' hourly runs at once on one local
Airflow, against one merchant's hourly run of the same size alone.

A local stack of its own (``local_stack``: embedded PostgreSQL, simulators, SMTP sink, Airflow's API server,
scheduler, DAG processor and triggerer on the LocalExecutor) on free loopback ports, its data in
``.local/bench-merchants`` (``RECON_LOCAL_DIR``/bench-merchants), stopped at the end (and on Ctrl-C or SIGTERM).
Airflow's metadata lives in a database of the bench's PostgreSQL (as a deployment running several merchants would
have it, not SQLite); ``[core] parallelism`` is ``BENCH_MERCHANTS_PARALLELISM`` (8: four task processes per core).

1. One scenario (the generator, ``BENCH_MERCHANTS_RETURNS`` = 5,000 returns, fixed seed, no scheduled events) served
   by one simulator set, throttling off (the simulators' rate limits off, every connection's ``calls_per_minute``
   100,000). A merchants file (``RECON_MERCHANTS_PATH``) with ``BENCH_MERCHANTS`` (10) merchants ``m01``…``m10``
   and their twin ``solo``: each its own warehouse database on the bench's PostgreSQL (its own login, migrated,
   its own reader role), its own Reveni, Cin7 Core and Sitoo connections (the simulators' values under its own
   connection ids, ``AIRFLOW_CONN_*``), so its own pools (``airflow pools import``, before the scheduler starts) and
   its own shared rate-limit budgets. Each merchant sets ``overlap_hours: 0``: an hourly run then reads what changed
   since its last run and nothing more (the default 48 h overlap would also re-read the returns changed in the 48 h
   before the last read: 1,400 of this scenario's 5,000). Postings are planned and logged, never sent
   (``RECON_POSTINGS_DRY_RUN=true``: the simulators are shared, a posting of one merchant would change the
   others' data); ``RECON_GOLIVE_OVERRIDE='["cin7","sitoo"]'``; no task retries (a failure fails the bench).
   The hourly DAGs are unpaused with ``[scheduler] use_job_schedule`` off: only the bench's triggers run them.
2. Every merchant's first hourly run (the initial load: reference data, every return and sale) at once, through the
   REST API; not measured against a target (``merchants_initial_load_seconds``).
3. ``BENCH_MERCHANTS_CHANGED`` (500) returns changed: each return and its Cin7 Core sale upserted again
   (``/_sim/upsert``, stamped with the simulators' clock), which every merchant sees (one simulator set).
4. ``merchants_1_hourly_seconds``: ``solo``'s hourly run alone, from its trigger (``queued_at``) to its end
   (``end_date``), as the REST API records them. Then ``merchants_10_hourly_seconds``: the ten merchants' hourly runs
   triggered at once, from the first trigger to the last end. The twin makes the two the same work: ``solo`` and
   each of the ten start from the same state (the initial load) and read the same changes; the bench checks it
   (``raw.extract_runs`` of each measured run: the same records fetched and changed and API calls per entity).
   Target: ``merchants_10_hourly_seconds`` <= 10 x ``merchants_1_hourly_seconds``.
5. Checks: every run succeeded (else the bench fails with the failed tasks' log tails), every merchant's warehouse
   holds the same number of staged returns, and no merchant's warehouse holds another merchant's run.

Writes ``bench/results/merchants.json`` when run alone; ``make bench`` (``bench.run``) adds the figures to
``bench/results/latest.json``. Environment: BENCH_MERCHANTS (10), BENCH_MERCHANTS_RETURNS (5000),
BENCH_MERCHANTS_CHANGED (500), BENCH_MERCHANTS_PARALLELISM (8), BENCH_MERCHANTS_SEED (31),
BENCH_MERCHANTS_TIMEOUT (1800 s per phase). docs/performance.md, "Merchants".
"""

from __future__ import annotations

import json
import os
import platform
import secrets
import shutil
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import psycopg
import requests
import yaml

from bench.events import _REFERENCE, Airflow, log_step, simulators_of, stop_stack
from local_stack import airflow_services, stack
from local_stack.env import ROOT, project_env
from local_stack.settings import ConnFields, run_dir, warehouse_conn, warehouse_dir
from local_stack.simulators import free_port
from local_stack.warehouse import EmbeddedWarehouse

RESULTS = ROOT / "bench" / "results"
BASELINE = "solo"  # the twin of the ten, whose hourly run is measured alone
META = "airflow_meta"  # Airflow's metadata database (and its login) on the bench's PostgreSQL
UNTHROTTLED = 100_000  # calls_per_minute of every API connection: throttling off
# the PostgreSQL server's settings: Airflow's components and eleven merchants' tasks share it
PG_SETTINGS = (("max_connections", "400"), ("shared_buffers", "512MB"))
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
# what the caller's environment may not decide for the bench (its own folder, ports, connections, Airflow)
NOT_INHERITED = (
    "AIRFLOW_HOME",
    "RECON_LOCAL_DIR",
    "RECON_MERCHANTS_PATH",
    "RECON_DATA_DOCS_DIR",
    "RECON_LOCATION_MAP_PATH",
    "AIRFLOW__CORE__EXECUTOR",
    "AIRFLOW__CORE__PARALLELISM",
    "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
)
SETTINGS = {
    "RECON_EMBEDDED_WAREHOUSE": "true",
    "RECON_POSTINGS_DRY_RUN": "true",
    "RECON_GOLIVE_OVERRIDE": '["cin7", "sitoo"]',
    "RECON_TASK_RETRIES": "0",
    "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
    "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
    # no scheduled run: the hourly DAGs are unpaused, and only the bench's triggers may run them
    "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
}
# the machine's CPU use (percent of all cores) during the run alone above which the bench says it was shared
SHARED_CPU_PERCENT = 75
# what each merchant's settings override (see the module doc)
MERCHANT_SETTINGS = {"overlap_hours": 0}


class BenchFailed(RuntimeError):
    """A run failed or the bench's checks did not hold: the message says which, with the task logs' tails."""


@dataclass(frozen=True)
class Relative:
    """A bound that is another result times a factor (``10 x merchants_1_hourly_seconds``)."""

    factor: float
    key: str

    def limit(self, results: Mapping[str, Any]) -> float | None:
        value = results.get(self.key)
        return None if value is None else self.factor * value

    def __str__(self) -> str:
        return f"{self.factor:g} x {self.key}"


TARGETS: dict[str, tuple[str, float | Relative]] = {
    "merchants_10_hourly_seconds": ("<=", Relative(10, "merchants_1_hourly_seconds")),
}


# --- the pure parts (tests/unit/test_bench_merchants.py) ----------------------------------------------------------


def merchant_ids(count: int) -> list[str]:
    """The measured merchants, ``m01``, ``m02``, ...; their twin ``BASELINE`` comes on top."""
    return [f"m{i:02d}" for i in range(1, count + 1)]


def connection_ids(merchant: str) -> dict[str, str]:
    """A merchant's own Airflow connection ids, by the merchants file's field."""
    return {
        "warehouse": f"recon_warehouse_{merchant}",
        "reveni": f"reveni_{merchant}",
        "cin7": f"cin7_core_{merchant}",
        "sitoo": f"sitoo_{merchant}",
    }


def database(merchant: str) -> str:
    """The name of the merchant's warehouse database, and of its login."""
    return f"recon_{merchant}"


def merchants_file(merchants: Sequence[str], location_map: Path, settings: Mapping[str, Any]) -> str:
    """The merchants file (YAML) of the bench: each merchant its own connections, one location map, ``settings``."""
    document = {
        "merchants": [
            {
                "id": merchant,
                "name": f"Bench merchant {merchant}",
                "connections": connection_ids(merchant),
                "location_map": str(location_map),
                "settings": dict(settings),
            }
            for merchant in merchants
        ]
    }
    return yaml.safe_dump(document, sort_keys=False)


def connection_env(
    merchants: Sequence[str], simulators: Mapping[str, str], warehouse: ConnFields, passwords: Mapping[str, str]
) -> dict[str, str]:
    """``AIRFLOW_CONN_*`` of every merchant's connections: its own database and login on ``warehouse``'s server, and
    the simulators' connections (``simulators``: the default ones, as ``local_stack.simulators.Simulators.env``
    gives them) under its own ids, each with ``calls_per_minute`` at ``UNTHROTTLED``."""
    default = {
        "reveni": "AIRFLOW_CONN_REVENI_DEFAULT",
        "cin7": "AIRFLOW_CONN_CIN7_CORE_DEFAULT",
        "sitoo": "AIRFLOW_CONN_SITOO_DEFAULT",
    }
    env = {}
    for merchant in merchants:
        ids = connection_ids(merchant)
        env[f"AIRFLOW_CONN_{ids['warehouse'].upper()}"] = json.dumps(
            {
                "conn_type": "postgres",
                "host": warehouse.host,
                "port": warehouse.port,
                "login": database(merchant),
                "password": passwords[merchant],
                "schema": database(merchant),
            }
        )
        for system, variable in default.items():
            conn = json.loads(simulators[variable])
            conn["extra"] = {**conn.get("extra", {}), "calls_per_minute": UNTHROTTLED}
            env[f"AIRFLOW_CONN_{ids[system].upper()}"] = json.dumps(conn)
    return env


def pools_import(pools: Mapping[str, int]) -> dict[str, dict[str, Any]]:
    """The pools (name -> slots) in the form ``airflow pools import`` reads."""
    return {
        name: {
            "slots": slots,
            "description": f"the bench's {name.split('__')[0]} API account",
            "include_deferred": False,
        }
        for name, slots in sorted(pools.items())
    }


def run_id(merchant: str, phase: str) -> str:
    """The DAG run id of a merchant's run in a phase; it names the merchant (the isolation check reads it)."""
    return f"{merchant}__{phase}"


def choose_changes(returns: Sequence[Mapping], sales: Sequence[Mapping], count: int) -> tuple[list, list]:
    """``count`` returns spread evenly over the scenario, and the Cin7 Core sales of their orders (matched on
    ``CustomerReference``, the default ``sale_match_field``; a sale once even when several of its returns are)."""
    count = max(0, min(count, len(returns)))
    chosen = [returns[i * len(returns) // count] for i in range(count)] if count else []
    by_reference = {sale.get("CustomerReference"): sale for sale in sales}
    picked: dict[str, Mapping] = {}
    for ret in chosen:
        sale = by_reference.get((ret.get("order") or {}).get("external_id"))
        if sale is not None:
            picked.setdefault(sale["ID"], sale)
    return list(chosen), list(picked.values())


def _iso(value: str | None) -> float | None:
    return datetime.fromisoformat(value).timestamp() if value else None


def span(runs: Iterable[Mapping[str, Any]]) -> float:
    """Seconds from the first run's trigger (``queued_at``) to the last run's end (``end_date``)."""
    runs = list(runs)
    first = min(_iso(r["queued_at"]) or 0 for r in runs)
    last = max(_iso(r["end_date"]) or 0 for r in runs)
    return round(last - first, 2)


def different_work(baseline: Mapping[str, Any], measured: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Where a measured run's work (per ``source.entity``: fetched, changed, API calls) differs from the baseline's."""
    return [
        f"{merchant}: {entity} {work.get(entity)} (baseline {baseline.get(entity)})"
        for merchant, work in sorted(measured.items())
        for entity in sorted(set(baseline) | set(work))
        if work.get(entity) != baseline.get(entity)
    ]


def foreign_runs(found: Mapping[str, Iterable[str]]) -> list[str]:
    """The run ids found in each merchant's warehouse (merchant -> ids) that are not that merchant's own."""
    return [
        f"{merchant}: {rid}"
        for merchant, ids in sorted(found.items())
        for rid in sorted(set(ids))
        if not rid.startswith(f"{merchant}__")
    ]


def verdict(results: Mapping[str, Any], targets: Mapping[str, tuple[str, float | Relative]] = TARGETS) -> dict:
    """``met`` or ``MISSED`` per target, with the bound (a ``Relative`` bound with its value); a missing value, or a
    relative bound whose reference is missing, misses."""
    checks: dict[str, Callable[[float, float], bool]] = {
        "<=": lambda a, b: a <= b,
        ">=": lambda a, b: a >= b,
        "<": lambda a, b: a < b,
        "==": lambda a, b: a == b,
    }
    out = {}
    for key, (op, bound) in targets.items():
        limit = bound.limit(results) if isinstance(bound, Relative) else bound
        value = results.get(key)
        met = value is not None and limit is not None and checks[op](value, limit)
        said = f"{bound} = {round(limit, 2)}" if isinstance(bound, Relative) and limit is not None else str(bound)
        out[key] = ("met" if met else "MISSED") + f" ({op} {said})"
    return out


def mean_by(rows: Iterable[tuple[str, float | None]]) -> dict[str, float]:
    values: dict[str, list[float]] = defaultdict(list)
    for key, value in rows:
        if value is not None:
            values[key].append(value)
    return {key: round(statistics.mean(v), 1) for key, v in sorted(values.items())}


# --- the stack ---------------------------------------------------------------------------------------------------


def bench_env(local: Path, parallelism: int) -> dict[str, str]:
    """The project's environment for the bench's own stack: free ports, its own folder; no connection of the caller's
    (a .env may point one at a real account or warehouse)."""
    ports = {name: str(free_port()) for name in PORTS}
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in PORTS and k not in NOT_INHERITED and not k.startswith(("AIRFLOW_CONN_", "AIRFLOW__CELERY__"))
    }
    # the connections of .env.example on the bench's ports (the warehouse's is the bench's PostgreSQL server)
    for key, value in _example().items():
        if key.startswith("AIRFLOW_CONN_") and value:
            base[key] = _REFERENCE.sub(lambda m: ports.get(m.group(1), m.group(0)), value)
    base.update(ports)
    base.update(SETTINGS)
    base.update(
        {
            "AIRFLOW__CORE__PARALLELISM": str(parallelism),
            "RECON_LOCAL_DIR": str(local),
            "AIRFLOW_HOME": str(local / "airflow"),
            "RECON_MERCHANTS_PATH": str(local / "merchants.yaml"),
        }
    )
    env = project_env(base)
    conn = warehouse_conn(env)
    if conn.host != "127.0.0.1" or str(conn.port) != ports["RECON_WAREHOUSE_PORT"]:
        raise SystemExit(f"the bench's warehouse connection is not its own ({conn.host}:{conn.port}): not running")
    return env


def _example() -> dict[str, str]:
    from dotenv import dotenv_values

    return {k: v for k, v in dotenv_values(ROOT / ".env.example", interpolate=False).items() if v is not None}


def make_scenario(local: Path, returns: int, seed: int) -> Path:
    from recon_simulators.generate import location_map_csv_path, write_location_map_csv
    from recon_simulators.generator import GeneratorConfig, generate

    path = local / "scenario.json"
    clock = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    generate(GeneratorConfig(returns=returns, seed=seed, clock=clock, event_fraction=0.0), path)
    write_location_map_csv(path, location_map_csv_path(path))
    return path


def start_postgres(env: dict[str, str]) -> EmbeddedWarehouse:
    """The bench's PostgreSQL (its settings for eleven merchants and Airflow), Airflow's metadata database on it."""
    conn = warehouse_conn(env)
    server = EmbeddedWarehouse(warehouse_dir(env) / "data", port=conn.port or 5432, settings=PG_SETTINGS)
    server.discard()
    server.start(owner=True)
    password = secrets.token_urlsafe(18)
    server.ensure_database(META, password, META, create_role=False)
    env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = (
        f"postgresql+psycopg://{META}:{password}@127.0.0.1:{server.port}/{META}"
    )
    return server


def prepare_warehouses(server: EmbeddedWarehouse, merchants: Sequence[str]) -> dict[str, str]:
    """Each merchant's database and login, migrated with its own reader role (``steps.migrate_warehouse``, what the
    DAGs' ``migrate_warehouse`` task runs), one after the other: the roles are the server's; returns the logins'
    passwords."""
    from returns_recon.steps import migrate_warehouse

    passwords = {}
    for merchant in merchants:
        passwords[merchant] = secrets.token_urlsafe(18)
        server.ensure_database(database(merchant), passwords[merchant], database(merchant))
        with psycopg.connect(_url(server, merchant, passwords[merchant]), autocommit=True) as conn:
            migrate_warehouse(conn, f"recon_reader_{merchant}")
    return passwords


def _url(server: EmbeddedWarehouse, merchant: str, password: str) -> str:
    name = database(merchant)
    return f"postgresql://{name}:{password}@127.0.0.1:{server.port}/{name}"


class Api(Airflow):
    """The bench's Airflow through its REST API: DAGs, triggers, runs, task instances and their logs."""

    def patch_dag(self, dag_id: str, **body: Any) -> None:
        answer = self.session.patch(f"{self.base}/api/v2/dags/{dag_id}", json=body, timeout=30)
        answer.raise_for_status()

    def trigger(self, dag_id: str, dag_run_id: str) -> dict:
        answer = self.session.post(
            f"{self.base}/api/v2/dags/{dag_id}/dagRuns",
            json={"dag_run_id": dag_run_id, "logical_date": None},
            timeout=30,
        )
        if answer.status_code != 200:
            raise BenchFailed(f"triggering {dag_id} answered {answer.status_code}: {answer.text[:500]}")
        return answer.json()

    def run(self, dag_id: str, dag_run_id: str) -> dict:
        return self.get(f"dags/{dag_id}/dagRuns/{dag_run_id}")

    def task_instances(self, dag_id: str, dag_run_id: str) -> list[dict]:
        return self.get(f"dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances", limit=100)["task_instances"]

    def log_tail(self, ti: Mapping[str, Any], lines: int = 40) -> str:
        path = f"dags/{ti['dag_id']}/dagRuns/{ti['dag_run_id']}/taskInstances/{ti['task_id']}/logs/{ti['try_number']}"
        try:
            content = self.get(path, map_index=ti.get("map_index", -1))["content"]
        except (requests.RequestException, KeyError, ValueError) as err:
            return f"(its log could not be read: {err})"
        text = [str(line.get("event", line)) if isinstance(line, dict) else str(line) for line in content]
        return "\n".join(text[-lines:])

    def wait_for_dags(self, dag_ids: Sequence[str], timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        missing = list(dag_ids)
        while time.monotonic() < deadline:
            missing = [dag_id for dag_id in dag_ids if self.dag(dag_id) is None]
            if not missing:
                errors = self.get("importErrors")
                if errors["total_entries"]:
                    raise BenchFailed(f"the DAG files do not import: {json.dumps(errors['import_errors'])[:2000]}")
                return
            time.sleep(3)
        raise BenchFailed(f"not parsed within {timeout:.0f} s: {', '.join(missing)}")

    def run_all(self, runs: Mapping[str, str], timeout: float) -> dict[str, dict]:
        """Trigger ``runs`` (dag id -> run id) one after the other, then wait until every one has ended; every run
        must succeed (else ``BenchFailed`` with the failed tasks' log tails). Returns the runs as the API ends them."""
        for dag_id, dag_run_id in runs.items():
            self.trigger(dag_id, dag_run_id)
        ended: dict[str, dict] = {}
        deadline = time.monotonic() + timeout
        while len(ended) < len(runs):
            if time.monotonic() > deadline:
                late = [d for d in runs if d not in ended]
                raise BenchFailed(self.explain(late, runs, f"not ended within {timeout:.0f} s"))
            time.sleep(2)
            for dag_id, dag_run_id in runs.items():
                if dag_id not in ended:
                    run = self.run(dag_id, dag_run_id)
                    if run["state"] in ("success", "failed"):
                        ended[dag_id] = run
        failed = [dag_id for dag_id, run in ended.items() if run["state"] != "success"]
        if failed:
            raise BenchFailed(self.explain(failed, runs, "failed"))
        return ended

    def explain(self, dag_ids: Sequence[str], runs: Mapping[str, str], what: str) -> str:
        parts = [f"{len(dag_ids)} of {len(runs)} runs {what}: {', '.join(dag_ids)}"]
        for dag_id in dag_ids:
            tis = self.task_instances(dag_id, runs[dag_id])
            states = {ti["task_id"]: ti["state"] for ti in tis}
            parts.append(f"{dag_id} {runs[dag_id]}: {states}")
            for ti in tis:
                if ti["state"] == "failed":
                    parts.append(f"--- {dag_id} {ti['task_id']} (try {ti['try_number']}), its log ends:")
                    parts.append(self.log_tail(ti))
        return "\n".join(parts)


# --- measuring ---------------------------------------------------------------------------------------------------


WORK = """SELECT source || '.' || entity, fetched, changed, api_calls FROM raw.extract_runs WHERE run_id = %s"""
RUN_IDS = """SELECT run_id FROM raw.extract_runs UNION SELECT run_id FROM raw.api_records
             UNION SELECT run_id FROM raw.extract_watermarks UNION SELECT run_id FROM recon.recon_runs"""


def work_of(url: str, dag_run_id: str) -> dict[str, list[int]]:
    """A run's work per ``source.entity``: [fetched, changed, API calls] (``raw.extract_runs``)."""
    with psycopg.connect(url) as conn:
        return {
            entity: [fetched, changed, calls] for entity, fetched, changed, calls in conn.execute(WORK, (dag_run_id,))
        }


def tasks_of(api: Api, runs: Mapping[str, Mapping[str, Any]]) -> tuple[dict[str, float], dict[str, float], float]:
    """Per task: mean duration and mean wait for a worker (queued to started) over ``runs``; and the task seconds
    summed over every run."""
    durations, waits, total = [], [], 0.0
    for dag_id, run in runs.items():
        for ti in api.task_instances(dag_id, run["dag_run_id"]):
            name = ti["task_id"].split(".")[-1]
            durations.append((name, ti.get("duration")))
            total += ti.get("duration") or 0
            queued, started = _iso(ti.get("queued_when")), _iso(ti.get("start_date"))
            waits.append((name, started - queued if queued and started else None))
    return mean_by(durations), mean_by(waits), round(total, 1)


class CpuMeter:
    """The machine's CPU use between ``start`` and ``stop`` (percent of all cores)."""

    def start(self) -> None:
        psutil.cpu_percent(interval=None)

    def stop(self) -> float:
        return psutil.cpu_percent(interval=None)


def api_calls(counters: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
    return {service: int(c.get("total_calls", 0)) for service, c in counters.items()}


def phase(
    api: Api, sims: Any, merchants: Sequence[str], name: str, timeout: float, results: dict[str, Any]
) -> dict[str, dict]:
    """Run the merchants' hourly DAGs at once; record the span, the CPU use and the API calls under ``name``."""
    runs = {f"returns_recon_{m}_hourly": run_id(m, name) for m in merchants}
    sims.counters(reset=True)
    meter = CpuMeter()
    meter.start()
    ended = api.run_all(runs, timeout)
    results.setdefault("merchants_cpu_percent", {})[name] = meter.stop()  # the whole machine's: others' work too
    results.setdefault("merchants_load_average", {})[name] = round(os.getloadavg()[0], 1)
    results.setdefault("merchants_api_calls", {})[name] = api_calls(sims.counters())
    seconds = span(ended.values())
    log_step(f"{name}: {len(runs)} hourly runs in {seconds:.1f} s")
    return ended


def run_seconds(runs: Iterable[Mapping[str, Any]]) -> list[float]:
    return sorted(round((_iso(r["end_date"]) or 0) - (_iso(r["queued_at"]) or 0), 1) for r in runs)


def touch(sims: Any, document: Mapping[str, Any], count: int) -> tuple[int, int]:
    """Change ``count`` returns and their sales in the simulators (upserted again, stamped with their clock)."""
    returns, sales = choose_changes(document["reveni"]["returns"], document["cin7"]["sales"], count)
    for ret in returns:
        sims.upsert("reveni.returns", dict(ret))
    for sale in sales:
        sims.upsert("cin7.sales", dict(sale))
    return len(returns), len(sales)


def check_warehouses(server: EmbeddedWarehouse, merchants: Sequence[str], passwords: Mapping[str, str]) -> dict:
    """Every merchant's warehouse holds the same staged returns, and only its own runs."""
    staged, found = {}, {}
    for merchant in merchants:
        with psycopg.connect(_url(server, merchant, passwords[merchant])) as conn:
            staged[merchant] = conn.execute("SELECT count(*) FROM staging.stg_reveni__returns").fetchone()[0]
            found[merchant] = [row[0] for row in conn.execute(RUN_IDS)]
    if len(set(staged.values())) != 1:
        raise BenchFailed(f"the merchants' warehouses do not hold the same staged returns: {staged}")
    foreign = foreign_runs(found)
    if foreign:
        raise BenchFailed(f"a merchant's warehouse holds another merchant's runs: {foreign[:20]}")
    return {"staged_returns_each": next(iter(staged.values())), "run_ids_checked": sum(map(len, found.values()))}


def bench_merchants(
    count: int = 10,
    returns: int = 5000,
    changed: int = 500,
    parallelism: int = 8,
    seed: int = 31,
    timeout: float = 1800,
) -> dict[str, Any]:
    """The whole bench (module doc); returns its figures (every key prefixed ``merchants_``). Raises
    ``BenchFailed`` when a run fails or a check does not hold; the stack is stopped either way."""
    began = time.perf_counter()
    measured = merchant_ids(count)
    everyone = [*measured, BASELINE]
    local = Path(os.environ.get("RECON_LOCAL_DIR") or ROOT / ".local") / "bench-merchants"
    env = bench_env(local, parallelism)
    results: dict[str, Any] = {
        "merchants_count": count,
        "merchants_returns_each": returns,
        "merchants_changed_each": changed,
        "merchants_parallelism": parallelism,
        "merchants_settings": {**MERCHANT_SETTINGS, "postings_dry_run": True},
    }
    stop_stack(env)  # a killed run's leftovers (its pid files), then a clean folder
    EmbeddedWarehouse(warehouse_dir(env) / "data", port=warehouse_conn(env).port or 5432).discard()
    shutil.rmtree(local, ignore_errors=True)
    local.mkdir(parents=True)
    log_step(f"bench merchants: {count} merchants and {BASELINE}, {returns} returns, {changed} changed; in {local}")
    try:
        with stack.stop_on_interrupt():
            started = time.perf_counter()
            path = make_scenario(local, returns, seed)
            document = json.loads(path.read_text())
            server = start_postgres(env)
            passwords = prepare_warehouses(server, everyone)
            stack.start_simulators(env, path)
            sims = simulators_of(env)
            for service in ("reveni", "cin7", "sitoo"):  # throttling off
                limits = requests.get(f"{sims.admin}/faults/{service}", timeout=10).json()
                sims.faults(service, **{**limits, "rate_limit_per_minute": None})
            stack.start_smtp_sink(env)
            from recon_simulators.generate import location_map_csv_path

            text = merchants_file(everyone, location_map_csv_path(path), MERCHANT_SETTINGS)
            Path(env["RECON_MERCHANTS_PATH"]).write_text(text)
            env.update(connection_env(everyone, sims.env(UNTHROTTLED), warehouse_conn(env), passwords))
            stack.ensure_airflow_db(env)
            from returns_recon.merchants import load_merchants

            file = load_merchants(Path(env["RECON_MERCHANTS_PATH"]))
            assert file is not None
            pools = local / "pools.json"
            pools.write_text(json.dumps(pools_import(file.pools()), indent=2))
            imported = stack.airflow(["pools", "import", str(pools)], env, capture_output=True, text=True)
            if imported.returncode != 0:
                raise BenchFailed(f"airflow pools import failed: {imported.stdout[-2000:]}{imported.stderr[-2000:]}")
            results["merchants_pools"] = len(file.pools())
            airflow_services.admin_password(env)  # before the API server starts: it reads the file
            airflow_services.start(env)
            api = Api(env)
            hourly = [f"returns_recon_{m}_hourly" for m in everyone]
            api.wait_for_dags(hourly)
            for dag_id in hourly:
                api.patch_dag(dag_id, is_paused=False)
            results["merchants_setup_seconds"] = round(time.perf_counter() - started, 1)
            log_step(f"set up in {results['merchants_setup_seconds']} s (logs: {run_dir(env)})")

            initial = phase(api, sims, everyone, "initial", timeout, results)
            results["merchants_initial_load_seconds"] = span(initial.values())
            results["merchants_changed"] = dict(zip(("returns", "sales"), touch(sims, document, changed), strict=True))

            alone = phase(api, sims, [BASELINE], "alone", timeout, results)
            (solo,) = alone.values()
            results["merchants_1_hourly_seconds"] = span([solo])
            results["merchants_1_hourly_run_seconds"] = round(
                (_iso(solo["end_date"]) or 0) - (_iso(solo["start_date"]) or 0), 2
            )
            ten = phase(api, sims, measured, "ten", timeout, results)
            results["merchants_10_hourly_seconds"] = span(ten.values())
            results["merchants_10_run_seconds"] = run_seconds(ten.values())
            starts = [_iso(r["start_date"]) or 0 for r in ten.values()]
            results["merchants_10_started_within_seconds"] = round(max(starts) - min(starts), 1)
            results["merchants_10_to_1_ratio"] = round(
                results["merchants_10_hourly_seconds"] / max(results["merchants_1_hourly_seconds"], 0.01), 2
            )
            # one run alone keeps about one core of two busy: much more, and something else ran beside the bench
            results["merchants_machine_shared"] = results["merchants_cpu_percent"]["alone"] > SHARED_CPU_PERCENT
            if results["merchants_machine_shared"]:
                log_step(
                    f"the machine was {results['merchants_cpu_percent']['alone']}% busy during the run alone: "
                    "something else ran beside the bench, its figures are not comparable"
                )

            # the same work: each of the ten read and changed what the twin did, with as many calls
            baseline = work_of(_url(server, BASELINE, passwords[BASELINE]), run_id(BASELINE, "alone"))
            work = {m: work_of(_url(server, m, passwords[m]), run_id(m, "ten")) for m in measured}
            differ = different_work(baseline, work)
            if not baseline or differ:
                raise BenchFailed(f"the measured runs did not do the baseline's work: {differ[:20] or 'none recorded'}")
            results["merchants_work_per_run"] = baseline
            results.update({f"merchants_{k}": v for k, v in check_warehouses(server, everyone, passwords).items()})

            # where the time goes
            alone_tasks, alone_waits, alone_total = tasks_of(api, alone)
            ten_tasks, ten_waits, ten_total = tasks_of(api, ten)
            results["merchants_task_seconds"] = {
                task: {"alone": alone_tasks.get(task), "ten_mean": ten_tasks.get(task)} for task in ten_tasks
            }
            results["merchants_task_wait_seconds"] = {
                "alone_mean": round(statistics.mean(alone_waits.values()), 1) if alone_waits else None,
                "ten_mean": round(statistics.mean(ten_waits.values()), 1) if ten_waits else None,
            }
            results["merchants_task_seconds_total"] = {"alone": alone_total, "ten": ten_total}
    finally:
        stopped = stop_stack(env)
        log_step(f"stopped {', '.join(stopped) or 'nothing'} and PostgreSQL; logs in {run_dir(env)}")
    results["merchants_bench_minutes"] = round((time.perf_counter() - began) / 60, 1)
    return results


def from_env() -> dict[str, Any]:
    """``bench_merchants``' arguments from the environment (module doc)."""
    return {
        "count": int(os.environ.get("BENCH_MERCHANTS", "10")),
        "returns": int(os.environ.get("BENCH_MERCHANTS_RETURNS", "5000")),
        "changed": int(os.environ.get("BENCH_MERCHANTS_CHANGED", "500")),
        "parallelism": int(os.environ.get("BENCH_MERCHANTS_PARALLELISM", "8")),
        "seed": int(os.environ.get("BENCH_MERCHANTS_SEED", "31")),
        "timeout": float(os.environ.get("BENCH_MERCHANTS_TIMEOUT", "1800")),
    }


def main() -> None:
    from bench.run import interrupt_on_sigterm

    interrupt_on_sigterm()
    results: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    try:
        results.update(bench_merchants(**from_env()))
    except BenchFailed as err:
        raise SystemExit(f"bench merchants FAILED:\n{err}") from None
    results["targets"] = verdict(results)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "merchants.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    print("\nresult                                   value   target")
    for key, (op, bound) in TARGETS.items():
        print(f"  {key:<36} {results.get(key, 'n/a')!s:>9}   {op} {bound}  {results['targets'][key]}")
    for key in ("merchants_1_hourly_seconds", "merchants_10_to_1_ratio", "merchants_initial_load_seconds"):
        print(f"  {key:<36} {results.get(key, 'n/a')!s:>9}")
    print(f"written to {RESULTS / 'merchants.json'} ({results['merchants_bench_minutes']} min)")


if __name__ == "__main__":
    main()
