"""Business settings, from environment variables prefixed ``RECON_`` (documented in
the README's Configuration section). Connections and secrets are not here: they are Airflow connections."""

from __future__ import annotations

import os
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, ValidatorFunctionWrapHandler, WrapValidator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from returns_recon.workbench.links import checked_base, redacted

# include/location_map.csv beside the package (a checkout, Astro, MWAA, Composer: include/ on the path);
# an installed wheel has none there: set RECON_LOCATION_MAP_PATH (the load fails naming it otherwise)
DEFAULT_LOCATION_MAP = Path(__file__).resolve().parents[1] / "location_map.csv"
# the longest pause between two attempts of the publish swap (docs/reconciliation.md, "Readers and locks")
PUBLISH_RETRY_MAX_PAUSE_SECONDS = 5.0


def _errors_show_it_redacted(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """An error names the value it refused: a URL refused is shown without its login, password or query."""
    if isinstance(value, str):
        try:
            checked_base(value)
        except ValueError:
            hidden = redacted(value)
            try:
                checked_base(hidden)
            except ValueError:
                return handler(hidden)
    return handler(value)


# an http(s) URL without login, password, query or fragment, trailing slashes stripped; '' = none
WorkbenchUrl = Annotated[str, AfterValidator(checked_base), WrapValidator(_errors_show_it_redacted)]


class ReconSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RECON_", extra="ignore", frozen=True)

    # extraction
    overlap_hours: float = Field(48, ge=0, description="hourly runs re-read this far behind the watermark")
    trailing_days: float = Field(14, ge=0, description="the daily run re-extracts this trailing window")
    detail_workers: int = Field(4, ge=1, le=16, description="parallel Cin7 sale detail requests")
    reveni_reads_by_id_per_run: int = Field(
        1000,
        ge=1,
        description="without a Reveni list endpoint (connection extra list_endpoint=false): at most this many "
        "GET returns/{id} per batch run; the rest are read by the next runs, in turn",
    )
    # matching
    location_map_path: Path = DEFAULT_LOCATION_MAP
    sale_match_field: Literal["CustomerReference", "ExternalID", "OrderNumber"] = "CustomerReference"
    money_tolerance: Decimal = Decimal("0.01")
    release_sla_hours: float = 48
    restock_sla_hours: float = 24
    recon_window_days: int = 90
    currencies: tuple[str, ...] = ("EUR", "GBP", "SEK", "USD", "NOK", "DKK")
    # corrective postings
    postings_dry_run: bool = Field(False, description="plan and log every posting, send none")
    credit_note_approval_threshold: Decimal = Field(Decimal("1000"), description="above it: DRAFT, for approval")
    max_postings_per_run: int = Field(200, ge=0)
    postings_disabled: tuple[str, ...] = Field((), description="kill switch per system: cin7, sitoo")
    # Sitoo documents these ids without their values (order-write.yaml): assumptions, see docs/golive.md
    sitoo_restock_transaction_type: int = Field(10, description="warehouse transaction type of our store restocks")
    sitoo_return_order_type_id: int = Field(10, description="ordertypeid of the return record (10 Order)")
    sitoo_return_order_state_id: int = Field(10, description="orderstateid of the return record (10 Closed)")
    sitoo_return_payment_state_id: int = Field(0, description="paymentstateid of the return record (0 None)")
    golive_override: tuple[str, ...] = Field(
        (),
        description="post to these systems (cin7, sitoo) although their go-live check has not passed (docs/golive.md)",
    )
    # which merchant (a merchants file sets both, returns_recon.merchants; empty: the one merchant of the environment)
    merchant_id: str = Field("", description="the merchant's id in the merchants file; empty with one merchant")
    merchant_name: str = Field("", description="the merchant's name, in its mails' subjects; empty with one merchant")
    # exception emails
    email_recipients: dict[str, list[str]] = Field(default_factory=dict, description="owner -> addresses")
    finance_all_clear_weekday: int | None = Field(0, description="weekday (0 = Monday) of finance's all-clear mail")
    alert_fallback_conn_id: str = Field(
        "",
        description="Airflow connection (http) of the second alert channel, used when SMTP fails; empty = none",
    )
    workbench_url: WorkbenchUrl = Field(
        "",
        description="where the mails' exception lines link to (the workbench as people reach it, http(s), no login "
        "or query); empty = Airflow's [api] base_url + /returns-recon-workbench; neither set = mails without links",
    )
    # data quality
    freshness_hours: float = Field(48, description="newest Reveni update older than this is a warning")
    data_docs_dir: Path = Field(
        default_factory=lambda: Path(os.environ.get("AIRFLOW_HOME") or Path.home() / "airflow") / "data_docs",
        description="where the Data Docs site is written (default $AIRFLOW_HOME/data_docs)",
    )
    # readers and locks (docs/reconciliation.md): an idle reader is cut off before publishing gives up
    reader_idle_timeout_seconds: float = Field(
        300,
        ge=1,
        le=3_600,
        description="recon_reader's idle_in_transaction_session_timeout in this database, applied at migrate time",
    )
    publish_lock_timeout_seconds: float = Field(
        2, ge=0.05, le=60, description="each attempt of the publish swap waits this long for its locks (lock_timeout)"
    )
    publish_lock_wait_seconds: float = Field(
        420, ge=1, le=7_200, description="the publish swap retries this long in all, then fails naming the blockers"
    )
    # webhook receiver (returns_recon.webhooks, docs/webhooks.md)
    webhook_tolerance_seconds: float = Field(
        300,
        gt=0,
        le=86_400,
        description="a Reveni signature whose t= is further than this from now (either way) is refused as stale",
    )
    webhook_max_body_bytes: int = Field(
        1_000_000, ge=1_024, le=100_000_000, description="a webhook body larger than this is refused (413) unread"
    )
    # events DAG (returns_recon.events, docs/architecture.md "Events")
    events_per_run: int = Field(
        500, ge=1, le=10_000, description="inbox rows one events run takes at most; the rest wait for the next run"
    )

    @model_validator(mode="after")
    def _publishing_outlasts_idle_readers(self) -> ReconSettings:
        # an idle reader's timeout starts at the latest when the swap's first attempt does; one more attempt
        # (a pause and a lock timeout) must fit in the window after it
        needed = self.reader_idle_timeout_seconds + PUBLISH_RETRY_MAX_PAUSE_SECONDS + self.publish_lock_timeout_seconds
        if self.publish_lock_wait_seconds < needed:
            raise ValueError(
                f"RECON_PUBLISH_LOCK_WAIT_SECONDS ({self.publish_lock_wait_seconds:g}) must be at least "
                f"RECON_READER_IDLE_TIMEOUT_SECONDS + RECON_PUBLISH_LOCK_TIMEOUT_SECONDS + "
                f"{PUBLISH_RETRY_MAX_PAUSE_SECONDS:g} = {needed:g}, so that a reader idle in a transaction is cut "
                "off before publishing gives up: raise it or lower the reader timeout"
            )
        return self


def load_settings() -> ReconSettings:
    return ReconSettings()


# Run parameters a person may set in the trigger form (Airflow Params); None keeps the deployment's setting.
RUN_PARAM_FIELDS = {"dry_run": "postings_dry_run", "trailing_days": "trailing_days"}


def with_run_params(settings: ReconSettings, params: Mapping[str, Any] | None) -> ReconSettings:
    """``settings`` with the run's Params applied (validated again, so a bad value fails naming the field)."""
    given = params or {}
    overrides = {field: given[name] for name, field in RUN_PARAM_FIELDS.items() if given.get(name) is not None}
    if not overrides:
        return settings
    return ReconSettings.model_validate({**settings.model_dump(), **overrides})
