"""Settings shared by every DAG of the package."""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Literal

from airflow.sdk import ExceptionRetryPolicy, Param, RetryAction, RetryRule

from returns_recon.merchants import POOL_SLOTS

System = Literal["reveni", "cin7", "sitoo"]  # an API whose account a pool stands for

OWNER = "data-team"

# Misconfiguration and refused credentials fail at once; everything else is retried with
# backoff (Airflow 3.3 retry policies; the exception is named by path, so nothing is imported).
RETRY_POLICY = ExceptionRetryPolicy(
    rules=[
        RetryRule(
            exception="returns_recon.errors.NotRetryable",
            action=RetryAction.FAIL,
            reason="a retry cannot fix this: the log says what to change",
        )
    ]
)

DEFAULT_ARGS: dict = {
    "owner": OWNER,
    # RECON_TASK_RETRIES / RECON_RETRY_DELAY_SECONDS: deployment settings read at parse time
    # (plain environment, no I/O); the test suite sets 0 retries to see failures at once.
    "retries": int(os.environ.get("RECON_TASK_RETRIES", "2")),
    "retry_delay": timedelta(seconds=int(os.environ.get("RECON_RETRY_DELAY_SECONDS", "120"))),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=15),
    "retry_policy": RETRY_POLICY,
}

# Pools cap concurrent tasks per API account (created by `make demo`/`make up`, docker-compose and
# the README's deployment steps); the shared rate-limit budget paces the calls themselves.
REVENI_POOL, CIN7_POOL, SITOO_POOL = "reveni_api", "cin7_api", "sitoo_api"
SINGLE_MERCHANT_POOLS: dict[System, str] = {"reveni": REVENI_POOL, "cin7": CIN7_POOL, "sitoo": SITOO_POOL}
# slots per API account (a merchants file's pools have the same, returns_recon.merchants)
POOLS = {pool: POOL_SLOTS[system] for system, pool in SINGLE_MERCHANT_POOLS.items()}

# An hourly run not done this long after it started is late: Airflow stops it, which fails the run and
# sends the one failure alert (Airflow 3.3's DeadlineAlert would serve, but breaks `airflow dags test`).
HOURLY_RUN_TIMEOUT = timedelta(minutes=int(os.environ.get("RECON_HOURLY_TIMEOUT_MINUTES", "50")))

# An events run still going after this long is stopped (it fails, with the one alert): the events waiting behind it
# (one run at a time) are then taken by the next run.
EVENTS_RUN_TIMEOUT = timedelta(minutes=int(os.environ.get("RECON_EVENTS_TIMEOUT_MINUTES", "30")))

TAGS_COMMON = ["returns-recon", "reveni", "cin7-core", "sitoo"]

# The trigger form's fields (Airflow Params): left empty, a run uses the deployment's RECON_ settings.
DRY_RUN_PARAM = Param(
    None,
    type=["null", "boolean"],
    title="Dry run",
    description="Plan and log every corrective posting, send none (empty: RECON_POSTINGS_DRY_RUN).",
)
TRAILING_DAYS_PARAM = Param(
    None,
    type=["null", "number"],
    minimum=0,
    title="Trailing days",
    description="The daily run re-extracts this many days back (empty: RECON_TRAILING_DAYS, 14).",
)
HOURLY_PARAMS = {"dry_run": DRY_RUN_PARAM}
DAILY_PARAMS = {"dry_run": DRY_RUN_PARAM, "trailing_days": TRAILING_DAYS_PARAM}
