"""The hourly returns-reconciliation DAG, one per merchant of the merchants file (``RECON_MERCHANTS_PATH``:
``returns_recon_<merchant>_hourly``) or, without it, ``returns_recon_hourly``; its documentation is
returns_recon.orchestration.docs.HOURLY."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag

from returns_recon.merchants import Merchant, load_merchants
from returns_recon.orchestration.alerts import dag_failure_alert
from returns_recon.orchestration.defaults import DEFAULT_ARGS, HOURLY_PARAMS, HOURLY_RUN_TIMEOUT, TAGS_COMMON
from returns_recon.orchestration.docs import HOURLY, for_merchant
from returns_recon.orchestration.structure import build


def hourly(merchant: Merchant | None) -> None:
    @dag(
        dag_id=merchant.dag_id("hourly") if merchant else "returns_recon_hourly",
        schedule="@hourly",
        start_date=datetime(2026, 1, 1),
        catchup=False,
        max_active_runs=1,
        default_args=DEFAULT_ARGS,
        params=HOURLY_PARAMS,
        on_failure_callback=dag_failure_alert,
        # a run still going well past its hour is stopped and mails the data team once (the failure alert)
        dagrun_timeout=HOURLY_RUN_TIMEOUT,
        tags=[*TAGS_COMMON, "hourly", *([f"merchant:{merchant.id}"] if merchant else [])],
        doc_md=for_merchant(HOURLY, merchant),
    )
    def returns_recon_hourly() -> None:
        build("hourly", merchant)

    returns_recon_hourly()


merchants = load_merchants()  # the file only: no network or database at parse time
for each in merchants.merchants if merchants else [None]:
    hourly(each)
