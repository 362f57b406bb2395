"""The task-group structure both batch DAGs share, and the events DAG's (the DAG files declare schedule and docs)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.sdk import task, task_group
from airflow.sdk.exceptions import AirflowFailException

from returns_recon.orchestration.assets import merchant_assets
from returns_recon.orchestration.defaults import SINGLE_MERCHANT_POOLS, System
from returns_recon.orchestration.tasks import (
    check_connections,
    data_quality,
    extract_cin7,
    extract_reveni,
    extract_sitoo,
    load_location_map,
    migrate_warehouse,
    post_corrections,
    post_event_corrections,
    probe_apis,
    read_events,
    reconcile_and_publish,
    reconcile_events,
    send_exception_emails,
)

if TYPE_CHECKING:  # not imported at DAG-parse time
    from returns_recon.extract.entities import Mode
    from returns_recon.merchants import Merchant


def pools(merchant: Merchant | None) -> dict[System, str]:
    """system -> the pool of its API account: the single merchant's, or the merchant's (per connection, so two
    merchants on one Cin7 Core account share its pool: the limit is the account's)."""
    if merchant is None:
        return dict(SINGLE_MERCHANT_POOLS)
    return {system: merchant.pool(system) for system in SINGLE_MERCHANT_POOLS if getattr(merchant.connections, system)}


def build(mode: Mode, merchant: Merchant | None = None) -> None:
    """The batch DAG's tasks; ``merchant``: one merchant's of a merchants file (its pools and Assets; its
    connections and settings follow from the DAG id at run time, ``orchestration.merchant``)."""
    pool, asset = pools(merchant), merchant_assets(merchant.id if merchant else None)
    has_sitoo = merchant is None or merchant.connections.sitoo is not None

    @task_group
    def preflight() -> None:
        """Connections well formed, warehouse schema current, APIs reachable, location map loaded."""
        migrated = check_connections() >> migrate_warehouse()
        migrated >> [probe_apis(), load_location_map.override(outlets=[asset.location_map])()]

    @task_group
    def extract() -> None:
        """Reveni, then Cin7 Core (which sale details to fetch depends on the returns); Sitoo alongside."""

        @task_group
        def reveni() -> None:
            extract_reveni.override(task_id="returns", pool=pool["reveni"], outlets=asset.reveni_staging)(mode)

        @task_group
        def cin7() -> None:
            outlets = [*asset.cin7_staging, *asset.cin7_reference]
            extract_cin7.override(task_id="sales_transfers_reference", pool=pool["cin7"], outlets=outlets)(mode)

        @task_group
        def sitoo() -> None:
            outlets = [*asset.sitoo_staging, *asset.sitoo_reference]
            extract_sitoo.override(task_id="orders_transactions_reference", pool=pool["sitoo"], outlets=outlets)(mode)

        reveni() >> cin7()
        if has_sitoo:  # a merchant without stores has no Sitoo to read
            sitoo()

    @task_group
    def check() -> None:
        """Data quality (Great Expectations): SKU and location mismatches, structure, freshness."""
        data_quality()

    @task_group
    def reconcile() -> None:
        """Every return item's legs against what Reveni says; exception queue; published finance tables."""
        reconcile_and_publish.override(task_id="reconcile_and_publish", outlets=asset.recon_published)(mode)

    @task_group
    def post() -> None:
        """Corrective postings to Cin7 Core and Sitoo, only after this run's data-quality checks passed."""
        post_corrections.override(pool=pool["cin7"])()

    stages = preflight() >> extract() >> check() >> reconcile() >> post()
    if mode == "daily":

        @task_group
        def notify() -> None:
            """The daily exception email per owner (finance, operations, customer service, data). Sent even
            when the postings failed (refused credentials, a locked run): the queue is what people act on."""
            send_exception_emails.override(trigger_rule="all_done")()

        mails = notify()
        stages >> mails
        # the mail runs whatever happened upstream, so it must not decide the run's state: a failure upstream
        # fails the run (and its one alert) through this last task
        [stages, mails] >> run_failed_if_any_task_failed()


def build_events(merchant: Merchant | None = None) -> None:
    """The events DAG: the stages of the batch runs, over what the pending webhook events name."""
    pool, asset = pools(merchant), merchant_assets(merchant.id if merchant else None)

    @task_group
    def read():
        """The Reveni returns and the Cin7 Core sales the pending events name, read again and loaded."""
        return read_events.override(pool=pool["reveni"], outlets=[*asset.reveni_staging, *asset.cin7_staging])()

    @task_group
    def check() -> None:
        """Data quality (Great Expectations), as in the batch runs: nothing posts unless it passed."""
        data_quality()

    @task_group
    def reconcile(events):
        """Only the returns the events concern: the exception queue at once; the events marked processed."""
        return reconcile_events.override(outlets=[asset.exceptions])(events)

    @task_group
    def post(reconciled) -> None:
        """Their corrective postings, under the same safety valves; another run posting leaves them to the next."""
        post_event_corrections.override(task_id="post_corrections", pool=pool["cin7"])(reconciled)

    events = read()
    checked = check()
    reconciled = reconcile(events)
    events >> checked >> reconciled
    post(reconciled)


WATCHER = "run_failed_if_any_task_failed"


@task(task_id=WATCHER, trigger_rule="one_failed")
def run_failed_if_any_task_failed() -> None:
    """Runs only when a task upstream failed: fails, so the DAG run is failed although the mail went out."""
    from airflow.sdk import get_current_context

    from returns_recon.orchestration.alerts import dag_failure_alert, failed_tasks

    context = dict(get_current_context())
    failed = failed_tasks(context.get("ti"))
    # the run's one alert, sent from here, where the task states can be asked (the DAG callback then stays quiet)
    dag_failure_alert({**context, "alert_from_watcher": True})
    raise AirflowFailException(f"failed in this run: {', '.join(failed) or 'see the Airflow UI'}; the mail was sent")
