"""Reveni return objects (the recommended model in reveni_api.md; assumptions flagged there)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from returns_recon.models.types import Currency, Money, OptionalUtcTime, UtcTime

Status = Literal[
    "incomplete",
    "in_progress",
    "shipped",
    "received",
    "for_review",
    "accepted",
    "partly_accepted",
    "rejected",
    "cancelled",
]


class _Tolerant(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Order(_Tolerant):
    id: str | None = None
    external_id: str = Field(min_length=1)


class ReturnPoint(_Tolerant):
    id: str = Field(min_length=1)
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
    validation_status: Literal["pending", "accepted", "rejected"]
    restock: bool | None = None
    validated_at: OptionalUtcTime = None


class Refund(_Tolerant):
    id: str = Field(min_length=1)
    amount: Money
    currency: Currency
    status: str
    method: str | None = None
    refunded_at: OptionalUtcTime = None


class ReveniReturn(_Tolerant):
    id: str = Field(min_length=1)
    order: Order
    type: str
    instant: bool
    status: Status
    amount: Money
    currency: Currency
    refund_method: str | None = None
    return_point: ReturnPoint
    return_items: list[ReturnItem] = Field(min_length=1)
    refunds: list[Refund] = Field(default_factory=list)
    received_at: OptionalUtcTime = None
    created_at: UtcTime
    updated_at: UtcTime

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
                    point.id,
                    point.type,
                    point.name,
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
                (r.id, self.id, r.amount, r.currency, r.status, r.method, r.refunded_at) for r in self.refunds
            ],
        }
