"""Behaviour the vendors do not document, as settings (one model per service).

Every default below is either the vendor's documented behaviour (cited) or, where the vendor is
silent, our best guess, marked ``vendor silent``. A test, or the go-live check's own tests, can
switch a simulator to the other answer through ``POST /_sim/behaviour/{service}``; the go-live
check (``python -m returns_recon.cli golive-check``) asks a real account the same questions.
"""

from __future__ import annotations

import threading
from typing import ClassVar, Literal

from pydantic import BaseModel, Field

# dearinventory.apib L26293-L26300: "Search ... contained in one of these fields: FromLocation,
# ToLocation, Status, CustomerReference, Number" (stock transfers have no CustomerReference field)
DOCUMENTED_TRANSFER_SEARCH = ("FromLocation", "ToLocation", "Status", "CustomerReference", "Number")


class ReveniBehaviour(BaseModel):
    # the setting item 3 of issue 20 calls ``reveni_list_endpoint``: off, ``GET returns`` answers 404 as an account
    # without it would, while ``GET returns/{id}`` works (command line: --reveni-list-endpoint off)
    list_endpoint: bool = Field(
        True, description="vendor silent: GET returns (paged list) exists; Reveni documents only returns/{id}"
    )


class Cin7Behaviour(BaseModel):
    transfer_search_fields: tuple[str, ...] = Field(
        DOCUMENTED_TRANSFER_SEARCH, description="dearinventory.apib L26299: the fields stockTransferList Search reads"
    )
    credit_note_list_restock_status: bool = Field(
        True, description="dearinventory.apib L20649/L20683: saleCreditNoteList rows carry RestockStatus (example only)"
    )
    restock_authorised_with_note: bool = Field(
        True,
        description="vendor silent: restock lines POSTed with an AUTHORISED credit note are authorised with it",
    )
    require_restock_location: bool = Field(
        False, description="dearinventory.apib: Restock[] RestockLocation is optional (stock lands at Location)"
    )


class SitooBehaviour(BaseModel):
    undeclared_query_parameters: Literal["ignore", "reject"] = Field(
        "ignore", description="vendor silent: what a query parameter the OpenAPI does not declare gets"
    )


# dearinventory.apib L27918-L27931: "System will try to send webhook 6 times: first time - in 1 minute after
# event", then 5, 10, 15, 20 and 25 minutes after the attempt before
CIN7_FIRST_DELAY_SECONDS = 60.0
CIN7_RETRY_DELAYS_SECONDS = (300.0, 600.0, 900.0, 1200.0, 1500.0)


class WebhookBehaviour(BaseModel):
    """Webhook delivery (recon_simulators/webhooks.py). Every delay is real (wall-clock) seconds multiplied by
    ``time_scale``, so a test can see a retry schedule of 75 minutes in a fraction of a second."""

    time_scale: float = Field(1.0, ge=0, description="a test setting: every delay below is multiplied by it")
    cin7_first_delay_seconds: float = Field(
        CIN7_FIRST_DELAY_SECONDS, ge=0, description="dearinventory.apib L27919: first attempt 1 minute after the event"
    )
    cin7_retry_delays_seconds: list[float] = Field(
        list(CIN7_RETRY_DELAYS_SECONDS),
        description="dearinventory.apib L27923-L27931: attempts 2-6, 5, 10, 15, 20, 25 minutes after the one before",
    )
    reveni_first_delay_seconds: float = Field(
        CIN7_FIRST_DELAY_SECONDS,
        ge=0,
        description="vendor silent (reveni_api.md L128: retry policy not public): Cin7 Core's shape assumed",
    )
    reveni_retry_delays_seconds: list[float] = Field(
        list(CIN7_RETRY_DELAYS_SECONDS),
        description="vendor silent (reveni_api.md L128: retry policy not public): Cin7 Core's shape assumed",
    )
    reveni_deactivate_after_failures: bool = Field(
        True, description="vendor silent: like Cin7 Core (apib L27933), a webhook whose every attempt failed stops"
    )
    timeout_seconds: float = Field(5.0, gt=0, description="vendor silent: how long a delivery waits for the answer")
    stale_age_seconds: float = Field(3600.0, gt=0, description="a test setting: how old a 'stale' delivery's t is")
    oversized_bytes: int = Field(1_100_000, gt=0, description="a test setting: the least size of an 'oversized' body")


class Behaviour:
    """The three services' settings, shared by the apps and the control surface. ``set_defaults`` (the command
    line) says what every scenario load resets them to."""

    MODELS: ClassVar[dict[str, type[BaseModel]]] = {
        "reveni": ReveniBehaviour,
        "cin7": Cin7Behaviour,
        "sitoo": SitooBehaviour,
        "webhooks": WebhookBehaviour,
    }

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._defaults: dict[str, dict] = {}
        self.reset()

    def set_defaults(self, defaults: dict[str, dict]) -> None:
        """What a load resets each service to (validated now); applied at once."""
        for service, values in defaults.items():
            if service not in self.MODELS:
                raise ValueError(f"unknown service {service!r}")
            self.MODELS[service].model_validate(values)
        self._defaults = {service: dict(values) for service, values in defaults.items()}
        self.reset()

    def reset(self) -> None:
        with self._lock:
            defaults = self._defaults
            self.reveni = ReveniBehaviour.model_validate(defaults.get("reveni", {}))
            self.cin7 = Cin7Behaviour.model_validate(defaults.get("cin7", {}))
            self.sitoo = SitooBehaviour.model_validate(defaults.get("sitoo", {}))
            self.webhooks = WebhookBehaviour.model_validate(defaults.get("webhooks", {}))

    def get(self, service: str) -> BaseModel:
        return getattr(self, service)

    def set(self, service: str, values: dict) -> BaseModel:
        model = self.MODELS[service].model_validate({**self.get(service).model_dump(), **values})
        with self._lock:
            setattr(self, service, model)
        return model
