"""The workbench's FastAPI app, mounted at ``/returns-recon-workbench`` by the Airflow plugin
(``plugins/returns_recon_workbench.py``) and shown in the Airflow UI's navigation as "Returns reconciliation".

Pages: ``GET /`` the queue (filters in the query string), ``GET /exceptions/{key}`` one exception; actions:
``POST /act`` (a form: action, key, csrf_token and the action's fields), answered by a redirect to the exception's
page, or a page saying why the action was refused. Server-rendered HTML, no script: the pages work inside the
Airflow UI's frame and on their own (the exception mails link to them). Nothing happens at import or in
``create_app``; the warehouse pool opens at the first request and closes with the app's lifespan.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from returns_recon.merchants import Merchant, MerchantsFile, load_merchants
from returns_recon.states import OPEN_STATES
from returns_recon.warehouse.pool import LazyPool
from returns_recon.workbench import actions, queries
from returns_recon.workbench.security import (
    CSRF_COOKIE,
    CSRF_FIELD,
    AirflowGatekeeper,
    Forbidden,
    Gatekeeper,
    NotAuthenticated,
    Person,
    csrf_ok,
    csrf_token,
    new_csrf_cookie,
)

log = logging.getLogger(__name__)

URL_PREFIX = "/returns-recon-workbench"
DAG_ID = "returns_recon_hourly"  # whose permissions the workbench follows (security.py); a merchant's: its own
FORM_MAX_BYTES = 16_384
STATIC = {"workbench.css": "text/css", "icon.svg": "image/svg+xml"}  # served without a login (no data)
HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    # no script at all; framed only by the Airflow UI (same origin)
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'self'; base-uri 'none'",
}
DONE = {
    "acknowledge": "Acknowledged.",
    "assign": "Assignment saved.",
    "resolve": "Resolved.",
    "reopen": "Re-opened.",
    "replay": "The posting is planned again: the next run reads the target back and sends it.",
    "approve": "Approved: the next run authorises the credit note in Cin7 Core.",
}
ACTION_LABELS = {
    "acknowledge": "acknowledged",
    "assign": "assigned",
    "resolve": "resolved",
    "reopen": "re-opened",
    "replay": "asked for a replay",
    "approve": "approved the credit note",
}


def _money(value: Any, currency: Any = None) -> str:
    if value is None:
        return ""
    amount = f"{Decimal(value):,.2f}"
    return f"{amount} {currency}" if currency else amount


def _when(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return str(value)


def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["money"] = _money
    env.filters["when"] = _when
    env.filters["path"] = lambda key: quote(str(key), safe="")
    env.globals["action_labels"] = ACTION_LABELS
    env.globals["open_states"] = OPEN_STATES
    return env


def _page(html: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(html, status_code=status, headers=HEADERS)


@dataclass(frozen=True)
class Shop:
    """Whose queue a request is about: the single merchant (``id`` empty), or one of a merchants file's."""

    id: str
    name: str
    dag_id: str  # whose permissions apply

    @property
    def query(self) -> str:
        """What every link and form of its pages carries."""
        return f"?{urlencode({'merchant': self.id})}" if self.id else ""


class Shops:
    """The merchants the workbench serves, each with its warehouse pool (opened at its first request)."""

    def __init__(
        self,
        warehouse_dsn: Callable[[], str] | None,
        merchants: Callable[[], MerchantsFile | None],
        dsn_of: Callable[[Merchant], Callable[[], str]] | None,
    ) -> None:
        self._warehouse_dsn, self._merchants, self._dsn_of = warehouse_dsn, merchants, dsn_of
        self._pools: dict[str, LazyPool] = {}
        self._lock = threading.Lock()

    def all(self) -> list[Shop]:
        found = self._merchants()
        if found is None:
            return [Shop("", "", DAG_ID)]
        return [Shop(m.id, m.name, m.dag_id("hourly")) for m in found.merchants]

    def get(self, merchant_id: str) -> Shop | None:
        return next((s for s in self.all() if s.id == merchant_id), None)

    def pool(self, shop: Shop) -> LazyPool:
        with self._lock:
            if shop.id not in self._pools:
                dsn_of = self._warehouse_dsn
                found = self._merchants()
                if shop.id and found is not None:
                    merchant = next(m for m in found.merchants if m.id == shop.id)
                    dsn_of = (self._dsn_of or _merchant_dsn)(merchant)
                self._pools[shop.id] = LazyPool(f"returns-recon-workbench-{shop.id or 'default'}", dsn_of)
            return self._pools[shop.id]

    def close(self) -> None:
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.close()


def _merchant_dsn(merchant: Merchant) -> Callable[[], str]:
    def dsn() -> str:
        from returns_recon.orchestration.connections import warehouse_dsn
        from returns_recon.orchestration.merchant import connection_ids

        return warehouse_dsn(connection_ids(merchant))

    return dsn


def create_app(
    *,
    gatekeeper: Gatekeeper | None = None,
    warehouse_dsn: Callable[[], str] | None = None,
    merchants: Callable[[], MerchantsFile | None] = load_merchants,
    merchant_dsn: Callable[[Merchant], Callable[[], str]] | None = None,
) -> FastAPI:
    """The workbench. Without arguments: Airflow's auth manager and the ``recon_warehouse`` connection (with a
    merchants file, ``RECON_MERCHANTS_PATH``: each merchant's warehouse connection), reached at the first request."""
    gate: Gatekeeper = gatekeeper or AirflowGatekeeper()
    shops = Shops(warehouse_dsn, merchants, merchant_dsn)
    templates = environment()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await run_in_threadpool(shops.close)

    app = FastAPI(title="returns-recon workbench", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)

    def base(request: Request) -> str:
        return str(request.scope.get("root_path", "")).rstrip("/")

    def shop_of(request: Request, merchant_id: str | None) -> Shop | Response:
        """The merchant the request names (``merchant`` in the query or the form); none named: the only one."""
        listed = shops.all()
        if not merchant_id:
            if len(listed) == 1:
                return listed[0]
            return RedirectResponse(
                f"{base(request)}/merchants", status_code=303, headers={"Cache-Control": "no-store"}
            )
        shop = shops.get(merchant_id)
        if shop is None:
            return PlainTextResponse(f"no merchant {merchant_id!r} here", status_code=404, headers=HEADERS)
        return shop

    async def who(request: Request, shop: Shop) -> Person | Response:
        try:
            return await gate.person(request, shop.dag_id)
        except NotAuthenticated:
            if request.method == "GET":
                here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(gate.login_url(here), status_code=303, headers={"Cache-Control": "no-store"})
            return PlainTextResponse("not authenticated: log in to Airflow", status_code=401, headers=HEADERS)
        except Forbidden:
            return PlainTextResponse(
                "forbidden: your Airflow role cannot read the returns reconciliation", status_code=403, headers=HEADERS
            )

    def render(
        request: Request, person: Person, template: str, status: int = 200, shop: Shop | None = None, **context: Any
    ) -> Response:
        known = request.cookies.get(CSRF_COOKIE)
        cookie = known or new_csrf_cookie()
        fresh = known is None
        html = templates.get_template(template).render(
            base=base(request),
            person=person,
            shop=shop,
            mq=shop.query if shop else "",
            csrf_field=CSRF_FIELD,
            csrf=csrf_token(gate.csrf_key(), cookie, person) if person.may_act else "",
            **context,
        )
        response = _page(html, status)
        if fresh:
            response.set_cookie(
                CSRF_COOKIE,
                cookie,
                httponly=True,
                samesite="strict",
                secure=request.url.scheme == "https",
                path=base(request) or "/",
            )
        return response

    @app.get("/static/{name}")
    async def static(name: str) -> Response:
        if name not in STATIC:
            return PlainTextResponse("not found", status_code=404)
        content = (Path(__file__).parent / "templates" / name).read_text()
        return Response(content, media_type=STATIC[name], headers={"Cache-Control": "max-age=3600"})

    @app.get("/merchants")
    async def merchants_page(request: Request) -> Response:
        """With a merchants file: the merchants whose queue this user may read."""
        readable: list[tuple[Shop, Person]] = []
        login: Response | None = None
        for shop in shops.all():
            person = await who(request, shop)
            if isinstance(person, Person):
                readable.append((shop, person))
            elif person.status_code in (303, 401):
                login = person
        if not readable:
            return login or PlainTextResponse(
                "forbidden: your Airflow role cannot read any merchant's returns reconciliation",
                status_code=403,
                headers=HEADERS,
            )
        return render(request, readable[0][1], "merchants.html.j2", readable=readable)

    @app.get("/")
    async def queue_page(request: Request) -> Response:
        shop = shop_of(request, request.query_params.get("merchant"))
        if isinstance(shop, Response):
            return shop
        person = await who(request, shop)
        if isinstance(person, Response):
            return person
        try:
            filters = queries.QueueFilter.model_validate(dict(request.query_params))
        except ValidationError as err:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
            return render(request, person, "error.html.j2", 400, shop, title="Filters not understood", message=problems)

        def read() -> queries.Queue:
            with shops.pool(shop).connection() as conn:
                return queries.queue(conn, filters)

        data = await run_in_threadpool(read)
        query = {k: v for k, v in request.query_params.items() if v and k != "page"}
        return render(
            request,
            person,
            "queue.html.j2",
            200,
            shop,
            filters=filters,
            queue=data,
            page_size=queries.PAGE_SIZE,
            state_choices=queries.STATE_CHOICES,
            query=query,
            urlencode=urlencode,
        )

    @app.get("/exceptions/{key:path}")
    async def exception_view(request: Request, key: str) -> Response:
        shop = shop_of(request, request.query_params.get("merchant"))
        if isinstance(shop, Response):
            return shop
        person = await who(request, shop)
        if isinstance(person, Response):
            return person

        def read() -> queries.ExceptionPage | None:
            with shops.pool(shop).connection() as conn:
                return queries.exception_page(conn, key)

        page = await run_in_threadpool(read)
        if page is None:
            return render(request, person, "error.html.j2", 404, shop, title="No such exception", message=key)
        done = DONE.get(request.query_params.get("done", ""))
        return render(request, person, "exception.html.j2", 200, shop, page=page, key=key, done=done)

    @app.post("/act")
    async def act(request: Request) -> Response:
        body = await request.body()
        if len(body) > FORM_MAX_BYTES:
            return PlainTextResponse("form too large", status_code=413, headers=HEADERS)
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        shop = shop_of(request, form.get("merchant"))
        if isinstance(shop, Response):
            return shop if shop.status_code != 303 else PlainTextResponse("name the merchant", 400, headers=HEADERS)
        person = await who(request, shop)
        if isinstance(person, Response):
            return person
        if not csrf_ok(request, gate.csrf_key(), person, form.get(CSRF_FIELD)):
            return PlainTextResponse(
                "refused: the form's CSRF token is missing or wrong; reload the page and try again",
                status_code=403,
                headers=HEADERS,
            )
        if not person.may_act:
            return PlainTextResponse(
                "forbidden: your Airflow role can read the returns reconciliation but not act on it",
                status_code=403,
                headers=HEADERS,
            )
        action, key = form.get("action", ""), form.get("key", "")
        if action not in actions.ACTIONS or not key:
            return PlainTextResponse("give an action and an exception key", status_code=400, headers=HEADERS)

        def run() -> str:
            with shops.pool(shop).connection() as conn:
                if action == "acknowledge":
                    return actions.acknowledge(conn, key, person.name, form.get("note"))
                if action == "resolve":
                    return actions.resolve(conn, key, person.name, form.get("reason"))
                if action == "reopen":
                    return actions.reopen(conn, key, person.name, form.get("note"))
                if action == "assign":
                    return actions.assign(conn, key, person.name, form.get("assignee"), form.get("note"))
                if action == "replay":
                    return actions.replay(conn, key, form.get("posting_key", ""), person.name, form.get("note"))
                return actions.approve(conn, key, person.name, form.get("note"))

        try:
            message = await run_in_threadpool(run)
        except actions.ActionRefused as err:
            return render(request, person, "error.html.j2", 409, shop, title="Not done", message=str(err), key=key)
        log.info("workbench: %s by %s (%s): %s", action, person.name, shop.id or "the merchant", message)
        query = urlencode({**({"merchant": shop.id} if shop.id else {}), "done": action})
        where = f"{base(request)}/exceptions/{quote(key, safe='')}?{query}"
        return RedirectResponse(where, status_code=303, headers={"Cache-Control": "no-store"})

    return app
