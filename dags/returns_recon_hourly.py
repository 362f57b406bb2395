"""The hourly returns-reconciliation DAG; its documentation is returns_recon.orchestration.docs.HOURLY."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag

from returns_recon.orchestration.alerts import dag_failure_alert
from returns_recon.orchestration.defaults import DEFAULT_ARGS, HOURLY_PARAMS, HOURLY_RUN_TIMEOUT, TAGS_COMMON
from returns_recon.orchestration.docs import HOURLY
from returns_recon.orchestration.structure import build


@dag(
    dag_id="returns_recon_hourly",
    schedule="@hourly",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    params=HOURLY_PARAMS,
    on_failure_callback=dag_failure_alert,
    # a run still going well past its hour is stopped and mails the data team once (the failure alert)
    dagrun_timeout=HOURLY_RUN_TIMEOUT,
    tags=[*TAGS_COMMON, "hourly"],
    doc_md=HOURLY,
)
def returns_recon_hourly() -> None:
    build("hourly")


returns_recon_hourly()
