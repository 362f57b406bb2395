"""``python -m recon_simulators``: serve the three simulators (foreground) on one scenario."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from pathlib import Path

from recon_simulators.server import Ports, serve


def main() -> None:
    env = os.environ.get
    parser = argparse.ArgumentParser(prog="python -m recon_simulators", description=__doc__)
    parser.add_argument("--scenario", type=Path, default=None, help="scenario file to load (.json, .jsonl[.gz])")
    parser.add_argument("--bind", default=env("SIM_BIND", "127.0.0.1"), help="address to listen on")
    parser.add_argument("--reveni-port", type=int, default=int(env("SIM_REVENI_PORT", "18081")))
    parser.add_argument("--cin7-port", type=int, default=int(env("SIM_CIN7_PORT", "18082")))
    parser.add_argument("--sitoo-port", type=int, default=int(env("SIM_SITOO_PORT", "18083")))
    parser.add_argument(
        "--cin7-rate-limit",
        type=int,
        default=int(env("SIM_CIN7_RATE_LIMIT", "60")),
        help="Cin7 Core calls per minute per application key (0 = unlimited)",
    )
    parser.add_argument(
        "--behaviour",
        default=env("SIM_BEHAVIOUR", ""),
        help='settings every scenario load resets to, JSON {"reveni": {...}, "webhooks": {...}} (behaviour.py)',
    )
    parser.add_argument(
        "--reveni-list-endpoint",
        choices=("on", "off"),
        default=env("SIM_REVENI_LIST_ENDPOINT", "on"),
        help="off: GET returns (the paged list) answers 404, as an account without it would",
    )
    parser.add_argument(
        "--webhook-time-scale",
        type=float,
        default=float(env("SIM_WEBHOOK_TIME_SCALE", "1")),
        help="multiplies every webhook delivery delay (first attempt and retries)",
    )
    parser.add_argument(
        "--webhook-first-delay",
        type=float,
        default=float(first_delay) if (first_delay := env("SIM_WEBHOOK_FIRST_DELAY")) else None,
        help="seconds from a change to its first webhook delivery, both services (default: Cin7 Core's 60)",
    )
    args = parser.parse_args()
    behaviour = behaviour_defaults(args)
    ports = Ports(args.reveni_port, args.cin7_port, args.sitoo_port)
    print(
        f"simulators on {args.bind}: Reveni :{ports.reveni}, Cin7 Core :{ports.cin7}, Sitoo :{ports.sitoo}"
        f" (scenario: {args.scenario or 'empty'})",
        flush=True,
    )
    asyncio.run(serve(args.scenario, args.bind, ports, args.cin7_rate_limit or None, behaviour))


def behaviour_defaults(args: argparse.Namespace) -> dict[str, dict]:
    """The ``--behaviour`` JSON, then the specific flags over it."""
    behaviour: dict[str, dict] = json.loads(args.behaviour) if args.behaviour else {}
    if args.reveni_list_endpoint == "off":
        behaviour.setdefault("reveni", {})["list_endpoint"] = False
    webhooks = behaviour.setdefault("webhooks", {})
    if args.webhook_time_scale != 1:
        webhooks["time_scale"] = args.webhook_time_scale
    if args.webhook_first_delay is not None:
        webhooks["cin7_first_delay_seconds"] = webhooks["reveni_first_delay_seconds"] = args.webhook_first_delay
    return behaviour


if __name__ == "__main__":
    main()
