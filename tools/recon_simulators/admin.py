"""The control surface, mounted under ``/_sim`` on each simulator (all share one world):
load a scenario, read/set/advance the clock, switch faults per service, read call counters,
and change the world as the merchant would (``upsert``); webhooks (``/_sim/webhooks…``, ``webhooks.py``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from recon_simulators.behaviour import Behaviour
from recon_simulators.faults import FaultConfig, FaultState
from recon_simulators.http import read_json
from recon_simulators.journal import JOURNAL
from recon_simulators.timefmt import parse_ts, require_ts
from recon_simulators.webhooks import webhook_admin_routes
from recon_simulators.world import World


def admin_routes(world: World, faults: dict[str, FaultState]) -> list[Route]:
    async def health(_: Request) -> JSONResponse:
        return JSONResponse({"ok": True, "clock": world.clock.now().isoformat(), "scenario": world.header})

    async def load(request: Request) -> JSONResponse:
        body = await read_json(request) or {}
        path = Path(body.get("path", ""))
        if not path.is_file():
            return JSONResponse({"error": f"no scenario file at {path}"}, status_code=400)
        counts = world.load(path, frozen_clock=bool(body.get("frozen", False)))
        for state in faults.values():
            state.reset_counters()
        return JSONResponse({"loaded": str(path), "counts": counts, "clock": world.clock.now().isoformat()})

    async def clock(request: Request) -> JSONResponse:
        if request.method == "POST":
            body = await read_json(request) or {}
            when = require_ts(body["set"]) if body.get("set") else world.clock.now()
            world.clock.set(when, frozen=body.get("frozen"), speed=body.get("speed"))
        clock = world.clock
        return JSONResponse({"clock": clock.now().isoformat(), "frozen": clock.frozen, "speed": clock.speed})

    async def advance(request: Request) -> JSONResponse:
        body = await read_json(request) or {}
        seconds = float(body.get("seconds", 0)) + 3600 * float(body.get("hours", 0))
        if seconds <= 0:
            return JSONResponse({"error": "give seconds or hours > 0"}, status_code=400)
        return JSONResponse(world.advance(seconds))

    async def fault_config(request: Request) -> JSONResponse:
        service = request.path_params["service"]
        if service not in faults:
            return JSONResponse({"error": f"unknown service {service}"}, status_code=404)
        if request.method == "POST":
            try:
                faults[service].configure(FaultConfig.model_validate(await read_json(request) or {}))
            except ValidationError as err:
                return JSONResponse({"error": err.errors(include_url=False)}, status_code=400)
        return JSONResponse(faults[service].config.model_dump())

    async def counters(request: Request) -> JSONResponse:
        if request.method == "POST":
            for state in faults.values():
                state.reset_counters()
        return JSONResponse({name: state.snapshot() for name, state in faults.items()})

    async def behaviour(request: Request) -> JSONResponse:
        service = request.path_params["service"]
        if service not in Behaviour.MODELS:
            return JSONResponse({"error": f"unknown service {service}"}, status_code=404)
        if request.method == "POST":
            try:
                world.behaviour.set(service, await read_json(request) or {})
            except ValidationError as err:
                return JSONResponse({"error": err.errors(include_url=False)}, status_code=400)
        return JSONResponse(world.behaviour.get(service).model_dump())

    async def journal(request: Request) -> JSONResponse:
        if request.method == "POST":
            body = await read_json(request) or {}
            status = JOURNAL.configure(body.get("enabled"), bool(body.get("clear")), body.get("max_records"))
            return JSONResponse(status)
        return JSONResponse({**JOURNAL.status(), "records": JOURNAL.records()})

    async def upsert(request: Request) -> JSONResponse:
        body = await read_json(request) or {}
        try:
            world.apply(body["kind"], body["record"], at=parse_ts(body.get("at")))
        except (KeyError, ValueError, TypeError) as err:
            return JSONResponse({"error": repr(err)}, status_code=400)
        return JSONResponse({"ok": True})

    return [
        Route("/_sim/health", health, methods=["GET"]),
        Route("/_sim/load", load, methods=["POST"]),
        Route("/_sim/clock", clock, methods=["GET", "POST"]),
        Route("/_sim/advance", advance, methods=["POST"]),
        Route("/_sim/faults/{service}", fault_config, methods=["GET", "POST"]),
        Route("/_sim/counters", counters, methods=["GET", "POST"]),
        Route("/_sim/upsert", upsert, methods=["POST"]),
        Route("/_sim/behaviour/{service}", behaviour, methods=["GET", "POST"]),
        Route("/_sim/journal", journal, methods=["GET", "POST"]),
        *webhook_admin_routes(world),
    ]
