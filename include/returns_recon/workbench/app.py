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
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
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
DAG_ID = "returns_recon_hourly"  # whose permissions the workbench follows (security.py)
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


def create_app(
    *,
    gatekeeper: Gatekeeper | None = None,
    warehouse_dsn: Callable[[], str] | None = None,
) -> FastAPI:
    """The workbench. Without arguments: Airflow's auth manager and the ``recon_warehouse`` connection, both
    reached at the first request."""
    gate: Gatekeeper = gatekeeper or AirflowGatekeeper(DAG_ID)
    pool = LazyPool("returns-recon-workbench", warehouse_dsn)
    templates = environment()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await run_in_threadpool(pool.close)

    app = FastAPI(title="returns-recon workbench", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)

    def base(request: Request) -> str:
        return str(request.scope.get("root_path", "")).rstrip("/")

    async def who(request: Request) -> Person | Response:
        try:
            return await gate.person(request)
        except NotAuthenticated:
            if request.method == "GET":
                here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(gate.login_url(here), status_code=303, headers={"Cache-Control": "no-store"})
            return PlainTextResponse("not authenticated: log in to Airflow", status_code=401, headers=HEADERS)
        except Forbidden:
            return PlainTextResponse(
                "forbidden: your Airflow role cannot read the returns reconciliation", status_code=403, headers=HEADERS
            )

    def render(request: Request, person: Person, template: str, status: int = 200, **context: Any) -> Response:
        known = request.cookies.get(CSRF_COOKIE)
        cookie = known or new_csrf_cookie()
        fresh = known is None
        html = templates.get_template(template).render(
            base=base(request),
            person=person,
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

    @app.get("/")
    async def queue_page(request: Request) -> Response:
        person = await who(request)
        if isinstance(person, Response):
            return person
        try:
            filters = queries.QueueFilter.model_validate(dict(request.query_params))
        except ValidationError as err:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
            return render(request, person, "error.html.j2", 400, title="Filters not understood", message=problems)

        def read() -> queries.Queue:
            with pool.connection() as conn:
                return queries.queue(conn, filters)

        data = await run_in_threadpool(read)
        query = {k: v for k, v in request.query_params.items() if v and k != "page"}
        return render(
            request,
            person,
            "queue.html.j2",
            filters=filters,
            queue=data,
            page_size=queries.PAGE_SIZE,
            state_choices=queries.STATE_CHOICES,
            query=query,
            urlencode=urlencode,
        )

    @app.get("/exceptions/{key:path}")
    async def exception_view(request: Request, key: str) -> Response:
        person = await who(request)
        if isinstance(person, Response):
            return person

        def read() -> queries.ExceptionPage | None:
            with pool.connection() as conn:
                return queries.exception_page(conn, key)

        page = await run_in_threadpool(read)
        if page is None:
            return render(request, person, "error.html.j2", 404, title="No such exception", message=key)
        done = DONE.get(request.query_params.get("done", ""))
        return render(request, person, "exception.html.j2", page=page, key=key, done=done)

    @app.post("/act")
    async def act(request: Request) -> Response:
        person = await who(request)
        if isinstance(person, Response):
            return person
        body = await request.body()
        if len(body) > FORM_MAX_BYTES:
            return PlainTextResponse("form too large", status_code=413, headers=HEADERS)
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
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
            with pool.connection() as conn:
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
            return render(request, person, "error.html.j2", 409, title="Not done", message=str(err), key=key)
        log.info("workbench: %s by %s: %s", action, person.name, message)
        where = f"{base(request)}/exceptions/{quote(key, safe='')}?done={action}"
        return RedirectResponse(where, status_code=303, headers={"Cache-Control": "no-store"})

    return app
