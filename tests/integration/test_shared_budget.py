"""The client-side budget is shared by every process calling the same account: two workers
together stay under the limit the service enforces."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]

WORKER = textwrap.dedent(
    """
    import sys
    from returns_recon.orchestration.hooks import Cin7CoreHook
    client = Cin7CoreHook(budget_dsn=sys.argv[1]).client()
    for _ in range(int(sys.argv[2])):
        client.get("ref/location", {"Page": 1, "Limit": 1})
    print("done", sum(client.calls.values()))
    """
)


def test_two_processes_share_one_budget(simulators, small_scenario, warehouse_db) -> None:
    limit, per_worker = 20, 15  # together 30 calls: 20 now, 10 in the next minute
    simulators.load(small_scenario)
    simulators.faults("cin7", rate_limit_per_minute=limit)
    simulators.counters(reset=True)
    env = {
        **os.environ,
        **simulators.env(cin7_calls_per_minute=limit),
        "PYTHONPATH": str(ROOT),
    }
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, warehouse_db.url, str(per_worker)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [worker.communicate(timeout=300) for worker in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    counters = simulators.counters()["cin7"]
    assert counters["calls"].get("ref/location") == 2 * per_worker
    assert counters["total_throttled"] == 0
