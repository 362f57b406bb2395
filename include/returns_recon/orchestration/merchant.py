"""Which merchant a task runs for. With a merchants file (``RECON_MERCHANTS_PATH``, ``returns_recon.merchants``)
every DAG is one merchant's, named in its id (``returns_recon_<merchant>_<kind>``): its connections, settings
and location map follow from that id at run time (a trigger form cannot change it). Without the file: the one
merchant of the environment, as before (the default connection ids, the ``RECON_`` settings)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from returns_recon.connections import DEFAULT_IDS, ConnectionIds, ConnectionSpec
from returns_recon.errors import NotRetryable

if TYPE_CHECKING:
    from returns_recon.merchants import Merchant
    from returns_recon.settings import ReconSettings


class UnknownMerchant(NotRetryable):
    """A DAG of the merchants' naming whose merchant is no longer in the file."""


def _current_dag_id() -> str | None:
    from airflow.sdk import get_current_context

    try:
        context = get_current_context()
    except RuntimeError:  # not inside a task: the CLI, the webhook receiver, a test
        return None
    dag = context.get("dag")
    return dag.dag_id if dag is not None else None


def merchant_for(dag_id: str | None) -> Merchant | None:
    """The merchant whose DAG this is; None in single-merchant mode (no merchants file) or outside a task."""
    from returns_recon.merchants import load_merchants

    merchants = load_merchants()
    if merchants is None or dag_id is None:
        return None
    for merchant in merchants.merchants:
        if dag_id.startswith(f"returns_recon_{merchant.id}_") and dag_id in merchant.dag_ids():
            return merchant
    raise UnknownMerchant(
        f"DAG {dag_id} belongs to no merchant of the merchants file (RECON_MERCHANTS_PATH): "
        "add the merchant back, or delete the DAG"
    )


def current_merchant() -> Merchant | None:
    return merchant_for(_current_dag_id())


def connection_ids(merchant: Merchant | None) -> ConnectionIds:
    if merchant is None:
        return DEFAULT_IDS
    c = merchant.connections
    return ConnectionIds(
        warehouse=c.warehouse,
        reveni=c.reveni,
        cin7=c.cin7,
        sitoo=c.sitoo,
        smtp=c.smtp,
        cin7_webhook=c.cin7_webhook or DEFAULT_IDS.cin7_webhook,
    )


def current_ids() -> ConnectionIds:
    """The connection ids of the running task's merchant (the defaults outside a task or with one merchant)."""
    return connection_ids(current_merchant())


def reader_role() -> str | None:
    """The running task's merchant's own reader role; None with one merchant (``recon_reader``)."""
    merchant = current_merchant()
    return None if merchant is None else merchant.reader_role


def required_specs() -> tuple[ConnectionSpec, ...]:
    """The connections the running task's merchant's batch runs need (the preflight checks them)."""
    return current_ids().required_specs()


def merchant_settings(base: ReconSettings) -> ReconSettings:
    """The running task's merchant's settings: ``base`` (the ``RECON_`` environment) with its overrides."""
    merchant = current_merchant()
    return base if merchant is None else merchant.settings_for(base)
