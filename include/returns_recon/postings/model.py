"""What the planner and the executor pass around, by name: the candidate exception, the planned posting,
the outbox row, a posting's view of its run, and what a read-back or a send found."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import psycopg

from returns_recon.apis.client import encode_json
from returns_recon.extract.run import Clients
from returns_recon.postings.sale_view import SaleView


@dataclass(frozen=True)
class Candidate:
    """An open auto-fixable exception with what its posting is built from (a row of ``plan.CANDIDATES``)."""

    exception_key: str
    exception_type: str
    return_id: str
    item_id: str | None
    sku: str | None
    quantity: int | None
    currency: str | None
    order_external_id: str | None
    return_point_id: str | None
    cin7_holding_location: str | None
    cin7_sellable_location: str | None
    sitoo_warehouse_id: int | None
    validated_at: datetime | None
    refunded: Decimal | None
    sale_id: str | None
    sale_type: str | None
    sale_location: str | None


@dataclass(frozen=True)
class Planned:
    """A posting as the planner writes it to the outbox (``recon.postings``)."""

    posting_key: str
    action: str
    system: str
    exception_key: str
    return_id: str
    item_id: str | None
    reference: str
    payload: dict[str, Any]
    amount: Decimal | None = None


@dataclass(frozen=True)
class Posting:
    """A row of the outbox as the executor reads it (``execute.OUTBOX``, built by column name)."""

    posting_key: str
    action: str
    system: str
    exception_key: str
    return_id: str
    reference: str
    payload: dict[str, Any]
    amount: Decimal | None
    status: str


@dataclass(frozen=True)
class Context:
    """What one posting's attempt may read: the run's connection, clients and ``SaleView`` (the run's cache of
    the target systems), and whether its target must be read live (an earlier attempt may have reached it)."""

    conn: psycopg.Connection
    clients: Clients
    view: SaleView
    live: bool = False


@dataclass(frozen=True)
class ReadBack:
    """What the read-back found: our finished document (adopt it), or ours still open (a DRAFT credit note
    to complete), or nothing."""

    target_ref: str | None = None
    unfinished: dict[str, Any] | None = None


NOT_FOUND = ReadBack()


@dataclass(frozen=True)
class Sent:
    """The document a send created, as its answer names it."""

    target_ref: str | None
    target_number: str | None = None


class Refused(Exception):
    """The target would refuse the posting (or did): it is ``refused``, for finance."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Superseded(Exception):
    """The reason for a posting is gone: a person (or a later run) fixed it another way."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def posting_key(action: str, return_id: str, item_id: str | None, target: str) -> str:
    """Deterministic: from the action, the return, the item and the target; never time or randomness."""
    return hashlib.sha256(f"{action}|{return_id}|{item_id or '-'}|{target}".encode()).hexdigest()[:32]


def stored_json(payload: Any) -> str:
    """The payload as the outbox keeps it: amounts stay JSON numbers, digit for digit, so the body sent
    from the outbox carries numbers where the vendor documents numbers."""
    return encode_json(payload).decode()
