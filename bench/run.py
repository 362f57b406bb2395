"""``make bench``: how the package scales, measured against the limits that bound it.

1. Scale: a 1,000,000-return scenario (fixed seed) loaded into an embedded warehouse through the
   pipeline's models and loader; the daily reconciliation over it, and the scan bound (one pass
   joining every table the reconciliation reads, once) in the same run.
2. Hourly: a warehouse holding 100,000 returns of history (the data-quality suites are timed on
   it), then one hourly run (extract, checks, reconcile and publish, plan postings) against the
   simulators, throttling off, with 10,000 returns changed; API calls from the simulators' counters.
3. Postings at the limit: Cin7 Core's 60 calls a minute switched on (simulators and our shared
   budget, which spaces calls evenly: the rate measured is the sustained one, not a burst).
4. Merchants (``bench.merchants``, its own local Airflow): ten merchants' hourly runs at once, 500 returns
   changed of 5,000 each, against one merchant's run of the same size alone.

Writes bench/results/latest.json and prints a table. Environment: BENCH_RETURNS (1000000),
BENCH_HISTORY (100000), BENCH_CHANGED (10000), BENCH_POSTINGS (120), BENCH_PG_PORT (15499), and those of
``bench.merchants`` (BENCH_MERCHANTS=0 leaves that part out).
Its warehouse lives in .local/bench/warehouse while it runs; an interrupted run (Ctrl-C, SIGTERM) stops it,
and the next run stops one a killed run left behind.
"""

from __future__ import annotations

import json
import math
import os
import platform
import resource
import shutil
import signal
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from bench.load import load_scenario
from bench.merchants import TARGETS as MERCHANTS_TARGETS
from bench.merchants import BenchFailed, bench_merchants, from_env
from bench.merchants import verdict as judged
from local_stack.settings import local_dir
from local_stack.simulators import CREDS, start_simulators, stop_simulators
from local_stack.warehouse import EmbeddedWarehouse
from recon_simulators.generate import location_map_csv_path, write_location_map_csv
from recon_simulators.generator import GeneratorConfig, generate
from returns_recon.location_map import load_location_map
from returns_recon.quality.check import check_warehouse
from returns_recon.reconcile.engine import reconcile
from returns_recon.settings import ReconSettings
from returns_recon.warehouse.migrate import apply_migrations

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
SCAN_BOUND = (Path(__file__).parent / "scan_bound.sql").read_text()
# the warehouse's settings for the run (a production warehouse would be tuned at least as much)
PG_SETTINGS = (("shared_buffers", "1GB"), ("max_wal_size", "4GB"), ("work_mem", "64MB"))
# largest page each endpoint serves: the minimum number of calls is rows / page, rounded up
PAGE = {
    ("reveni", "returns"): 500,
    ("cin7", "sale_list"): 1000,
    ("cin7", "sales"): 1,
    ("cin7", "stock_transfers"): 1000,
    ("cin7", "credit_note_list"): 1000,
    ("sitoo", "orders"): 1000,
    ("sitoo", "warehouse_transactions"): 1000,
    ("cin7", "products"): 1000,
    ("cin7", "locations"): 1000,
    ("cin7", "availability"): 1000,
    ("sitoo", "products"): 1000,
    ("sitoo", "warehouses"): 1000,
    ("sitoo", "stores"): 1000,
}
TARGETS = {
    "recon_1m_seconds": ("<=", 60),
    "recon_1m_scan_bound_ratio": ("<=", 5),
    "hourly_10k_seconds": ("<=", 60),
    "api_calls_ratio_to_minimum": ("<=", 1.2),
    "postings_per_minute_at_limit": (">=", 50),
    "throttled_responses": ("==", 0),
    "dq_100k_seconds": ("<", 60),
    "peak_rss_mb": ("<=", 1024),
    **MERCHANTS_TARGETS,  # merchants_10_hourly_seconds <= 10 x merchants_1_hourly_seconds
}


def timed(step: str, results: dict, fn: Callable[[], Any]) -> Any:
    started = time.perf_counter()
    value = fn()
    results[step] = round(time.perf_counter() - started, 2)
    print(f"  {step:<36} {results[step]:>9.2f} s", flush=True)
    return value


def label(n: int) -> str:
    return f"{n // 1_000_000}m" if n >= 1_000_000 and n % 1_000_000 == 0 else f"{n // 1000}k"


def rss_mb(who: int) -> float:
    return round(resource.getrusage(who).ru_maxrss / 1024, 1)


def scenario(work: Path, name: str, returns: int, seed: int, **config: Any) -> Path:
    path = work / f"{name}.jsonl.gz"
    clock = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    config = {"event_fraction": 0.0, "catalog": (1, 100_000), **config}  # one merchant's catalog throughout
    generate(GeneratorConfig(returns=returns, seed=seed, clock=clock, **config), path)
    write_location_map_csv(path, location_map_csv_path(path))
    return path


def new_database(server: EmbeddedWarehouse, scenario_path: Path) -> str:
    name = f"bench_{uuid.uuid4().hex[:8]}"
    server.ensure_database(name, name, name)
    url = f"postgresql://{name}:{name}@127.0.0.1:{server.port}/{name}"
    with psycopg.connect(url, autocommit=True) as conn:
        apply_migrations(conn)
        load_location_map(conn, location_map_csv_path(scenario_path), "bench")
    return url


def load(url: str, path: Path, work: Path, results: dict, step: str) -> None:
    counts = timed(step, results, lambda: load_scenario(url, path, work / f"split-{path.stem}"))
    results.setdefault("loaded", {})[path.stem] = counts
    results["loader_peak_rss_mb"] = rss_mb(resource.RUSAGE_CHILDREN)
    shutil.rmtree(work / f"split-{path.stem}", ignore_errors=True)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


def scale(server: EmbeddedWarehouse, work: Path, results: dict, returns: int) -> None:
    tag = label(returns)
    print(f"scale: {returns} returns")
    path = timed(f"generate_{tag}_seconds", results, lambda: scenario(work, f"scale-{tag}", returns, 42))
    url = new_database(server, path)
    load(url, path, work, results, f"load_{tag}_seconds")
    path.unlink()
    settings = ReconSettings(recon_window_days=3650)
    with psycopg.connect(url, autocommit=True) as conn:  # a fresh session, as a task has
        result = timed(f"recon_{tag}_seconds", results, lambda: reconcile(conn, "bench-daily", settings, "daily"))
        results[f"recon_{tag}_returns_in_scope"] = result.returns_in_scope
        published = conn.execute("SELECT count(*) FROM recon.fct_return_reconciliation").fetchone()[0]
        results[f"recon_{tag}_items"] = published
        results[f"recon_{tag}_exceptions"] = result.exceptions_found
        timed(f"scan_bound_{tag}_seconds", results, lambda: conn.execute(SCAN_BOUND).fetchone())
    results[f"recon_{tag}_scan_bound_ratio"] = round(
        results[f"recon_{tag}_seconds"] / max(results[f"scan_bound_{tag}_seconds"], 0.01), 2
    )
    server.drop_database(url.rsplit("/", 1)[1])


def hourly_and_postings(
    server: EmbeddedWarehouse, work: Path, results: dict, history: int, changed: int, postings: int
) -> None:
    from returns_recon.apis.client import RetrySettings
    from returns_recon.extract.run import Clients, extract_all
    from returns_recon.orchestration.hooks import Cin7CoreHook, ReveniHook, SitooHook
    from returns_recon.postings.execute import execute, quality_gate
    from returns_recon.postings.plan import plan

    print(f"hourly: {history} returns of history, {changed} changed")
    past = timed(f"generate_{label(history)}_seconds", results, lambda: scenario(work, "history", history, 7))
    url = new_database(server, past)
    load(url, past, work, results, f"load_{label(history)}_seconds")
    settings = ReconSettings()
    gx_url = url.replace("postgresql://", "postgresql+psycopg://")
    with psycopg.connect(url, autocommit=True) as conn:
        timed(
            f"dq_{label(history)}_seconds", results, lambda: check_warehouse(conn, gx_url, "bench-dq", settings, None)
        )
    world = scenario(work, "changed", changed, 8, first_order_number=5_000_000)
    with (work / "simulators.log").open("wb") as log:
        sims, proc = start_simulators(log)
        try:
            sims.load(world)
            for key, value in sims.env(cin7_calls_per_minute=60).items():
                os.environ[key] = value
            retry = RetrySettings(initial_wait=0.2, max_wait=3, read_timeout=10)

            def clients(budget: str | None) -> Clients:
                return Clients(
                    ReveniHook(budget_dsn=budget, retry=retry).client(),
                    Cin7CoreHook(budget_dsn=budget, retry=retry).client(),
                    SitooHook(budget_dsn=budget, retry=retry).client(),
                    CREDS.sitoo_site_id,
                )

            unthrottled = clients(None)
            sims.counters(reset=True)
            dry = ReconSettings(postings_dry_run=True)

            def hourly() -> None:
                with psycopg.connect(url, autocommit=True) as conn:
                    load_location_map(conn, location_map_csv_path(world), "bench-hourly")
                    extract_all(conn, unthrottled, "bench-hourly", "hourly", dry)
                    check_warehouse(conn, gx_url, "bench-hourly", dry, None)
                    reconcile(conn, "bench-hourly", dry, "hourly")
                    plan(conn, "bench-hourly", dry)

            timed(f"hourly_{label(changed)}_seconds", results, hourly)
            counters = sims.counters()
            calls = sum(c["total_calls"] for c in counters.values())
            with psycopg.connect(url, autocommit=True) as conn:
                rows = conn.execute(
                    "SELECT source, entity, count(*) FROM raw.api_records WHERE run_id = 'bench-hourly' GROUP BY 1, 2"
                ).fetchall()
            minimum = sum(math.ceil(n / PAGE.get((s, e), 1000)) for s, e, n in rows)
            results["api_calls"] = calls
            results["api_calls_minimum"] = minimum
            results["api_calls_ratio_to_minimum"] = round(calls / max(minimum, 1), 3)
            results["api_calls_per_1000_returns"] = round(calls / changed * 1000, 1)
            results["cin7_calls_per_changed_return"] = round(counters["cin7"]["total_calls"] / changed, 3)
            print(f"  API calls {calls}, minimum {minimum}", flush=True)

            # the go-live check first, as before any real go-live: postings stay held until it passes
            from returns_recon.golive import run_golive_check

            with psycopg.connect(url, autocommit=True) as conn:
                golive = run_golive_check(conn, unthrottled, settings, "bench-golive")
            print(golive.render(), flush=True)
            results["golive_check_ok"] = golive.ok

            # postings against Cin7 Core at its limit: ours (shared budget) and the simulator's
            sims.faults("cin7", rate_limit_per_minute=60)
            limited = clients(url)
            capped = ReconSettings(max_postings_per_run=postings, postings_disabled=["sitoo"])
            with psycopg.connect(url, autocommit=True) as conn:
                # the changed returns' postings (the history lives only in the warehouse, not in the simulators)
                conn.execute("""UPDATE recon.postings SET status = 'skipped' WHERE return_id NOT IN (
                                  SELECT natural_key FROM raw.api_records
                                  WHERE source = 'reveni' AND run_id = 'bench-hourly')""")
                quality_gate(conn, "bench-hourly")
                sims.counters(reset=True)
                started = time.perf_counter()
                report = execute(conn, limited, "bench-postings", capped)
                minutes = (time.perf_counter() - started) / 60
            sent = report.done + report.adopted
            cin7 = sims.counters()["cin7"]
            results["postings_sent"] = sent
            results["postings_cin7_calls"] = cin7["calls"]
            results["postings_report"] = report.as_dict()
            results["postings_per_minute_at_limit"] = round(sent / minutes, 1)
            results["throttled_responses"] = cin7["total_throttled"]
            print(
                f"  postings {sent} in {minutes:.2f} min, {cin7['calls']} calls, {cin7['total_throttled']} throttled",
                flush=True,
            )
        finally:
            stop_simulators(proc)
    server.drop_database(url.rsplit("/", 1)[1])


def verdict(results: dict) -> dict[str, str]:
    """``met`` or ``MISSED`` per target measured, with its bound (a bound relative to another result with its
    value: ``bench.merchants.Relative``)."""
    return judged(results, {key: target for key, target in TARGETS.items() if key in results})


def bench_warehouse() -> EmbeddedWarehouse:
    """A fresh embedded warehouse for this run, in .local/bench/warehouse (RECON_LOCAL_DIR): one left
    running there by an interrupted run is stopped and emptied first, so its port is free again."""
    data = local_dir(os.environ) / "bench" / "warehouse"
    port = int(os.environ.get("BENCH_PG_PORT", "15499"))
    server = EmbeddedWarehouse(data, port=port, settings=PG_SETTINGS)
    if server.is_running() and not server.abandoned():
        raise SystemExit(f"another `make bench` is running (its warehouse: {data}); wait for it or stop it")
    server.discard()
    server.start(owner=True)  # owner: a later start on this port stops it if this run is killed
    return server


def interrupt_on_sigterm() -> None:
    """SIGTERM (a timeout, `kill`) ends the run as Ctrl-C does, through the `finally` that stops the
    warehouse and the simulators."""

    def interrupted(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, interrupted)


def main() -> None:
    interrupt_on_sigterm()
    returns = int(os.environ.get("BENCH_RETURNS", "1000000"))
    history = int(os.environ.get("BENCH_HISTORY", "100000"))
    changed = int(os.environ.get("BENCH_CHANGED", "10000"))
    postings = int(os.environ.get("BENCH_POSTINGS", "120"))
    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="recon-bench-"))
    results: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "warehouse_settings": dict(PG_SETTINGS),
    }
    server = bench_warehouse()
    try:
        scale(server, work, results, returns)
        hourly_and_postings(server, work, results, history, changed, postings)
    finally:
        server.discard()
        shutil.rmtree(work, ignore_errors=True)
    merchants = from_env()
    if merchants["count"] > 0:
        print(f"merchants: {merchants['count']} merchants' hourly runs at once, and one alone")
        try:
            results.update(bench_merchants(**merchants))
        except BenchFailed as err:  # the figures above are written all the same; the bench then fails
            results["merchants_error"] = str(err)
    results["peak_rss_mb"] = max(rss_mb(resource.RUSAGE_SELF), results.get("loader_peak_rss_mb", 0))
    results["bench_minutes"] = round((time.perf_counter() - started) / 60, 1)
    results["targets"] = verdict(results)
    if "merchants_error" in results:
        results["targets"]["merchants_10_hourly_seconds"] = "MISSED (the runs failed: merchants_error)"
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    print("\nresult                                   value   target")
    for key, (op, bound) in TARGETS.items():
        print(f"  {key:<36} {results.get(key, 'n/a')!s:>9}   {op} {bound}  {results['targets'].get(key, '')}")
    print(f"written to {RESULTS / 'latest.json'} ({results['bench_minutes']} min)")
    if "merchants_error" in results:
        raise SystemExit(f"bench merchants FAILED:\n{results['merchants_error']}")


if __name__ == "__main__":
    main()
