"""
### Returns reconciliation — daily

Checks that every connection is configured and brings the warehouse schema up to date, then (as
the package grows) refreshes reference data, re-extracts a trailing window, reconciles the
trailing window, publishes the finance tables and sends the exception emails.

**Failures and what to do**
- `preflight.check_connections` failed: the log lists each missing or malformed connection and
  the `AIRFLOW_CONN_*` variable to set; fix it and clear the task.
- `preflight.migrate_warehouse` failed: the warehouse is unreachable or a migration was edited
  after it was applied; the log says which. See `docs/operations.md`.

Only one run at a time (`max_active_runs=1`): the DAG posts to external systems.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag

from returns_recon.dag_defaults import DEFAULT_ARGS, TAGS_COMMON
from returns_recon.dag_structure import build
from returns_recon.notify.alerts import dag_failure_alert


@dag(
    dag_id="returns_recon_daily",
    schedule="0 5 * * *",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    on_failure_callback=dag_failure_alert,
    tags=[*TAGS_COMMON, "daily"],
    doc_md=__doc__,
)
def returns_recon_daily() -> None:
    build("daily")


returns_recon_daily()
