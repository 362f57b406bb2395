"""The manual go-live check DAG; its documentation is returns_recon.orchestration.docs.GOLIVE_CHECK."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag, task_group

from returns_recon.orchestration.alerts import dag_failure_alert
from returns_recon.orchestration.defaults import DEFAULT_ARGS, TAGS_COMMON
from returns_recon.orchestration.docs import GOLIVE_CHECK
from returns_recon.orchestration.tasks import check_connections, golive_check, migrate_warehouse


@dag(
    dag_id="returns_recon_golive_check",
    schedule=None,  # triggered by hand (docs/golive.md)
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    on_failure_callback=dag_failure_alert,
    tags=[*TAGS_COMMON, "golive"],
    doc_md=GOLIVE_CHECK,
)
def returns_recon_golive_check() -> None:
    @task_group
    def preflight() -> None:
        """Connections well formed, warehouse schema current."""
        check_connections() >> migrate_warehouse()

    @task_group
    def check() -> None:
        """One read-only question per undocumented assumption; a blocking failure holds that system's postings."""
        golive_check()

    preflight() >> check()


returns_recon_golive_check()
