"""The manual go-live check DAG, one per merchant of the merchants file (``RECON_MERCHANTS_PATH``:
``returns_recon_<merchant>_golive_check``) or, without it, ``returns_recon_golive_check``; its documentation is
returns_recon.orchestration.docs.GOLIVE_CHECK."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag, task_group

from returns_recon.merchants import Merchant, load_merchants
from returns_recon.orchestration.alerts import dag_failure_alert
from returns_recon.orchestration.defaults import DEFAULT_ARGS, TAGS_COMMON
from returns_recon.orchestration.docs import GOLIVE_CHECK, for_merchant
from returns_recon.orchestration.structure import pools
from returns_recon.orchestration.tasks import check_connections, golive_check, migrate_warehouse


def golive(merchant: Merchant | None) -> None:
    @dag(
        dag_id=merchant.dag_id("golive_check") if merchant else "returns_recon_golive_check",
        schedule=None,  # triggered by hand (docs/golive.md)
        start_date=datetime(2026, 1, 1),
        catchup=False,
        max_active_runs=1,
        default_args=DEFAULT_ARGS,
        on_failure_callback=dag_failure_alert,
        tags=[*TAGS_COMMON, "golive", *([f"merchant:{merchant.id}"] if merchant else [])],
        doc_md=for_merchant(GOLIVE_CHECK, merchant),
    )
    def returns_recon_golive_check() -> None:
        @task_group
        def preflight() -> None:
            """Connections well formed, warehouse schema current."""
            check_connections() >> migrate_warehouse()

        @task_group
        def check() -> None:
            """One read-only question per undocumented assumption; a blocking failure holds that system's
            postings."""
            golive_check.override(pool=pools(merchant)["cin7"])()

        preflight() >> check()

    returns_recon_golive_check()


merchants = load_merchants()  # the file only: no network or database at parse time
for each in merchants.merchants if merchants else [None]:
    golive(each)
