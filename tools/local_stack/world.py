"""Which world `make up` starts from, so the warehouse and the simulators always hold the same one.

`make demo` (and `make up`) record the scenario the warehouse was loaded from. `make up` continues that
world when the simulators still serve it (e.g. after `make demo`: the runs you look at in Airflow, the
warehouse and the simulators, with the documents the pipeline posted to them, all agree). Otherwise it
starts a new world: the scenario named by SCENARIO, or a freshly generated demo scenario, loaded into
restarted simulators and an emptied embedded warehouse. Reloading an old scenario file would not do:
the simulators would lose what the pipeline posted to them while the warehouse remembers it."""

from __future__ import annotations

import hashlib
import json
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from local_stack.settings import embedded_enabled, local_dir, warehouse_conn


@dataclass(frozen=True)
class World:
    scenario: Path
    new: bool  # True: restart the simulators on the scenario and start the warehouse empty

    def describe(self, env: dict[str, str]) -> str:
        if not self.new:
            return f"continuing the world of {self.scenario}: the warehouse and the running simulators are kept"
        warehouse = (
            "the embedded warehouse starts empty"
            if embedded_enabled(env)
            else "the external warehouse keeps its data (empty it yourself to match)"
        )
        return f"new world from {self.scenario}: the simulators load it, {warehouse}"


def _marker(env: dict[str, str]) -> Path:
    return local_dir(env) / "world.json"


def _warehouse_id(env: dict[str, str]) -> str:
    conn = warehouse_conn(env)
    return f"{conn.host}:{conn.port}/{conn.schema}"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def record(env: dict[str, str], scenario: Path) -> None:
    """Remember that the warehouse was loaded from ``scenario`` (called once the simulators serve it)."""
    scenario = scenario.resolve()
    marker = {"warehouse": _warehouse_id(env), "scenario": str(scenario), "sha256": _digest(scenario)}
    _marker(env).parent.mkdir(parents=True, exist_ok=True)
    _marker(env).write_text(json.dumps(marker, indent=1) + "\n")


def record_merchants(env: dict[str, str], merchants: list[dict]) -> None:
    """Remember a world of several merchants (`make demo MERCHANTS=N`, local_stack/merchants_demo.py): each one's
    scenario (``scenario``, with its digest added) and simulator ports. It names no scenario of the single
    merchant's warehouse: `make up` continues it while the merchants' simulators serve it, else starts a new world."""
    entries = [{**entry, "sha256": _digest(Path(entry["scenario"]))} for entry in merchants]
    marker = {"warehouse": _warehouse_id(env), "merchants": entries}
    _marker(env).parent.mkdir(parents=True, exist_ok=True)
    _marker(env).write_text(json.dumps(marker, indent=1) + "\n")


def recorded_merchants(env: dict[str, str]) -> list[dict] | None:
    """The recorded merchants world (as given to ``record_merchants``), if every scenario file is still there
    unchanged."""
    try:
        marker = json.loads(_marker(env).read_text())
        merchants = marker["merchants"]
        if marker["warehouse"] == _warehouse_id(env) and all(
            _digest(Path(entry["scenario"])) == entry["sha256"] for entry in merchants
        ):
            return merchants
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def recorded_scenario(env: dict[str, str]) -> Path | None:
    """The scenario file the warehouse was loaded from, if it is still there unchanged."""
    try:
        marker = json.loads(_marker(env).read_text())
        scenario = Path(marker["scenario"])
        if marker["warehouse"] == _warehouse_id(env) and _digest(scenario) == marker["sha256"]:
            return scenario
    except (OSError, ValueError, KeyError):
        pass
    return None


def simulators_serve(env: dict[str, str], scenario: Path) -> bool:
    """Do the simulators on SIM_REVENI_PORT run on ``scenario`` (same header: seed, clock, sizes)?"""
    from recon_simulators.scenario import read_header_and_records

    health = f"http://127.0.0.1:{env.get('SIM_REVENI_PORT', '18081')}/_sim/health"
    try:
        with urllib.request.urlopen(health, timeout=3) as response:
            served = json.load(response).get("scenario")
        header, _ = read_header_and_records(scenario)
    except (OSError, ValueError):
        return False
    return json.loads(json.dumps(header, default=str)) == served


def choose(env: dict[str, str], requested: str) -> World:
    """The world for `make up`: continue the recorded one when the simulators still serve it (and
    SCENARIO, if given, names it), else a new one."""
    recorded = recorded_scenario(env)
    if recorded and (not requested or Path(requested).resolve() == recorded) and simulators_serve(env, recorded):
        return World(recorded, new=False)
    if requested:
        return World(Path(requested), new=True)
    from local_stack.stack import default_scenario

    return World(default_scenario(env), new=True)
