"""Build the three apps over one world and serve them with uvicorn in one event loop."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from recon_simulators.admin import admin_routes
from recon_simulators.cin7 import Cin7App
from recon_simulators.faults import FaultConfig, FaultState
from recon_simulators.reveni import ReveniApp
from recon_simulators.sitoo import SitooApp
from recon_simulators.world import World


class _QuietSimulatedResets(logging.Filter):
    """Deliberate resets are not server errors: keep them out of the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not (isinstance(error, ConnectionResetError) and "simulated" in str(error))


@dataclass(frozen=True)
class Ports:
    reveni: int = 18081
    cin7: int = 18082
    sitoo: int = 18083


def build(world: World, cin7_rate_limit: int | None = 60) -> tuple[dict, dict[str, FaultState]]:
    creds = world.credentials
    faults = {
        "reveni": FaultState("reveni"),
        "cin7": FaultState("cin7", FaultConfig(rate_limit_per_minute=cin7_rate_limit)),
        "sitoo": FaultState("sitoo"),
    }
    admin = admin_routes(world, faults)
    apps = {
        "reveni": ReveniApp(world, faults["reveni"], creds.reveni_api_key).app(admin),
        "cin7": Cin7App(world, faults["cin7"], creds.cin7_account_id, creds.cin7_application_key).app(admin),
        "sitoo": SitooApp(world, faults["sitoo"], creds.sitoo_api_id, creds.sitoo_password).app(admin),
    }
    return apps, faults


async def serve(
    scenario: Path | None,
    host: str = "127.0.0.1",
    ports: Ports = Ports(),
    cin7_rate_limit: int | None = 60,
    behaviour: dict[str, dict] | None = None,
) -> None:
    world = World()
    if behaviour:  # what every load resets the settings to (the command line)
        world.behaviour.set_defaults(behaviour)
    if scenario:
        world.load(scenario)
    apps, _ = build(world, cin7_rate_limit)
    logging.getLogger("uvicorn.error").addFilter(_QuietSimulatedResets())
    servers = [
        uvicorn.Server(uvicorn.Config(apps[name], host=host, port=getattr(ports, name), log_level="warning"))
        for name in ("reveni", "cin7", "sitoo")
    ]
    await asyncio.gather(*(server.serve() for server in servers))
