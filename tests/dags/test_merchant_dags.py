"""With a merchants file, one DAG set per merchant (issue 22): its ids, tags, docs and pools, nothing of another
merchant's; a merchant without stores has no Sitoo task; without the file, the single merchant's DAGs."""

from __future__ import annotations

from pathlib import Path

import pytest

from returns_recon.merchants import load_merchants
from tests.dags.policies import dag_violations

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "include" / "merchants.example.yaml"
KINDS = ("hourly", "daily", "golive_check")


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RECON_MERCHANTS_PATH", str(EXAMPLE))
        yield DagBag(dag_folder=str(ROOT / "dags"))


def test_each_merchant_gets_its_own_dags(dagbag) -> None:
    merchants = load_merchants(EXAMPLE)
    assert merchants is not None
    assert dagbag.import_errors == {}
    expected = {m.dag_id(kind) for m in merchants.merchants for kind in KINDS}
    expected |= {m.dag_id("events") for m in merchants.merchants if m.events}
    assert set(dagbag.dag_ids) == expected
    assert not {"returns_recon_hourly", "returns_recon_daily", "returns_recon_events"} & set(dagbag.dag_ids)


def test_a_merchants_dags_carry_its_name_pools_and_assets(dagbag) -> None:
    merchants = load_merchants(EXAMPLE)
    assert merchants is not None
    declared = frozenset(merchants.pools())
    for merchant in merchants.merchants:
        own_pools = {merchant.pool(s) for s in ("reveni", "cin7", "sitoo") if getattr(merchant.connections, s)}
        for kind in KINDS:
            dag = dagbag.dags[merchant.dag_id(kind)]
            assert f"merchant:{merchant.id}" in dag.tags
            assert merchant.name in dag.doc_md
            assert dag_violations(dag, declared) == []
            used = {t.pool for t in dag.tasks} - {"default_pool"}
            assert used <= own_pools, (dag.dag_id, used)
            outlets = {a.uri for t in dag.tasks for a in t.outlets}
            assert all(uri.startswith(f"recon-warehouse://{merchant.id}/") for uri in outlets), outlets


def test_a_merchant_without_stores_reads_no_sitoo(dagbag) -> None:
    merchants = load_merchants(EXAMPLE)
    assert merchants is not None
    without = next(m for m in merchants.merchants if m.connections.sitoo is None)
    with_stores = next(m for m in merchants.merchants if m.connections.sitoo is not None)
    assert "extract.sitoo.orders_transactions_reference" not in dagbag.dags[without.dag_id("hourly")].task_ids
    assert "extract.sitoo.orders_transactions_reference" in dagbag.dags[with_stores.dag_id("hourly")].task_ids
