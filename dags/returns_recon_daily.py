"""The daily returns-reconciliation DAG, one per merchant of the merchants file (``RECON_MERCHANTS_PATH``:
``returns_recon_<merchant>_daily``) or, without it, ``returns_recon_daily``; its documentation is
returns_recon.orchestration.docs.DAILY."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag

from returns_recon.merchants import Merchant, load_merchants
from returns_recon.orchestration.alerts import dag_failure_alert
from returns_recon.orchestration.defaults import DAILY_PARAMS, DEFAULT_ARGS, TAGS_COMMON
from returns_recon.orchestration.docs import DAILY, for_merchant
from returns_recon.orchestration.structure import build


def daily(merchant: Merchant | None) -> None:
    @dag(
        dag_id=merchant.dag_id("daily") if merchant else "returns_recon_daily",
        schedule="0 5 * * *",
        start_date=datetime(2026, 1, 1),
        catchup=False,
        max_active_runs=1,
        default_args=DEFAULT_ARGS,
        params=DAILY_PARAMS,
        on_failure_callback=dag_failure_alert,
        tags=[*TAGS_COMMON, "daily", *([f"merchant:{merchant.id}"] if merchant else [])],
        doc_md=for_merchant(DAILY, merchant),
    )
    def returns_recon_daily() -> None:
        build("daily", merchant)

    returns_recon_daily()


merchants = load_merchants()  # the file only: no network or database at parse time
for each in merchants.merchants if merchants else [None]:
    daily(each)
