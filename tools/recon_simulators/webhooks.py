"""Webhooks: subscriptions, and the delivery of every change the simulated world makes, as each vendor sends them.

**Reveni** (``shared/reference/reveni_api.md`` §1 "Webhooks", L120-L128, and the example at L139-L145):
subscriptions ``POST …/stores/{store_id}/webhooks {"event_types", "url"}`` → ``{id, url, event_types}`` and
``DELETE …/webhooks/{id}`` ([R-U] R5, L64-L65); events ``return.created`` / ``return.updated`` (L121) in the
envelope ``{id, event, created (epoch s), data: {amount, status, currency, resource: "return", resource_id,
object}}`` (L122; ``object`` is ``{}`` as in the example, L142: the webhook is thin); POSTed (L128) with
``X-REVENI-SIGNATURE: t=<fractional epoch>,v1=hex(HMAC-SHA256(key=the API key, "{t}.{raw body}"))`` (L124-L126).
Its retry and ordering policy is not public (L128): a setting (``behaviour.WebhookBehaviour``), Cin7 Core's
shape by default.

**Cin7 Core** (``dearinventory.apib`` L27912-L28888): ``GET/POST/PUT/DELETE /webhooks`` with the fields of
L27937-L27949 (at most 5 of one type, L27916); payloads as the examples (``Sale/InvoiceAuthorised`` L28056,
``Sale/CreditNoteAuthorised`` L28094, ``Stock/AvailableStockLevelChanged`` a bare array L28454); sent with the
subscription's ``ExternalAuthorizationType`` (bearer / basic) and ``ExternalHeaders``, no signature; 6 attempts
(1 minute after the event, then +5, +10, +15, +20, +25 minutes), after which the webhook is deactivated
(L27918-L27933). Our own writes fire webhooks too (``cin7_core_api.md`` §4.11).

Deliveries run on a scheduler thread and a small pool of sender threads, so no API answer waits for one. On
request (``/_sim/webhooks/misbehave``) the next deliveries come with a forged, replayed, stale or oversized extra
send; every attempt is logged (``/_sim/webhooks/log``).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import heapq
import hmac
import itertools
import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import requests
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from recon_simulators.http import read_json

if TYPE_CHECKING:
    from recon_simulators.behaviour import WebhookBehaviour
    from recon_simulators.world import World

REVENI_EVENT_TYPES = ("return.created", "return.updated")  # reveni_api.md L121: no other event names are public
SIGNATURE_HEADER = "X-REVENI-SIGNATURE"  # reveni_api.md L124
# dearinventory.apib L27952-L27986: the available webhook types
CIN7_WEBHOOK_TYPES = (
    "Sale/Created",
    "Sale/QuoteAuthorised",
    "Sale/OrderAuthorised",
    "Sale/Voided",
    "Sale/Backordered",
    "Sale/ShipmentAuthorised",
    "Sale/InvoiceAuthorised",
    "Sale/PickAuthorised",
    "Sale/PackAuthorised",
    "Sale/CreditNoteAuthorised",
    "Sale/Undo",
    "Sale/PartialPaymentReceived",
    "Sale/FullPaymentReceived",
    "Sale/AttachmentAdded",
    "Sale/AdditionalAttributesChanged",
    "Sale/ShipmentTrackingNumberChanged",
    "Purchase/OrderAuthorised",
    "Purchase/InvoiceAuthorised",
    "Purchase/StockReceivedAuthorised",
    "Purchase/CreditNoteAuthorised",
    "Purchase/Updated",
    "Customer/Updated",
    "Supplier/Updated",
    "Product/Updated",
    "Stock/AvailableStockLevelChanged",
    "Lead/Updated",
    "Lead/Converted",
    "Opportunity/Authorized",
    "Opportunity/AttachmentAdded",
    "Opportunity/Voided",
    "Opportunity/Converted",
    "Task/Overdue",
)
# the types the simulated world produces (the others can be subscribed to, and are never sent)
CIN7_SENT_TYPES = ("Sale/CreditNoteAuthorised", "Sale/InvoiceAuthorised", "Stock/AvailableStockLevelChanged")
CIN7_AUTH_TYPES = ("noauth", "basicauth", "bearerauth")  # apib L27945
CIN7_MAX_PER_TYPE = 5  # apib L27916
# apib L28721: the one friendly name the blueprint shows; vendor silent on the others (the type is used)
CIN7_NAMES = {"Sale/OrderAuthorised": "Sale order has been authorised"}
MISBEHAVIOURS = ("forged", "stale", "oversized", "replayed")
LOG_LIMIT = 100_000
SENDERS = 4


@dataclass
class Subscription:
    service: str  # "reveni" | "cin7"
    id: str
    url: str
    types: tuple[str, ...]  # Reveni: its event_types; Cin7: its one Type
    is_active: bool = True
    auth_type: str = "noauth"
    username: str | None = None
    password: str | None = None
    bearer_token: str | None = None
    headers: list[dict] = field(default_factory=list)
    failures: int = 0  # deliveries whose every attempt failed

    def reveni_view(self) -> dict:
        """reveni_api.md L64 [R-U]: the answer has ``id``, ``url``, ``event_types``."""
        return {"id": self.id, "url": self.url, "event_types": list(self.types)}

    def cin7_view(self) -> dict:
        """apib L27937-L27949 (and the GET example, L28716-L28740)."""
        return {
            "ID": self.id,
            "Type": self.types[0],
            "Name": CIN7_NAMES.get(self.types[0], self.types[0]),
            "IsActive": self.is_active,
            "ExternalURL": self.url,
            "ExternalAuthorizationType": self.auth_type,
            "ExternalUserName": self.username,
            "ExternalPassword": self.password,
            "ExternalBearerToken": self.bearer_token,
            "ExternalHeaders": [dict(h) for h in self.headers],
        }

    def view(self) -> dict:
        """The control surface's view: the vendor's, with the service, whether it is active (Reveni's API shows
        no such flag) and how many events failed every attempt."""
        vendor = self.reveni_view() if self.service == "reveni" else self.cin7_view()
        return {"service": self.service, **vendor, "active": self.is_active, "failed_events": self.failures}


@dataclass
class Job:
    """One send: a genuine delivery (retried on failure) or an extra misbehaving one (sent once)."""

    epoch: int
    subscription_id: str
    service: str
    event_type: str
    event_id: str
    body: bytes
    kind: str = "delivery"  # delivery | forged | stale | oversized | replayed
    attempt: int = 1
    replay_after: bool = False  # a genuine delivery that is to be sent again, identical, right after
    headers: dict[str, str] | None = None  # fixed headers (a replay sends exactly what was sent)


def cin7_webhook_fields(body: dict, existing: Subscription | None = None) -> dict | str:
    """The validated fields of a Cin7 Core webhook POST/PUT (apib L27937-L27949), or the error message. A PUT
    merges over the existing webhook (vendor silent on omitted fields: they are kept)."""
    current = existing.cin7_view() if existing else {}
    merged = {**current, **{k: v for k, v in body.items() if k != "Name"}}  # Name is read-only (L27942)
    for name in ("Type", "IsActive", "ExternalURL", "ExternalAuthorizationType"):  # required (L27941-L27945)
        if merged.get(name) in (None, ""):
            return f"Missing {name}"
    if merged["Type"] not in CIN7_WEBHOOK_TYPES:
        return f"Webhook Type '{merged['Type']}' is not valid"
    if not isinstance(merged["IsActive"], bool):
        return "IsActive must be true or false"
    if not isinstance(merged["ExternalURL"], str) or not merged["ExternalURL"].startswith(("http://", "https://")):
        return "ExternalURL must be an http(s) URL"
    auth = merged["ExternalAuthorizationType"]
    if auth not in CIN7_AUTH_TYPES:
        return f"ExternalAuthorizationType must be one of {', '.join(CIN7_AUTH_TYPES)}"
    if auth == "basicauth" and not (merged.get("ExternalUserName") and merged.get("ExternalPassword")):
        return "ExternalUserName and ExternalPassword are required for basicauth"  # L27946-L27947
    if auth == "bearerauth" and not merged.get("ExternalBearerToken"):
        return "ExternalBearerToken is required for bearerauth"  # L27948
    headers = merged.get("ExternalHeaders") or []
    if not isinstance(headers, list) or not all(
        isinstance(h, dict) and isinstance(h.get("Key"), str) and h["Key"] for h in headers
    ):
        return "ExternalHeaders must be a list of {Key, Value} objects"  # L27949
    return {
        "url": merged["ExternalURL"],
        "types": (merged["Type"],),
        "is_active": merged["IsActive"],
        "auth_type": auth,
        "username": merged.get("ExternalUserName"),
        "password": merged.get("ExternalPassword"),
        "bearer_token": merged.get("ExternalBearerToken"),
        "headers": [{"Key": h["Key"], "Value": str(h.get("Value") or "")} for h in headers],
    }


def reveni_webhook_fields(body: Any) -> dict | str:
    """reveni_api.md L64 [R-U]: ``{"event_types": [...], "url": ...}``; the validation is vendor silent."""
    if not isinstance(body, dict):
        return "A JSON object is required."
    types, url = body.get("event_types"), body.get("url")
    if not isinstance(types, list) or not types or any(t not in REVENI_EVENT_TYPES for t in types):
        return f"event_types must be a non-empty list of {', '.join(REVENI_EVENT_TYPES)}."
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        return "url must be an http(s) URL."
    return {"url": url, "types": tuple(dict.fromkeys(types))}


def reveni_signature(api_key: str, timestamp: str, body: bytes) -> str:
    """reveni_api.md L125: v1 = HMAC-SHA256(key=API key, message="{t}.{raw body}"), hex."""
    return hmac.new(api_key.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def _dumps(payload: Any, **kwargs: Any) -> bytes:
    # the vendors' own spacing (", " and ": " as in reveni_api.md L140): a receiver must verify the raw bytes
    return json.dumps(payload, **kwargs).encode()


class WebhookHub:
    """The subscriptions of both services, the delivery queue and the log of attempts (one per world)."""

    def __init__(self, world: World) -> None:
        self.world = world
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self.subscriptions: dict[str, Subscription] = {}
        self._heap: list[tuple[float, int, Job]] = []
        self._seq = itertools.count()
        self._epoch = 0
        self._in_flight = 0
        self.misbehave: dict[str, dict[str, int]] = {}  # service ("*" = any) -> kind -> count left
        self.log: deque[dict] = deque(maxlen=LOG_LIMIT)
        self._log_seq = itertools.count(1)
        self._pool: ThreadPoolExecutor | None = None
        self._thread: threading.Thread | None = None
        self._local = threading.local()

    # --- settings --------------------------------------------------------------------------------------
    @property
    def settings(self) -> WebhookBehaviour:
        return self.world.behaviour.webhooks

    def _schedule_of(self, service: str) -> tuple[float, list[float]]:
        s = self.settings
        if service == "cin7":
            return s.cin7_first_delay_seconds, list(s.cin7_retry_delays_seconds)
        return s.reveni_first_delay_seconds, list(s.reveni_retry_delays_seconds)

    # --- subscriptions ---------------------------------------------------------------------------------
    def subscribe(self, service: str, **fields: Any) -> Subscription:
        sub_id = str(uuid.uuid4()) if service == "cin7" else uuid.uuid4().hex  # Reveni ids: 32 hex (L71)
        sub = Subscription(service=service, id=sub_id, **fields)
        with self._lock:
            self.subscriptions[sub.id] = sub
        return sub

    def update(self, sub_id: str, **fields: Any) -> Subscription | None:
        with self._lock:
            sub = self.subscriptions.get(sub_id)
            if sub is None:
                return None
            for name, value in fields.items():
                setattr(sub, name, value)
            if fields.get("is_active"):
                sub.failures = 0
            return sub

    def delete(self, service: str, sub_id: str) -> bool:
        with self._lock:
            sub = self.subscriptions.get(sub_id)
            if sub is None or sub.service != service:
                return False
            del self.subscriptions[sub_id]
            return True

    def listing(self, service: str | None = None) -> list[Subscription]:
        with self._lock:
            return [s for s in self.subscriptions.values() if service is None or s.service == service]

    def count_of_type(self, event_type: str, but: str | None = None) -> int:
        with self._lock:
            return sum(
                1 for s in self.subscriptions.values() if s.service == "cin7" and event_type in s.types and s.id != but
            )

    def clear(self, service: str | None = None) -> int:
        """Delete the subscriptions (of one service) and drop their pending deliveries."""
        with self._lock:
            gone = [k for k, s in self.subscriptions.items() if service is None or s.service == service]
            for key in gone:
                del self.subscriptions[key]
            self._heap = [item for item in self._heap if item[2].subscription_id in self.subscriptions]
            heapq.heapify(self._heap)
            return len(gone)

    def drop_pending(self) -> None:
        """A new world (a scenario load): pending deliveries and retries of the old one are dropped, the
        misbehaviour counters and the log are reset; subscriptions (account settings) stay."""
        with self._lock:
            self._epoch += 1
            self._heap.clear()
            self.misbehave.clear()
            self.log.clear()

    def wants(self, service: str, event_type: str) -> bool:
        """Cheap: does an active subscription take this event (nothing is built otherwise)."""
        subs = self.subscriptions
        return bool(subs) and any(
            s.is_active and s.service == service and event_type in s.types for s in list(subs.values())
        )

    # --- events ----------------------------------------------------------------------------------------
    def reveni_return_changed(self, record: dict, *, created: bool, at: datetime) -> None:
        """A return was created or changed (reveni_api.md L121-L122; example L139-L143)."""
        event_type = "return.created" if created else "return.updated"
        if not self.wants("reveni", event_type):
            return
        event_id = uuid.uuid4().hex
        envelope = {
            "id": event_id,
            "event": event_type,
            "created": int(at.timestamp()),
            "data": {
                "amount": record.get("amount"),
                "status": record.get("status"),
                "currency": record.get("currency"),
                "resource": "return",
                "resource_id": record.get("id"),
                "object": {},
            },
        }
        self._enqueue("reveni", event_type, envelope, event_id)

    def cin7_event(self, event_type: str, build: Callable[[], Any]) -> None:
        """A Cin7 Core event; ``build`` makes its payload only when someone subscribed."""
        if self.wants("cin7", event_type):
            payload = build()
            self._enqueue("cin7", event_type, payload, None)

    def _enqueue(self, service: str, event_type: str, payload: Any, event_id: str | None) -> None:
        body = _dumps(payload)
        first, _ = self._schedule_of(service)
        due = time.monotonic() + first * self.settings.time_scale
        with self._lock:
            subs = [s for s in self.subscriptions.values() if s.service == service and s.is_active]
            for sub in subs:
                if event_type not in sub.types:
                    continue
                genuine = Job(
                    self._epoch,
                    sub.id,
                    service,
                    event_type,
                    event_id or hashlib.sha256(body).hexdigest(),
                    body,
                )
                for kind in MISBEHAVIOURS:
                    if not self._take(service, kind):
                        continue
                    if kind == "replayed":
                        genuine.replay_after = True
                    else:  # sent just before the genuine delivery
                        extra = self._misbehaving(kind, service, event_type, payload, sub)
                        heapq.heappush(self._heap, (due, next(self._seq), extra))
                heapq.heappush(self._heap, (due, next(self._seq), genuine))
            self._ensure_running()
            self._wake.notify()

    def _take(self, service: str, kind: str) -> bool:
        if kind == "stale" and service != "reveni":  # only Reveni signs a time (reveni_api.md L124-L127)
            return False
        for key in (service, "*"):
            left = self.misbehave.get(key, {})
            if left.get(kind, 0) > 0:
                left[kind] -= 1
                return True
        return False

    def _misbehaving(self, kind: str, service: str, event_type: str, payload: Any, sub: Subscription) -> Job:
        """An extra send: forged (Reveni: another key's signature; Cin7 Core: wrong credentials), stale (Reveni:
        ``t`` older than any tolerance, correctly signed), oversized (a body above ``oversized_bytes``, correctly
        signed / authenticated). Reveni's extras are events of their own (a fresh ``id``); a forged Cin7 Core
        body is the same event laid out differently, so its digest (the receiver's event id) differs."""
        payload = copy.deepcopy(payload)
        if service == "reveni":
            payload["id"] = uuid.uuid4().hex
            if kind == "oversized":
                payload["data"]["object"] = {"padding": "x" * self.settings.oversized_bytes}
            body = _dumps(payload)
            return Job(self._epoch, sub.id, service, event_type, payload["id"], body, kind=kind)
        if kind == "oversized":
            if isinstance(payload, list):
                size = max(len(_dumps(payload)), 1)
                payload = payload * (self.settings.oversized_bytes // size + 2)
            else:
                payload["Padding"] = "x" * self.settings.oversized_bytes
            body = _dumps(payload)
        else:  # forged
            body = _dumps(payload, indent=1)
        return Job(self._epoch, sub.id, service, event_type, hashlib.sha256(body).hexdigest(), body, kind=kind)

    def set_misbehaviour(self, counts: dict[str, int], service: str | None = None) -> dict:
        with self._lock:
            left = self.misbehave.setdefault(service or "*", {})
            for kind in MISBEHAVIOURS:
                if kind in counts:
                    left[kind] = max(int(counts[kind]), 0)
            return copy.deepcopy(self.misbehave)

    # --- delivery --------------------------------------------------------------------------------------
    def _ensure_running(self) -> None:
        """Start the scheduler thread and the senders on first use (called with the lock held)."""
        if self._thread is None:
            self._pool = ThreadPoolExecutor(SENDERS, thread_name_prefix="sim-webhook")
            self._thread = threading.Thread(target=self._run, name="sim-webhook-scheduler", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        assert self._pool is not None
        while True:
            with self._lock:
                while not self._heap or self._heap[0][0] > time.monotonic():
                    timeout = None if not self._heap else self._heap[0][0] - time.monotonic()
                    self._wake.wait(timeout)
                _, _, job = heapq.heappop(self._heap)
                if job.epoch != self._epoch:
                    continue
                self._in_flight += 1
            self._pool.submit(self._deliver, job)

    def _headers(self, job: Job, sub: Subscription) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "User-Agent": f"recon-simulator-{job.service}-webhooks"}
        if job.service == "reveni":
            age = self.settings.stale_age_seconds if job.kind == "stale" else 0.0
            stamp = f"{time.time() - age:.6f}"  # fractional, as reveni_api.md L126 shows
            key = self.world.credentials.reveni_api_key
            if job.kind == "forged":
                key = "forged-" + key
            headers[SIGNATURE_HEADER] = f"t={stamp},v1={reveni_signature(key, stamp, job.body)}"
            return headers
        forged = job.kind == "forged"
        for header in sub.headers:  # apib L27949: additional headers
            headers[header["Key"]] = "forged" if forged else header["Value"]
        if sub.auth_type == "bearerauth":
            headers["Authorization"] = f"Bearer {'forged-token' if forged else sub.bearer_token}"
        elif sub.auth_type == "basicauth":
            user, password = ("forged", "forged") if forged else (sub.username or "", sub.password or "")
            headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        return headers

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def _deliver(self, job: Job) -> None:
        try:
            self._send(job)
        finally:
            with self._lock:
                self._in_flight -= 1

    def _send(self, job: Job) -> None:
        with self._lock:
            sub = self.subscriptions.get(job.subscription_id)
            usable = sub is not None and sub.is_active and job.epoch == self._epoch
        if sub is None or not usable:
            return
        headers = job.headers or self._headers(job, sub)
        status, error = None, None
        try:
            answer = self._session().post(
                sub.url, data=job.body, headers=headers, timeout=self.settings.timeout_seconds, allow_redirects=False
            )
            status = answer.status_code
        except requests.RequestException as err:
            error = f"{type(err).__name__}: {err}"[:300]
        ok = status is not None and 200 <= status < 300  # vendor silent: any 2xx is a success
        self._record(job, sub, status, error, ok)
        if job.kind != "delivery":
            return
        if job.replay_after:
            replay = Job(job.epoch, job.subscription_id, job.service, job.event_type, job.event_id, job.body)
            replay.kind, replay.headers = "replayed", headers
            self._send(replay)
        if not ok:
            self._failed(job, sub)

    def _failed(self, job: Job, sub: Subscription) -> None:
        _, retries = self._schedule_of(job.service)
        with self._lock:
            if job.attempt <= len(retries):  # apib L27923-L27931: attempt n+1 comes retries[n-1] after attempt n
                again = Job(job.epoch, job.subscription_id, job.service, job.event_type, job.event_id, job.body)
                again.attempt = job.attempt + 1
                due = time.monotonic() + retries[job.attempt - 1] * self.settings.time_scale
                heapq.heappush(self._heap, (due, next(self._seq), again))
                self._wake.notify()
                return
            sub.failures += 1
            # apib L27933: "if all attempts will be failed, system will deactivate this webhook"
            if job.service == "cin7" or self.settings.reveni_deactivate_after_failures:
                sub.is_active = False

    def _record(self, job: Job, sub: Subscription, status: int | None, error: str | None, ok: bool) -> None:
        entry = {
            "seq": next(self._log_seq),
            "at": datetime.now(UTC).isoformat(),
            "service": job.service,
            "subscription_id": sub.id,
            "url": sub.url,
            "event_type": job.event_type,
            "event_id": job.event_id,
            "body_sha256": hashlib.sha256(job.body).hexdigest(),
            "bytes": len(job.body),
            "kind": job.kind,
            "attempt": job.attempt,
            "status": status,
            "error": error,
            "ok": ok,
        }
        with self._lock:
            self.log.append(entry)

    def state(self) -> dict:
        with self._lock:
            live = [item for item in self._heap if item[2].epoch == self._epoch]
            return {"pending": len(live), "in_flight": self._in_flight}


# --- the control surface -------------------------------------------------------------------------------


def _admin_subscription(body: dict) -> tuple[str, list[dict]] | str:
    """``POST /_sim/webhooks``: a quick way to subscribe (tests, the local stack), the vendor's fields or short
    ones. Reveni: ``{"service": "reveni", "url", "event_types"?}`` (default both). Cin7 Core: ``{"service":
    "cin7", "url", "type" or "types"? (default the three the simulator sends), "bearer_token"? | "username" +
    "password"?, "headers"? {name: value}}``, one webhook per type as Cin7 Core keeps them; no limit of 5."""
    service = body.get("service")
    if service == "reveni":
        fields = reveni_webhook_fields({"event_types": list(REVENI_EVENT_TYPES), **body})
        return fields if isinstance(fields, str) else ("reveni", [fields])
    if service != "cin7":
        return "service must be reveni or cin7"
    types = body.get("types") or ([body["type"]] if body.get("type") else list(CIN7_SENT_TYPES))
    auth = body.get("ExternalAuthorizationType") or (
        "bearerauth" if body.get("bearer_token") else "basicauth" if body.get("username") else "noauth"
    )
    headers = body.get("ExternalHeaders")
    if headers is None and isinstance(body.get("headers"), dict):
        headers = [{"Key": k, "Value": v} for k, v in body["headers"].items()]
    out = []
    for webhook_type in types:
        fields = cin7_webhook_fields(
            {
                "Type": webhook_type,
                "IsActive": body.get("is_active", body.get("IsActive", True)),
                "ExternalURL": body.get("url") or body.get("ExternalURL"),
                "ExternalAuthorizationType": auth,
                "ExternalUserName": body.get("username") or body.get("ExternalUserName"),
                "ExternalPassword": body.get("password") or body.get("ExternalPassword"),
                "ExternalBearerToken": body.get("bearer_token") or body.get("ExternalBearerToken"),
                "ExternalHeaders": headers or [],
            }
        )
        if isinstance(fields, str):
            return fields
        out.append(fields)
    return "cin7", out


def webhook_admin_routes(world: World) -> list[Route]:
    hub = world.webhooks

    async def subscriptions(request: Request) -> JSONResponse:
        service = request.query_params.get("service")
        if request.method == "POST":
            parsed = _admin_subscription(await read_json(request) or {})
            if isinstance(parsed, str):
                return JSONResponse({"error": parsed}, status_code=400)
            name, fields = parsed
            made = [hub.subscribe(name, **f) for f in fields]
            return JSONResponse({"webhooks": [s.view() for s in made]})
        if request.method == "DELETE":
            return JSONResponse({"deleted": hub.clear(service)})
        return JSONResponse({"webhooks": [s.view() for s in hub.listing(service)], **hub.state()})

    async def misbehave(request: Request) -> JSONResponse:
        if request.method == "POST":
            body = await read_json(request) or {}
            try:
                counts = {k: int(body[k]) for k in MISBEHAVIOURS if k in body}
            except (TypeError, ValueError):
                return JSONResponse({"error": "counts must be integers"}, status_code=400)
            if body.get("service") not in (None, "reveni", "cin7"):
                return JSONResponse({"error": "service must be reveni or cin7"}, status_code=400)
            return JSONResponse({"left": hub.set_misbehaviour(counts, body.get("service"))})
        with hub._lock:
            return JSONResponse({"left": copy.deepcopy(hub.misbehave)})

    async def log(request: Request) -> JSONResponse:
        if request.method == "POST":
            body = await read_json(request) or {}
            if body.get("clear"):
                with hub._lock:
                    hub.log.clear()
        params = request.query_params
        with hub._lock:
            rows = [
                r
                for r in hub.log
                if all(str(r.get(k)) == params[k] for k in ("service", "kind", "event_type") if k in params)
            ]
        return JSONResponse({"attempts": rows, **hub.state()})

    return [
        Route("/_sim/webhooks", subscriptions, methods=["GET", "POST", "DELETE"]),
        Route("/_sim/webhooks/misbehave", misbehave, methods=["GET", "POST"]),
        Route("/_sim/webhooks/log", log, methods=["GET", "POST"]),
    ]
