"""``make bench``: generate a scale scenario (fixed seed), load it, and measure the data-quality
suites, the reconciliation and its scan bound. Writes bench/results/latest.json.

    BENCH_RETURNS (default 100000)   returns in the scale scenario
"""

from __future__ import annotations

import json
import os
import platform
import resource
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from bench.load import load_scenario
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

# One pass joining the same tables once: the lower bound of any reconciliation over this data.
SCAN_BOUND = """
SELECT count(*), sum(coalesce(c.total, 0)), sum(coalesce(t.n, 0)), sum(coalesce(o.total_gross, 0))
FROM staging.stg_reveni__return_items i
JOIN staging.stg_reveni__returns r USING (return_id)
LEFT JOIN staging.stg_cin7__sales s ON s.customer_reference = r.order_external_id
LEFT JOIN staging.stg_cin7__credit_notes c ON c.sale_id = s.sale_id AND c.memo = 'reveni:' || r.return_id
LEFT JOIN (SELECT split_part(reference, ' ', 1) AS ref, count(*) AS n FROM staging.stg_cin7__stock_transfers
           GROUP BY 1) t ON t.ref = 'reveni:' || i.return_id || ':' || i.item_id
LEFT JOIN staging.stg_sitoo__orders o ON o.external_id = r.return_id
"""


def timed(step: str, results: dict, fn):
    started = time.perf_counter()
    value = fn()
    results[step] = round(time.perf_counter() - started, 2)
    print(f"  {step:<34} {results[step]:>9.2f} s", flush=True)
    return value


def main() -> None:
    returns = int(os.environ.get("BENCH_RETURNS", "100000"))
    label = f"{returns // 1000}k" if returns < 1_000_000 else f"{returns // 1_000_000}m"
    work = Path(tempfile.mkdtemp(prefix="recon-bench-"))
    results: dict = {"returns": returns, "machine": f"{platform.machine()}, {os.cpu_count()} cores",
                     "measured_at": datetime.now(UTC).isoformat(timespec="seconds")}  # fmt: skip
    print(f"benchmark on {returns} returns (work dir {work})")
    scenario = work / "scale.jsonl.gz"
    clock = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    timed("generate_seconds", results, lambda: generate(GeneratorConfig(returns=returns, seed=42, clock=clock),
                                                        scenario))  # fmt: skip
    write_location_map_csv(scenario, location_map_csv_path(scenario))
    server = EmbeddedWarehouse(work / "pg", port=int(os.environ.get("BENCH_PG_PORT", "15499")))
    server.start()
    name = f"bench_{uuid.uuid4().hex[:8]}"
    server.ensure_database(name, name, name)
    url = f"postgresql://{name}:{name}@127.0.0.1:{server.port}/{name}"
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            apply_migrations(conn)
            load_location_map(conn, location_map_csv_path(scenario), "bench")
            counts = timed("load_seconds", results, lambda: load_scenario(conn, scenario))
            conn.execute("VACUUM ANALYZE")
            results["items"] = conn.execute("SELECT count(*) FROM staging.stg_reveni__return_items").fetchone()[0]
            settings = ReconSettings(recon_window_days=3650)
            gx_url = url.replace("postgresql://", "postgresql+psycopg://")
            timed(f"dq_{label}_seconds", results, lambda: check_warehouse(conn, gx_url, "bench", settings, None))
            timed(f"recon_{label}_seconds", results, lambda: reconcile(conn, "bench", settings, "daily"))
            timed("scan_bound_seconds", results, lambda: conn.execute(SCAN_BOUND).fetchone())
            results[f"recon_{label}_scan_bound_ratio"] = round(
                results[f"recon_{label}_seconds"] / max(results["scan_bound_seconds"], 0.01), 2
            )
            results["loaded"] = counts
    finally:
        server.stop()
    results["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(results, indent=2, default=str))
    print(json.dumps({k: v for k, v in results.items() if k != "loaded"}, indent=2))


if __name__ == "__main__":
    main()
