"""
### Returns reconciliation — hourly

Checks that every connection is configured, brings the warehouse schema up to date, and (as the
package grows) extracts what changed in Reveni, Cin7 Core and Sitoo, checks it, reconciles it and
posts the corrections that are safe to post.

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
    dag_id="returns_recon_hourly",
    schedule="@hourly",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    on_failure_callback=dag_failure_alert,
    tags=[*TAGS_COMMON, "hourly"],
    doc_md=__doc__,
)
def returns_recon_hourly() -> None:
    build("hourly")


returns_recon_hourly()
