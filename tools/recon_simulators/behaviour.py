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


class Behaviour:
    """The three services' settings, shared by the apps and the control surface."""

    MODELS: ClassVar[dict[str, type[BaseModel]]] = {
        "reveni": ReveniBehaviour,
        "cin7": Cin7Behaviour,
        "sitoo": SitooBehaviour,
    }

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.reveni = ReveniBehaviour()
            self.cin7 = Cin7Behaviour()
            self.sitoo = SitooBehaviour()

    def get(self, service: str) -> BaseModel:
        return getattr(self, service)

    def set(self, service: str, values: dict) -> BaseModel:
        model = self.MODELS[service].model_validate({**self.get(service).model_dump(), **values})
        with self._lock:
            setattr(self, service, model)
        return model
