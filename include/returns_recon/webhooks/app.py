"""The webhook receiver, a FastAPI app: ``POST /webhooks/reveni`` and ``POST /webhooks/cin7``, mounted at
``/returns-recon`` by the Airflow plugin (``plugins/returns_recon_webhooks.py``) and by the standalone server
(``python -m returns_recon.webhooks``). docs/webhooks.md says what to expose and how to register the URLs.

Per delivery: the body is read as a stream up to ``RECON_WEBHOOK_MAX_BODY_BYTES`` (a larger ``Content-Length`` is
refused before reading; a stream that grows past it is cut off) → the sender is verified (``verify``: Reveni's
HMAC over the raw body, Cin7 Core's bearer or basic credentials, checked before its body is read) → the event is
read and minimised (``inbox``) → one upsert into ``raw.webhook_inbox``. Answers: 200 ``{"accepted": true,
"duplicate": bool}``; 401 unverifiable (counted in ``ops.webhook_rejections``, nothing stored); 413 too large;
400 authentic but unreadable; 503 when the receiver is not configured or the warehouse does not answer (the
sender retries). No answer and no log line carries a secret, a header or a body.

Nothing happens at import or in ``create_app``: the settings, the connections and a small psycopg pool on the
``recon_warehouse`` connection are read or opened at the first request (the pool is closed with the app's
lifespan). Secrets come from Airflow connections, read at each delivery (a rotated key applies at once):
Reveni's key is the password of ``reveni_default`` (the API key, which Reveni signs with), Cin7 Core's
credentials are ``cin7_webhook``. The plugin's routes are not behind Airflow's authentication: the signature or
the token is the authentication, and nothing is accepted in the URL.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from returns_recon.connections import DEFAULT_IDS, ConnectionIds, ConnectionLike
from returns_recon.orchestration.merchant import connection_ids
from returns_recon.warehouse.pool import LazyPool
from returns_recon.webhooks import inbox
from returns_recon.webhooks.verify import SIGNATURE_HEADER, Cin7Credentials, Unverified, verify_cin7, verify_reveni

if TYPE_CHECKING:
    from returns_recon.merchants import Merchant, MerchantsFile
    from returns_recon.settings import ReconSettings

log = logging.getLogger(__name__)

URL_PREFIX = "/returns-recon"
REVENI_PATH = "/webhooks/reveni"
CIN7_PATH = "/webhooks/cin7"
POOL_MAX_SIZE = 4
POOL_WAIT_SECONDS = 10.0  # a delivery waits this long for a warehouse connection, then gets 503 (the sender retries)


class TooLarge(Exception):
    """The body is over the limit."""


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, at most ``limit`` bytes: a larger declared ``Content-Length`` is refused before anything is
    read, and a body that grows past the limit (chunked, or longer than declared) is refused there."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > limit:
        raise TooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _answer(status: int, **body: object) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers={"Cache-Control": "no-store"})


@dataclass(frozen=True)
class Site:
    """One merchant's receiving end: its connections (the keys that verify) and its warehouse's pool."""

    ids: ConnectionIds
    pool: LazyPool


def _warehouse_of(ids: ConnectionIds) -> Callable[[], str]:
    def dsn() -> str:
        from returns_recon.orchestration.connections import warehouse_dsn

        return warehouse_dsn(ids)

    return dsn


class Receiver:
    """The app's state: settings, connection lookups and the warehouse pool, each obtained on first use."""

    def __init__(
        self,
        settings: ReconSettings | None = None,
        lookup: Callable[[str], ConnectionLike | None] | None = None,
        warehouse_dsn: Callable[[], str] | None = None,
        clock: Callable[[], float] = time.time,
        merchants: Callable[[], MerchantsFile | None] | None = None,
        merchant_dsn: Callable[[Merchant], Callable[[], str]] | None = None,
    ) -> None:
        self._settings = settings
        self._lookup = lookup
        self.clock = clock
        self._warehouse_dsn = warehouse_dsn
        self._merchants = merchants
        self._merchant_dsn = merchant_dsn
        self._sites: dict[str, Site] = {}
        self._lock = threading.Lock()
        self.counters: Counter[str] = Counter()

    def site(self, merchant_id: str | None) -> Site | None:
        """Where a delivery goes: the single merchant's (``merchant_id`` None, no merchants file), or the merchant's
        whose events are on (``/webhooks/<merchant>/...``); None when the URL names no such receiver."""
        if self._merchants is None:
            from returns_recon.merchants import load_merchants

            self._merchants = load_merchants
        found = self._merchants()
        if (merchant_id is None) != (found is None):
            return None
        with self._lock:
            key = merchant_id or ""
            if key not in self._sites:
                ids, dsn = DEFAULT_IDS, self._warehouse_dsn
                if found is not None:
                    merchant = next((m for m in found.merchants if m.id == merchant_id and m.events), None)
                    if merchant is None:
                        return None
                    ids = connection_ids(merchant)
                    dsn = self._merchant_dsn(merchant) if self._merchant_dsn else _warehouse_of(ids)
                name = f"returns-recon-webhooks{'-' + key if key else ''}"
                self._sites[key] = Site(ids, LazyPool(name, dsn, POOL_MAX_SIZE, POOL_WAIT_SECONDS))
            return self._sites[key]

    # --- inputs, read when first needed -----------------------------------------------------------------
    @property
    def settings(self) -> ReconSettings:
        if self._settings is None:
            from returns_recon.settings import load_settings

            self._settings = load_settings()
        return self._settings

    def connection(self, conn_id: str) -> ConnectionLike | None:
        lookup = self._lookup
        if lookup is None:
            from returns_recon.orchestration.connections import lookup_connection

            lookup = lookup_connection
        try:
            return lookup(conn_id)
        except Exception as err:  # a malformed value or a broken secrets backend: its text may quote the secret
            log.error("webhook receiver: connection %r cannot be read (%s)", conn_id, type(err).__name__)
            return None

    def reveni_key(self, site: Site) -> str | None:
        conn = self.connection(site.ids.reveni)
        return conn.password if conn is not None and conn.password else None

    def cin7_credentials(self, site: Site) -> Cin7Credentials | None:
        conn = self.connection(site.ids.cin7_webhook)
        if conn is None or not conn.password:
            return None
        return Cin7Credentials(conn.login or "", conn.password)

    def close(self) -> None:
        with self._lock:
            sites, self._sites = list(self._sites.values()), {}
        for site in sites:
            site.pool.close()

    # --- warehouse work (run in a worker thread) ---------------------------------------------------------
    def store(self, site: Site, event: inbox.InboxEvent) -> inbox.Stored:
        with site.pool.connection() as conn:
            return inbox.store(conn, event)

    def count_rejection(self, site: Site, source: str, reason: str) -> None:
        try:
            with site.pool.connection() as conn:
                inbox.count_rejection(conn, source, reason)
        except Exception as err:  # counting must not change the answer
            log.warning("webhook receiver: could not count a %s rejection (%s)", source, _why(err))


def _why(err: BaseException) -> str:
    """What went wrong with the warehouse, in one line; psycopg's messages name the host, never the password."""
    import psycopg

    from returns_recon.errors import NotRetryable

    if isinstance(err, psycopg.Error | NotRetryable):
        lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
        return f"{type(err).__name__}: {' '.join(lines)[:500]}" if lines else type(err).__name__
    return type(err).__name__


def _client(request: Request) -> str:
    return request.client.host if request.client else "?"


def create_app(
    *,
    settings: ReconSettings | None = None,
    lookup: Callable[[str], ConnectionLike | None] | None = None,
    warehouse_dsn: Callable[[], str] | None = None,
    clock: Callable[[], float] = time.time,
    merchants: Callable[[], MerchantsFile | None] | None = None,
    merchant_dsn: Callable[[Merchant], Callable[[], str]] | None = None,
) -> FastAPI:
    """The receiver's app. Without arguments: the ``RECON_`` settings, the Airflow connections and the
    ``recon_warehouse`` warehouse (with a merchants file, ``RECON_MERCHANTS_PATH``: each merchant's, at
    ``/webhooks/<merchant>/reveni`` and ``/webhooks/<merchant>/cin7``), all read at the first request (no I/O
    here)."""
    receiver = Receiver(settings, lookup, warehouse_dsn, clock, merchants, merchant_dsn)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await run_in_threadpool(receiver.close)

    # no OpenAPI page or schema: these routes face the internet
    app = FastAPI(title="returns-recon webhooks", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.receiver = receiver

    async def refuse(site: Site, source: str, request: Request, status: int, reason: str, error: str) -> JSONResponse:
        receiver.counters[f"{source}.refused.{reason}"] += 1
        log.warning("webhook receiver: %s delivery from %s refused (%d %s)", source, _client(request), status, reason)
        await run_in_threadpool(receiver.count_rejection, site, source, reason)
        return _answer(status, accepted=False, error=error)

    async def accept(site: Site, source: str, request: Request, read: Callable[[], inbox.InboxEvent]) -> JSONResponse:
        try:
            event = read()
        except inbox.Unreadable as err:
            log.warning("webhook receiver: %s delivery unreadable: %s", source, err)
            return await refuse(site, source, request, 400, "unreadable", "unreadable body")
        try:
            stored = await run_in_threadpool(receiver.store, site, event)
        except Exception as err:
            receiver.counters[f"{source}.unavailable"] += 1
            log.error("webhook receiver: %s event %s not stored: %s", source, event.event_id, _why(err))
            return _answer(503, accepted=False, error="unavailable, retry later")
        duplicate = not stored.inserted
        receiver.counters[f"{source}.{'duplicate' if duplicate else 'accepted'}"] += 1
        log.info(
            "webhook receiver: %s %s event %s (inbox %d, resources %s)%s",
            source,
            event.event_type,
            event.event_id,
            stored.inbox_id,
            ",".join(event.resource_ids) or "-",
            " again: a replay, only counted" if duplicate else "",
        )
        return _answer(200, accepted=True, duplicate=duplicate)

    def unknown(merchant: str | None) -> JSONResponse:
        where = "/webhooks/<merchant>/..." if merchant is None else "a merchant with events: true"
        return _answer(404, accepted=False, error=f"no receiver here: the URL must name {where}")

    async def reveni(request: Request, merchant: str | None) -> JSONResponse:
        site = await run_in_threadpool(receiver.site, merchant)
        if site is None:
            return unknown(merchant)
        try:
            body = await read_body(request, receiver.settings.webhook_max_body_bytes)
        except TooLarge:
            return await refuse(site, "reveni", request, 413, "too_large", "too large")
        key = await run_in_threadpool(receiver.reveni_key, site)
        if key is None:
            log.error("webhook receiver: %s has no password (the Reveni API key): cannot verify", site.ids.reveni)
            return await refuse(site, "reveni", request, 503, "not_configured", "unavailable, retry later")
        try:
            signature = verify_reveni(
                request.headers.get(SIGNATURE_HEADER),
                body,
                key,
                now=receiver.clock(),
                tolerance=receiver.settings.webhook_tolerance_seconds,
            )
        except Unverified as err:
            return await refuse(site, "reveni", request, 401, err.reason, "unverified")
        return await accept(site, "reveni", request, lambda: inbox.reveni_event(body, signature.signed_at))

    async def cin7(request: Request, merchant: str | None) -> JSONResponse:
        site = await run_in_threadpool(receiver.site, merchant)
        if site is None:
            return unknown(merchant)
        credentials = await run_in_threadpool(receiver.cin7_credentials, site)
        if credentials is None:
            log.error("webhook receiver: %s is not set (or has no password): cannot verify", site.ids.cin7_webhook)
            return await refuse(site, "cin7", request, 503, "not_configured", "unavailable, retry later")
        try:  # before the body is read: an unauthenticated sender gets nothing read
            verify_cin7(request.headers.get("authorization"), credentials)
        except Unverified as err:
            return await refuse(site, "cin7", request, 401, err.reason, "unverified")
        try:
            body = await read_body(request, receiver.settings.webhook_max_body_bytes)
        except TooLarge:
            return await refuse(site, "cin7", request, 413, "too_large", "too large")
        return await accept(site, "cin7", request, lambda: inbox.cin7_event(body))

    @app.post(REVENI_PATH)
    async def reveni_single(request: Request) -> JSONResponse:
        return await reveni(request, None)

    @app.post(CIN7_PATH)
    async def cin7_single(request: Request) -> JSONResponse:
        return await cin7(request, None)

    # with a merchants file: each merchant whose events are on has its own URLs (docs/webhooks.md)
    @app.post("/webhooks/{merchant}/reveni")
    async def reveni_of(request: Request, merchant: str) -> JSONResponse:
        return await reveni(request, merchant)

    @app.post("/webhooks/{merchant}/cin7")
    async def cin7_of(request: Request, merchant: str) -> JSONResponse:
        return await cin7(request, merchant)

    return app
