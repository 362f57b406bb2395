"""Reveni return objects (the recommended model in reveni_api.md; assumptions flagged there).

Read leniently (operating-model.md §2, last paragraph): Reveni's public sources show the webhook envelope with
a return's ``id``, ``status``, ``amount`` and ``currency`` (reveni_api.md R2, R3, [R-C]) and, in one unofficial
client, ``order.external_id`` and the items' ``item_id``, ``sku`` and ``quantity`` ([R-U] R5); the rest of
``GET returns/{id}`` is inferred ([R-I], [PEER]). So a return is quarantined only when what identifies it
(``id``), its money (``amount`` and ``currency``; each refund's ``amount``, ``currency`` and ``status``) or what
it is matched by (``order.external_id``) is unusable, or when an item lacks what identifies it and the stock it
moves (``item_id``, ``sku``, ``quantity``). Every other field may be missing (NULL in staging). ``status`` and an
item's ``validation_status`` are any string: a value outside the documented sets below is kept and raised as a
data-quality warning (quality/sql/reveni_unknown_statuses.sql), never a reason to quarantine.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from returns_recon.models.types import Currency, Money, OptionalUtcTime

# operating-model.md §2 (reveni_api.md "Status lifecycle": the dashboard's states [R-C], their API spellings [R-I])
STATUSES = (
    "incomplete",
    "in_progress",
    "shipped",
    "received",
    "for_review",
    "accepted",
    "partly_accepted",
    "rejected",
    "cancelled",
)
VALIDATION_STATUSES = ("pending", "accepted", "rejected")  # operating-model.md §2 (items)


class _Tolerant(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Order(_Tolerant):
    id: str | None = None
    external_id: str = Field(min_length=1)  # what the return is matched to its Cin7 Core sale by


class ReturnPoint(_Tolerant):
    id: str | None = None
    type: str | None = None
    name: str | None = None


class Exchange(_Tolerant):
    sku: str | None = None


class ReturnItem(_Tolerant):
    item_id: str = Field(min_length=1)
    sku: str = Field(min_length=1)
    name: str | None = None
    quantity: int = Field(gt=0)
    price: Money | None = None
    return_reason: str | None = None
    exchange: Exchange | None = None
    validation_status: str | None = None  # not public: any value is kept (unknown ones raised)
    restock: bool | None = None
    validated_at: OptionalUtcTime = None


class Refund(_Tolerant):
    id: str | None = None  # not public: a refund without one is keyed by the return and its place
    amount: Money
    currency: Currency
    status: str = Field(min_length=1)  # whether the money moved ("paid"): unusable without it
    method: str | None = None
    refunded_at: OptionalUtcTime = None


class ReveniReturn(_Tolerant):
    id: str = Field(min_length=1)
    order: Order
    type: str | None = None
    instant: bool | None = None
    status: str | None = None  # any value is kept; one outside STATUSES (or none) is raised
    amount: Money
    currency: Currency
    refund_method: str | None = None
    return_point: ReturnPoint | None = None  # none: an unmapped_location case (no mapping can match it)
    return_items: list[ReturnItem] = Field(default_factory=list)
    refunds: list[Refund] = Field(default_factory=list)
    received_at: OptionalUtcTime = None
    created_at: OptionalUtcTime = None
    updated_at: OptionalUtcTime = None

    @property
    def natural_key(self) -> str:
        return self.id

    def staging_rows(self, run_id: str) -> dict[str, list[tuple]]:
        point = self.return_point
        return {
            "stg_reveni__returns": [
                (
                    self.id,
                    self.order.id,
                    self.order.external_id,
                    self.type,
                    self.instant,
                    self.status,
                    self.amount,
                    self.currency,
                    self.refund_method,
                    (point.id or None) if point else None,
                    point.type if point else None,
                    point.name if point else None,
                    self.received_at,
                    self.created_at,
                    self.updated_at,
                    run_id,
                )
            ],
            "stg_reveni__return_items": [
                (
                    i.item_id,
                    self.id,
                    n,
                    i.sku,
                    i.name,
                    i.quantity,
                    i.price,
                    i.return_reason,
                    i.exchange.sku if i.exchange else None,
                    i.validation_status,
                    i.restock,
                    i.validated_at,
                )
                for n, i in enumerate(self.return_items, 1)
            ],
            "stg_reveni__refunds": [
                (r.id or f"{self.id}#refund-{n}", self.id, r.amount, r.currency, r.status, r.method, r.refunded_at)
                for n, r in enumerate(self.refunds, 1)
            ],
        }
