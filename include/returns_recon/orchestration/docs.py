"""The DAGs' documentation (shown in the Airflow UI), kept in one place."""

from __future__ import annotations

FAILURES = """**Failures and what to do**
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
  replay with `python -m returns_recon.cli postings replay`. Postings `held` (nothing sent to that system):
  its go-live check has not passed; trigger `returns_recon_golive_check` (docs/golive.md).

"""

NOTIFY_FAILURES = """- `notify.send_exception_emails`: `DigestNotSent`, the SMTP server refused or is unreachable
  (`smtp_default`, named with host and port); the data team is alerted through `RECON_ALERT_FALLBACK_CONN_ID` if set; a
  re-run sends only the mails not yet sent today. The mail goes out even when posting failed;
  `run_failed_if_any_task_failed` then fails the run.

"""

OPERATIONS = "See `docs/operations.md` for recovery steps."

HOURLY = (
    """### Returns reconciliation — hourly

Every hour: what changed in Reveni, Cin7 Core and Sitoo (plus a 48-hour overlap for late updates) is
extracted, checked, reconciled against every return in the window, and the corrections that are
safe to make are posted exactly once.

**Stages** (task groups): `preflight` (connections, warehouse schema, API reachability, location map)
→ `extract` (Reveni, then Cin7 Core; Sitoo alongside) → `check` (Great Expectations) → `reconcile`
(exception queue, published tables) → `post` (corrective postings).

**Trigger with config:** *Dry run* plans and logs this run's postings and sends none (empty: the
deployment's `RECON_POSTINGS_DRY_RUN`).

"""
    + FAILURES
    + OPERATIONS
    + """


Only one run at a time (`max_active_runs=1`): the DAG posts to external systems. A failed run mails
the data team once (after retries).
"""
)

DAILY = (
    """### Returns reconciliation — daily

Every morning: reference data (products, locations, stores, warehouses, stock) is refreshed, a
trailing 14-day window re-extracted, the 90-day window reconciled and published, corrections posted,
and each owner (finance, operations, customer service, data) gets the exception email.

**Stages** (task groups): `preflight` (connections, warehouse schema, API reachability, location map)
→ `extract` (Reveni, then Cin7 Core; Sitoo alongside) → `check` (Great Expectations) → `reconcile`
(exception queue, published tables) → `post` (corrective postings) → `notify` (one email per owner).

**Trigger with config:** *Dry run* plans and logs this run's postings and sends none; *Trailing days*
re-extracts that many days back instead of 14 (e.g. after an outage). Empty: the deployment's settings.

"""
    + FAILURES
    + NOTIFY_FAILURES
    + OPERATIONS
    + """


Only one run at a time (`max_active_runs=1`): the DAG posts to external systems. A failed run mails
the data team once (after retries).
"""
)

GOLIVE_CHECK = """### Returns reconciliation — go-live check (manual)

Run it by hand (Trigger DAG) when the connections point at a merchant's accounts for the first time (sandbox,
then live), and again after any change to those accounts or to `RECON_SALE_MATCH_FIELD`,
`RECON_SITOO_RESTOCK_TRANSACTION_TYPE` or the connections. It asks each account, read-only, the questions
the vendors' documentation leaves open (one or two GETs each) and stores the answers in `recon.golive_checks`;
the task log prints the report (one line per check: expected, observed, PASS/FAIL/DIFFERS/UNVERIFIED/ERROR).

**Postings to Cin7 Core or Sitoo stay held** (status `held` in `recon.postings`, nothing sent) until the latest
go-live run of that system has no failed blocking check. A system never checked is held too. Held postings
are sent by the next hourly or daily run after the check passes. `RECON_GOLIVE_OVERRIDE='["cin7"]'` releases a
system explicitly, despite a failed check (the merchant's decision; the report says so).

**Stages:** `preflight` (connections, warehouse schema) → `check.golive_check`.

**Failures and what to do**
- `check.golive_check` failed: a blocking check failed (the log names it and what stays held). Read
  `docs/golive.md` for what to do about that check, fix the setting or the account, then trigger the DAG again.
  A check that could not ask (ERROR) holds its system if it is blocking: check the connection named in the log.
- `preflight.*`: as in the hourly DAG (missing connection, migration).

"""

EVENTS = """### Returns reconciliation — events (webhooks)

Runs whenever the webhook inbox (`raw.webhook_inbox`) has events to process: the receiver stores each verified
Reveni or Cin7 Core event there, and the inbox's watcher (run by the triggerer) signals this DAG within seconds.
It reads again only what the events name (each Reveni return with `GET returns/{id}`, each return-related Cin7 Core
sale and its credit-note list rows), checks, reconciles only the returns concerned (same rules and exception keys
as the hourly run; the exception queue is updated at once, the published tables are left to the hourly run),
posts their corrections under the same safety valves, and marks the events processed. The hourly and daily runs
stay the source of truth: whatever an event missed, they catch.

**Stages** (task groups): `read` (the events' returns and sales) → `check` (Great Expectations) → `reconcile`
(those returns; the events marked processed in the same transaction) → `post` (their corrective postings).

**Failures and what to do**
- `read.read_events`: an API is down or refused the credentials (the log names the connection). The events
  stay pending and the watcher signals again within two minutes; a return or sale the API no longer has (404) is
  logged and skipped.
- `check.data_quality`, `post.post_corrections`: as in the hourly DAG. When the hourly or daily run is posting
  (the postings lock), this run posts nothing and succeeds: the planned postings wait in the outbox for the
  next run.
- `reconcile.reconcile_events`: nothing of the run is kept and its events stay pending (the next run does it
  all again, without duplicates).

To see or replay the inbox, see `docs/operations.md` ("Webhook events"). Only one run at a time
(`max_active_runs=1`); signals that arrive meanwhile fold into the next run. A failed run mails the data team once
(after retries).
"""


def for_merchant(doc: str, merchant) -> str:  # merchant: returns_recon.merchants.Merchant | None
    """A DAG's documentation, headed by its merchant's name, id and connections when it is one merchant's."""
    if merchant is None:
        return doc
    c = merchant.connections
    names = ", ".join(f"{k} `{v}`" for k, v in c.model_dump().items() if v)
    return (
        f"**Merchant: {merchant.name} (`{merchant.id}`)**: its own warehouse, reader role "
        f"`{merchant.reader_role}`, pools and mails; connections: {names}"
        f"{'' if c.sitoo else '; no Sitoo (no stores)'}.\n\n{doc}"
    )
