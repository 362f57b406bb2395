"""
### Returns reconciliation — hourly

Every hour: what changed in Reveni, Cin7 Core and Sitoo (plus a 48-hour overlap for late updates) is
extracted, checked, reconciled against every return in the window, and the corrections that are
safe to make are posted exactly once.

**Stages** (task groups): `preflight` (connections, warehouse schema, API reachability, location map)
→ `extract` (Reveni, then Cin7 Core; Sitoo alongside) → `check` (Great Expectations) → `reconcile`
(exception queue, published tables) → `post` (corrective postings).

**Failures and what to do**
- `preflight.check_connections`: the log lists each missing or malformed connection and the
  `AIRFLOW_CONN_*` variable to set. Fix it, then clear the task (no retries: a retry cannot fix it).
- `preflight.probe_apis`: an API is unreachable or refused the credentials (the log names the
  connection). Check the service's status page and the connection.
- `preflight.load_location_map`: the CSV is missing or has duplicate return points; fix the file named
  in the log (`RECON_LOCATION_MAP_PATH`).
- `extract.*`: retried with backoff on throttling and 5xx; a failure after the retries means the API is
  down or kept refusing. Records that fail validation do not fail the task: they are quarantined
  (`raw.quarantine`) and become `invalid_record` exceptions.
- `check.data_quality`: a critical expectation failed (duplicate keys, a table emptied, broken
  references). Nothing is posted this run. Read the summary in the log, `recon.dq_results` and the
  Data Docs, fix the cause, then clear.
- `reconcile.reconcile_and_publish`: an audit of the published tables failed; the previous tables stay.
- `post.post_corrections`: another run holds the postings lock, or this run's checks did not pass.
  Refused postings do not fail the task: they become `posting_refused` exceptions for finance;
  replay with `python -m returns_recon.cli postings replay`.

See `docs/operations.md` for recovery steps.

Only one run at a time (`max_active_runs=1`): the DAG posts to external systems. A failed run mails
the data team once (after retries).
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
