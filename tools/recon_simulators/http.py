"""What the three simulated services share: routing with call counting, auth, throttling and
fault injection around every endpoint, and the admin control surface."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Awaitable, Callable
from email.utils import formatdate
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from recon_simulators.faults import ANSWER_FAULTS, Decision, FaultState
from recon_simulators.journal import JOURNAL

Handler = Callable[[Request], Awaitable[Response] | Response]

HTML_PAGE = "<!DOCTYPE html><html><head><title>Page not found</title></head><body>Not found</body></html>"


class AbortedResponse(Response):
    """Announces a long body, sends a little of it, then drops the connection (a reset)."""

    def __init__(self) -> None:
        super().__init__(b"", status_code=200, media_type="application/json")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"100000")],
            }
        )
        await send({"type": "http.response.body", "body": b'{"partial":', "more_body": True})
        raise ConnectionResetError("simulated connection reset")


class TruncatedResponse(Response):
    """The answer of an applied write cut short: its status and headers, a ``Content-Length`` announcing the
    whole body, less than half of the body, then the connection dropped (as a proxy or a lost link does)."""

    def __init__(self, answer: Response) -> None:
        super().__init__(b"", status_code=answer.status_code)
        self.answer = answer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = bytes(self.answer.body)
        headers = [(k, v) for k, v in self.answer.raw_headers if k.lower() != b"content-length"]
        await send(
            {
                "type": "http.response.start",
                "status": self.answer.status_code,
                "headers": [*headers, (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})
        raise ConnectionResetError("simulated truncated body")


class ServiceApp:
    """Base for one simulated API. Subclasses define auth, error bodies and routes."""

    name = "service"

    def __init__(self, world, faults: FaultState) -> None:
        self.world = world
        self.faults = faults
        self.routes: list[Route] = []
        self.register()

    # --- to override ---------------------------------------------------------------------
    def register(self) -> None:
        raise NotImplementedError

    def authenticate(self, request: Request) -> Response | None:
        """None when the credentials are accepted, else the refusal response."""
        raise NotImplementedError

    def budget_key(self, request: Request) -> str:
        return "default"

    def error(self, status: int, message: str) -> Response:
        return JSONResponse({"error": message}, status_code=status)

    def throttled(self) -> Response:
        return self.error(429, "Too Many Requests")

    def refused_credentials(self, status: int) -> Response:
        """What the service answers a key that is no longer valid (its own error body)."""
        return self.error(status, "Unauthorized" if status == 401 else "Method authentication failed")  # apib L120

    # --- shared ----------------------------------------------------------------------------
    def route(self, path: str, endpoint: str, handler: Handler, methods: list[str]) -> None:
        async def wrapped(request: Request) -> Response:
            return await self._serve(request, endpoint, handler)

        self.routes.append(Route(path, wrapped, methods=methods, name=f"{self.name}:{endpoint}:{path}"))

    async def _serve(self, request: Request, endpoint: str, handler: Handler) -> Response:
        response = await self._respond(request, endpoint, handler)
        if JOURNAL.enabled:  # the request/response journal (contract tests); off by default
            await JOURNAL.record(self.name, endpoint, request, response)
        return response

    async def _respond(self, request: Request, endpoint: str, handler: Handler) -> Response:
        is_write = request.method in {"POST", "PUT", "DELETE"}
        refusal = self.authenticate(request)
        if refusal is not None:
            self.faults.decide(endpoint, "unauthenticated", self.world.clock.now(), eligible=False, write=is_write)
            return refusal
        decision = self.faults.decide(endpoint, self.budget_key(request), self.world.clock.now(), write=is_write)
        if decision.auth_refused:  # the key was rotated (auth_refuse_writes_after): refused before anything
            request.state.sim_fault = "auth"
            return self.refused_credentials(self.faults.config.auth_refuse_status)
        if decision.throttled:
            request.state.sim_fault = "throttled"
            return self._retry_after(self.throttled())
        request.state.sim_fault = decision.fault
        if decision.latency_s:
            await asyncio.sleep(decision.latency_s)
        answers = decision.fault in ANSWER_FAULTS
        if decision.fault and not answers and not (is_write and self.faults.config.write_fault_after_apply):
            return await self._fault(decision)
        result = handler(request)
        response = result if isinstance(result, Response) else await result
        if answers:
            return self._answer_fault(decision, response)
        if decision.fault:
            return await self._fault(decision)
        return response

    def _retry_after(self, response: Response) -> Response:
        """The throttle's ``Retry-After`` in the configured form (RFC 9110 §10.2.3: delay-seconds or an
        HTTP-date). A date is absolute, read against the client's own clock: it is taken from real time
        (not the simulator clock), rounded up to the next whole second, so the delay is at least as asked."""
        cfg = self.faults.config
        if cfg.retry_after_form == "default":
            return response
        if "retry-after" in response.headers:
            del response.headers["retry-after"]
        if cfg.retry_after_form == "seconds":
            response.headers["Retry-After"] = str(cfg.retry_after_seconds)
        elif cfg.retry_after_form == "date":
            response.headers["Retry-After"] = formatdate(math.ceil(time.time()) + cfg.retry_after_seconds, usegmt=True)
        return response

    def _answer_fault(self, decision: Decision, response: Response) -> Response:
        """An applied write answered with an empty or a truncated body; a write refused (not applied) is
        answered as it is."""
        if response.status_code >= 300 or not hasattr(response, "body"):
            return response
        self.faults.count(decision.fault or "")
        if decision.fault == "empty":
            return Response(b"", status_code=response.status_code, media_type="application/json")
        return TruncatedResponse(response)

    async def _fault(self, decision: Decision) -> Response:
        if decision.fault == "5xx":
            return self.error(503 if self.faults.pick(2) else 500, "simulated server error")
        if decision.fault == "timeout":
            await asyncio.sleep(self.faults.config.timeout_seconds)
            return self.error(504, "simulated gateway timeout")
        if decision.fault == "html":
            return HTMLResponse(HTML_PAGE, status_code=200)
        return AbortedResponse()

    def starlette(self, admin_routes: list[Route]) -> Starlette:
        return Starlette(routes=[*admin_routes, *self.routes])

    def app(self, admin_routes: list[Route]) -> ASGIApp:
        """The ASGI app served: the Starlette app, which a simulator may wrap."""
        return self.starlette(admin_routes)


async def read_json(request: Request) -> Any:
    body = await request.body()
    try:
        return json.loads(body or b"null")
    except json.JSONDecodeError:
        return None
