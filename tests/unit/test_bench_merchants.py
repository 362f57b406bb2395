"""The pure parts of the merchants bench (bench/merchants.py, part of ``make bench``): the merchants file and the
connections it writes, the pools, which returns change, the spans, the same-work and isolation checks, the verdict
with its relative bound, and the environment of its own stack."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import merchants as bench
from bench.merchants import (
    BASELINE,
    UNTHROTTLED,
    Relative,
    choose_changes,
    connection_env,
    different_work,
    foreign_runs,
    merchant_ids,
    merchants_file,
    pools_import,
    run_id,
    span,
    verdict,
)
from local_stack.settings import ConnFields
from local_stack.simulators import Simulators
from returns_recon.merchants import POOL_SLOTS, parse_merchants
from returns_recon.settings import ReconSettings

pytestmark = pytest.mark.unit

IDS = [*merchant_ids(10), BASELINE]


def test_ten_merchants_and_their_twin() -> None:
    assert merchant_ids(10) == ["m01", "m02", "m03", "m04", "m05", "m06", "m07", "m08", "m09", "m10"]
    assert BASELINE not in merchant_ids(10)


def test_the_merchants_file_gives_each_merchant_its_own_connections_and_the_overrides(tmp_path: Path) -> None:
    text = merchants_file(IDS, tmp_path / "map.csv", {"overlap_hours": 0})
    parsed = parse_merchants(text, "bench merchants", tmp_path)
    assert parsed.ids == tuple(IDS)
    assert len({m.connections.warehouse for m in parsed.merchants}) == 11  # a warehouse each
    assert len({m.connections.cin7 for m in parsed.merchants}) == 11  # an API account (and pool) each
    m03 = parsed.by_id("m03")
    assert m03.dag_id("hourly") == "returns_recon_m03_hourly"
    assert m03.connections.warehouse == "recon_warehouse_m03"
    assert m03.connections.sitoo == "sitoo_m03"
    settings = m03.settings_for(ReconSettings())
    assert settings.overlap_hours == 0  # a run reads what changed since the last one, nothing more
    assert settings.location_map_path == tmp_path / "map.csv"
    assert not m03.events


def test_every_pool_the_dags_use_is_imported_with_its_slots(tmp_path: Path) -> None:
    parsed = parse_merchants(merchants_file(IDS, tmp_path / "map.csv", {}), "bench merchants", tmp_path)
    imported = pools_import(parsed.pools())
    wanted = {m.pool(system): POOL_SLOTS[system] for m in parsed.merchants for system in ("reveni", "cin7", "sitoo")}
    assert {name: pool["slots"] for name, pool in imported.items()} == wanted
    assert len(imported) == 33
    assert imported["cin7__cin7_core_m07"] == {
        "slots": 1,
        "description": "the bench's cin7 API account",
        "include_deferred": False,
    }


def test_each_merchant_reaches_its_own_database_and_the_shared_simulators_unthrottled() -> None:
    sims = Simulators(41001, 41002, 41003).env(cin7_calls_per_minute=UNTHROTTLED)
    server = ConnFields("127.0.0.1", 45432, "recon", "x", "recon")
    env = connection_env(["m01", "m02"], sims, server, {"m01": "pw1", "m02": "pw2"})
    assert sorted(env) == sorted(
        f"AIRFLOW_CONN_{name}_{m}"
        for m in ("M01", "M02")
        for name in ("RECON_WAREHOUSE", "REVENI", "CIN7_CORE", "SITOO")
    )
    warehouse = json.loads(env["AIRFLOW_CONN_RECON_WAREHOUSE_M02"])
    assert warehouse == {
        "conn_type": "postgres",
        "host": "127.0.0.1",
        "port": 45432,
        "login": "recon_m02",
        "password": "pw2",
        "schema": "recon_m02",
    }
    for merchant in ("M01", "M02"):
        for name, port in (("REVENI", 41001), ("CIN7_CORE", 41002), ("SITOO", 41003)):
            conn = json.loads(env[f"AIRFLOW_CONN_{name}_{merchant}"])
            assert conn["port"] == port
            assert conn["extra"]["calls_per_minute"] == UNTHROTTLED
    sitoo = json.loads(env["AIRFLOW_CONN_SITOO_M01"])
    assert sitoo["extra"]["site_id"] == 1
    assert sitoo["login"] == json.loads(sims["AIRFLOW_CONN_SITOO_DEFAULT"])["login"]


def test_the_changed_returns_are_spread_and_bring_their_sales_once() -> None:
    returns = [{"id": f"r{i}", "order": {"external_id": str(100 + i // 2)}} for i in range(20)]  # two per order
    sales = [{"ID": f"s{n}", "CustomerReference": str(n)} for n in range(100, 110)]
    chosen, touched = choose_changes(returns, sales, 10)
    assert [r["id"] for r in chosen] == [f"r{i}" for i in range(0, 20, 2)]
    assert [s["ID"] for s in touched] == [f"s{n}" for n in range(100, 110)]
    chosen, touched = choose_changes(returns, sales, 4)
    assert [r["id"] for r in chosen] == ["r0", "r5", "r10", "r15"]
    assert [s["ID"] for s in touched] == ["s100", "s102", "s105", "s107"]
    chosen, touched = choose_changes(returns[:2], sales, 2)  # one order: its sale once
    assert len(chosen) == 2
    assert [s["ID"] for s in touched] == ["s100"]
    assert choose_changes(returns, sales, 0) == ([], [])
    assert len(choose_changes(returns, [], 50)[0]) == 20  # no more than there are; a return without a sale


def test_the_span_runs_from_the_first_trigger_to_the_last_end() -> None:
    runs = [
        {"queued_at": "2026-12-05T08:00:01Z", "end_date": "2026-12-05T08:02:00+00:00"},
        {"queued_at": "2026-12-05T08:00:00.500Z", "end_date": "2026-12-05T08:03:10.250Z"},
        {"queued_at": "2026-12-05T08:00:02Z", "end_date": "2026-12-05T08:01:00Z"},
    ]
    assert span(runs) == 189.75
    assert span(runs[2:]) == 58.0


def test_a_measured_run_must_do_the_baselines_work() -> None:
    baseline = {"reveni.returns": [501, 500, 1], "cin7.sales": [1000, 500, 501]}
    assert different_work(baseline, {"m01": dict(baseline), "m02": dict(baseline)}) == []
    differ = different_work(baseline, {"m01": dict(baseline), "m02": {"reveni.returns": [1900, 1900, 4]}})
    assert differ == [
        "m02: cin7.sales None (baseline [1000, 500, 501])",
        "m02: reveni.returns [1900, 1900, 4] (baseline [501, 500, 1])",
    ]


def test_a_run_of_another_merchant_in_a_warehouse_is_found() -> None:
    assert run_id("m01", "ten") == "m01__ten"
    own = {"m01": ["m01__initial", "m01__ten"], "solo": ["solo__initial", "solo__alone"]}
    assert foreign_runs(own) == []
    assert foreign_runs({**own, "m02": ["m02__initial", "m01__ten", "m0__x", "manual__2026"]}) == [
        "m02: m01__ten",
        "m02: m0__x",
        "m02: manual__2026",
    ]


def test_the_target_is_ten_times_one_merchants_run() -> None:
    assert verdict({"merchants_10_hourly_seconds": 300.0, "merchants_1_hourly_seconds": 30.0}) == {
        "merchants_10_hourly_seconds": "met (<= 10 x merchants_1_hourly_seconds = 300.0)"
    }
    assert verdict({"merchants_10_hourly_seconds": 300.5, "merchants_1_hourly_seconds": 30.0}) == {
        "merchants_10_hourly_seconds": "MISSED (<= 10 x merchants_1_hourly_seconds = 300.0)"
    }
    # not measured, or no baseline to compare with: missed
    missed = "MISSED (<= 10 x merchants_1_hourly_seconds)"
    assert verdict({"merchants_10_hourly_seconds": 1.0}) == {"merchants_10_hourly_seconds": missed}
    assert verdict({"merchants_1_hourly_seconds": 30.0})["merchants_10_hourly_seconds"].startswith("MISSED")
    assert verdict({"a": 3, "b": 2}, {"a": ("<=", Relative(1.5, "b"))}) == {"a": "met (<= 1.5 x b = 3.0)"}


def test_make_bench_judges_the_merchants_figure_beside_the_others() -> None:
    from bench.run import TARGETS
    from bench.run import verdict as bench_verdict

    assert TARGETS["merchants_10_hourly_seconds"] == ("<=", Relative(10, "merchants_1_hourly_seconds"))
    said = bench_verdict(
        {"hourly_10k_seconds": 61, "merchants_10_hourly_seconds": 200.0, "merchants_1_hourly_seconds": 25.0}
    )
    assert said == {
        "hourly_10k_seconds": "MISSED (<= 60)",
        "merchants_10_hourly_seconds": "met (<= 10 x merchants_1_hourly_seconds = 250.0)",
    }


def test_the_stack_is_the_benchs_own(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Nothing of the caller's connections, merchants file, metadata database or executor reaches the bench."""
    monkeypatch.setenv("AIRFLOW_CONN_RECON_WAREHOUSE", "postgresql://finance:secret@prod.example.com:5432/recon")
    monkeypatch.setenv("AIRFLOW_CONN_REVENI_ACME", '{"conn_type": "http", "host": "api.reveni.io"}')
    monkeypatch.setenv("RECON_MERCHANTS_PATH", "/etc/recon/merchants.yaml")
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "postgresql+psycopg://prod/airflow")
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "CeleryExecutor")
    monkeypatch.setenv("AIRFLOW__CORE__PARALLELISM", "64")
    env = bench.bench_env(tmp_path, 8)
    warehouse = json.loads(env["AIRFLOW_CONN_RECON_WAREHOUSE"])
    assert warehouse["host"] == "127.0.0.1"
    assert str(warehouse["port"]) == env["RECON_WAREHOUSE_PORT"]
    assert "AIRFLOW_CONN_REVENI_ACME" not in env
    assert env["RECON_MERCHANTS_PATH"] == str(tmp_path / "merchants.yaml")
    assert "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN" not in env  # set to the bench's own PostgreSQL when it starts
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert env["AIRFLOW__CORE__PARALLELISM"] == "8"
    assert env["AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE"] == "False"  # only the bench's triggers run the DAGs
    assert env["RECON_POSTINGS_DRY_RUN"] == "true"
    assert env["RECON_TASK_RETRIES"] == "0"
    assert env["AIRFLOW_HOME"] == str(tmp_path / "airflow")
    assert env["RECON_LOCAL_DIR"] == str(tmp_path)
    for name in bench.PORTS:  # every port its own: a free one each
        assert env[name].isdigit()
    assert len({env[name] for name in bench.PORTS}) == len(bench.PORTS)


class _Server:
    def discard(self) -> None:
        pass


def _bench_run_without_its_parts(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, merchants) -> Path:
    """``bench.run.main`` with its scale and hourly parts and its warehouse replaced; ``merchants`` in place of
    ``bench_merchants``. Returns where latest.json goes."""
    import bench.run as run

    monkeypatch.setattr(run, "interrupt_on_sigterm", lambda: None)
    monkeypatch.setattr(run, "bench_warehouse", _Server)
    monkeypatch.setattr(run, "scale", lambda server, work, results, returns: results.update(recon_1m_seconds=50.0))
    monkeypatch.setattr(run, "hourly_and_postings", lambda *args: None)
    monkeypatch.setattr(run, "bench_merchants", merchants)
    monkeypatch.setattr(run, "RESULTS", tmp_path)
    return tmp_path / "latest.json"


def test_make_bench_writes_the_merchants_figures_and_their_verdict(monkeypatch, tmp_path: Path) -> None:
    import bench.run as run

    asked = []

    def merchants(**kwargs):
        asked.append(kwargs)
        return {"merchants_10_hourly_seconds": 170.0, "merchants_1_hourly_seconds": 16.0}

    monkeypatch.setenv("BENCH_MERCHANTS", "3")
    latest = _bench_run_without_its_parts(monkeypatch, tmp_path, merchants)
    run.main()
    assert asked == [{"count": 3, "returns": 5000, "changed": 500, "parallelism": 8, "seed": 31, "timeout": 1800.0}]
    written = json.loads(latest.read_text())
    assert written["merchants_10_hourly_seconds"] == 170.0
    assert written["targets"]["recon_1m_seconds"] == "met (<= 60)"
    assert written["targets"]["merchants_10_hourly_seconds"] == "MISSED (<= 10 x merchants_1_hourly_seconds = 160.0)"


def test_a_failed_merchants_run_fails_make_bench_after_the_other_figures_are_written(monkeypatch, tmp_path) -> None:
    import bench.run as run

    def merchants(**kwargs):
        raise bench.BenchFailed("1 of 10 runs failed: returns_recon_m04_hourly\n--- its log ends: boom")

    latest = _bench_run_without_its_parts(monkeypatch, tmp_path, merchants)
    with pytest.raises(SystemExit, match="m04_hourly"):
        run.main()
    written = json.loads(latest.read_text())
    assert written["recon_1m_seconds"] == 50.0  # the figures measured before it are kept
    assert "boom" in written["merchants_error"]
    assert written["targets"]["merchants_10_hourly_seconds"].startswith("MISSED")


def test_bench_merchants_0_leaves_the_merchants_out(monkeypatch, tmp_path: Path) -> None:
    import bench.run as run

    def merchants(**kwargs):
        raise AssertionError("not to be run")

    monkeypatch.setenv("BENCH_MERCHANTS", "0")
    latest = _bench_run_without_its_parts(monkeypatch, tmp_path, merchants)
    run.main()
    assert "merchants_10_hourly_seconds" not in json.loads(latest.read_text())["targets"]
