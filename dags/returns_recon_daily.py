"""The daily returns-reconciliation DAG; its documentation is returns_recon.orchestration.docs.DAILY."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag

from returns_recon.orchestration.alerts import dag_failure_alert
from returns_recon.orchestration.defaults import DAILY_PARAMS, DEFAULT_ARGS, TAGS_COMMON
from returns_recon.orchestration.docs import DAILY
from returns_recon.orchestration.structure import build


@dag(
    dag_id="returns_recon_daily",
    schedule="0 5 * * *",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    params=DAILY_PARAMS,
    on_failure_callback=dag_failure_alert,
    tags=[*TAGS_COMMON, "daily"],
    doc_md=DAILY,
)
def returns_recon_daily() -> None:
    build("daily")


returns_recon_daily()
