"""What the three simulated services share: routing with call counting, auth, throttling and
fault injection around every endpoint, and the admin control surface."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from recon_simulators.faults import Decision, FaultState
from recon_simulators.journal import JOURNAL

Handler = Callable[[Request], Awaitable[Response] | Response]

HTML_PAGE = "<!DOCTYPE html><html><head><title>Page not found</title></head><body>Not found</body></html>"


class AbortedResponse(Response):
    """Announces a long body, sends a little of it, then drops the connection (a reset)."""

    def __init__(self) -> None:
        super().__init__(b"", status_code=200, media_type="application/json")

    async def __call__(self, scope, receive, send) -> None:  # type: ignore[override]
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"100000")],
            }
        )
        await send({"type": "http.response.body", "body": b'{"partial":', "more_body": True})
        raise ConnectionResetError("simulated connection reset")


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
        refusal = self.authenticate(request)
        if refusal is not None:
            self.faults.decide(endpoint, "unauthenticated", self.world.clock.now(), eligible=False)
            return refusal
        decision = self.faults.decide(endpoint, self.budget_key(request), self.world.clock.now())
        if decision.throttled:
            request.state.sim_fault = "throttled"
            return self.throttled()
        request.state.sim_fault = decision.fault
        if decision.latency_s:
            await asyncio.sleep(decision.latency_s)
        is_write = request.method in {"POST", "PUT", "DELETE"}
        if decision.fault and not (is_write and self.faults.config.write_fault_after_apply):
            return await self._fault(decision)
        result = handler(request)
        response = await result if asyncio.iscoroutine(result) else result
        if decision.fault:
            return await self._fault(decision)
        return response

    async def _fault(self, decision: Decision) -> Response:
        if decision.fault == "5xx":
            return self.error(503 if self.faults.pick(2) else 500, "simulated server error")
        if decision.fault == "timeout":
            await asyncio.sleep(self.faults.config.timeout_seconds)
            return self.error(504, "simulated gateway timeout")
        if decision.fault == "html":
            return HTMLResponse(HTML_PAGE, status_code=200)
        return AbortedResponse()

    def app(self, admin_routes: list[Route]) -> Starlette:
        return Starlette(routes=[*admin_routes, *self.routes])


async def read_json(request: Request) -> Any:
    body = await request.body()
    try:
        return json.loads(body or b"null")
    except json.JSONDecodeError:
        return None
