"""Verified webhook events into ``raw.webhook_inbox`` (migration 0021), once per event; refused deliveries counted
in ``ops.webhook_rejections``, never stored.

An event is identified per source: Reveni's envelope ``id``; Cin7 Core sends no id, so the SHA-256 of the raw body
(its retries of one delivery resend the same body: one event). A delivery of an event already stored only counts
(``deliveries``, ``last_delivered_at``): its row, and whether the events DAG processed it, are unchanged, so a
replay is never processed twice. The payload is stored minimised to ``privacy.WEBHOOK_ALLOWED`` (no customer
names, e-mail addresses or addresses), with the same JSON rules as polled records.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg

from returns_recon import privacy
from returns_recon.warehouse.loader import canonical_json

SOURCES = ("reveni", "cin7")
MAX_ID_LENGTH = 200  # an event or resource id longer than this is not one (and must fit the unique index)
MAX_TYPE_LENGTH = 100
MAX_RESOURCE_IDS = 100
# Cin7 Core's stock event is a bare JSON array: it names no EventType (apib L28455)
CIN7_STOCK_EVENT = "Stock/AvailableStockLevelChanged"
UNKNOWN_EVENT = "unknown"

# Why a delivery was refused (ops.webhook_rejections.reason), as docs/webhooks.md lists them
REASONS = (
    "missing_signature",
    "malformed_signature",
    "bad_signature",
    "stale",
    "missing_auth",
    "bad_auth",
    "too_large",
    "unreadable",
    "not_configured",
)

INSERT_EVENT = """
INSERT INTO raw.webhook_inbox AS i (source, event_id, event_type, resource_ids, signed_at, payload)
VALUES (%(source)s, %(event_id)s, %(event_type)s, %(resource_ids)s, %(signed_at)s, %(payload)s::jsonb)
ON CONFLICT (source, event_id) DO UPDATE
    SET deliveries = i.deliveries + 1, last_delivered_at = now()
RETURNING i.inbox_id, (i.xmax = 0) AS inserted
"""

COUNT_REJECTION = """
INSERT INTO ops.webhook_rejections AS r (day, source, reason, rejected)
VALUES ((now() AT TIME ZONE 'UTC')::date, %(source)s, %(reason)s, 1)
ON CONFLICT (day, source, reason) DO UPDATE
    SET rejected = r.rejected + 1, last_at = now()
"""


class Unreadable(ValueError):
    """An authentic delivery whose body is not an event we can store (not JSON, no id): answered 400."""


@dataclass(frozen=True)
class InboxEvent:
    source: str
    event_id: str
    event_type: str
    resource_ids: tuple[str, ...]
    signed_at: datetime | None
    payload: str  # JSON, minimised

    def params(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "resource_ids": list(self.resource_ids),
            "signed_at": self.signed_at,
            "payload": self.payload,
        }


@dataclass(frozen=True)
class Stored:
    inbox_id: int
    inserted: bool  # False: a replay of an event already in the inbox


def _visible_nul(value: Any) -> Any:
    """NUL characters (which jsonb refuses) kept visible as the text ``\\u0000``, in keys and strings."""
    if isinstance(value, str):
        return value.replace("\x00", "\\u0000")
    if isinstance(value, dict):
        return {_visible_nul(k): _visible_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_visible_nul(v) for v in value]
    return value


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise Unreadable("the body is not JSON") from None


def _identifier(value: Any) -> str | None:
    """A string or whole-number id as text; anything else (an object, a boolean, a float) is none."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value).strip()
    return text if 0 < len(text) <= MAX_ID_LENGTH and "\x00" not in text else None


def _event_type(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        return UNKNOWN_EVENT
    return value.strip().replace("\x00", "")[:MAX_TYPE_LENGTH] or UNKNOWN_EVENT


def _minimised(payload: Any, source: str) -> str:
    """The payload as stored: only the allowed fields (``privacy.WEBHOOK_ALLOWED``), as canonical JSON."""
    try:
        return canonical_json(_visible_nul(privacy.minimise(payload, privacy.WEBHOOK_ALLOWED[source])))
    except RecursionError:
        raise Unreadable("the body is nested too deeply") from None


def reveni_event(body: bytes, signed_at: float) -> InboxEvent:
    """Reveni's envelope ``{"id", "event", "created", "data": {"resource", "resource_id", ...}}``
    (reference/reveni_api.md §1): the event is ``id``, the return ``data.resource_id``."""
    envelope = _json(body)
    if not isinstance(envelope, dict):
        raise Unreadable("the body is not a JSON object")
    event_id = _identifier(envelope.get("id"))
    if event_id is None:
        raise Unreadable("the event has no usable id")
    data = envelope.get("data")
    resource = _identifier(data.get("resource_id")) if isinstance(data, dict) else None
    return InboxEvent(
        source="reveni",
        event_id=event_id,
        event_type=_event_type(envelope.get("event")),
        resource_ids=(resource,) if resource else (),
        signed_at=datetime.fromtimestamp(signed_at, UTC),
        payload=_minimised(envelope, "reveni"),
    )


def cin7_event(body: bytes) -> InboxEvent:
    """A Cin7 Core webhook (apib L28000-L28520): an object with ``EventType`` and, for sale events, ``SaleID``
    (``SaleTaskID`` in Sale/InvoiceAuthorised and Sale/ShipmentAuthorised), or the stock event's bare array."""
    payload = _json(body)
    if isinstance(payload, dict):
        event_type = _event_type(payload.get("EventType"))
        sale = _identifier(payload.get("SaleID")) or _identifier(payload.get("SaleTaskID"))
        resource_ids: tuple[str, ...] = (sale,) if sale else ()
    elif isinstance(payload, list):
        event_type, resource_ids = CIN7_STOCK_EVENT, ()  # the next batch run reads stock
    else:
        raise Unreadable("the body is neither a JSON object nor an array")
    return InboxEvent(
        source="cin7",
        event_id=hashlib.sha256(body).hexdigest(),
        event_type=event_type,
        resource_ids=resource_ids[:MAX_RESOURCE_IDS],
        signed_at=None,
        payload=_minimised(payload, "cin7"),
    )


def store(conn: psycopg.Connection, event: InboxEvent) -> Stored:
    """Insert the event, or count one more delivery of it; one statement, so concurrent deliveries of one event
    make one row."""
    with conn.cursor() as cur:
        cur.execute(INSERT_EVENT, event.params())
        row = cur.fetchone()
    assert row is not None  # INSERT ... ON CONFLICT DO UPDATE ... RETURNING always returns the row
    return Stored(int(row[0]), bool(row[1]))


def count_rejection(conn: psycopg.Connection, source: str, reason: str) -> None:
    with conn.cursor() as cur:
        cur.execute(COUNT_REJECTION, {"source": source, "reason": reason})
