"""``python -m recon_simulators``: serve the three simulators (foreground) on one scenario."""

from __future__ import annotations

import argparse
import asyncio
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
    args = parser.parse_args()
    ports = Ports(args.reveni_port, args.cin7_port, args.sitoo_port)
    print(
        f"simulators on {args.bind}: Reveni :{ports.reveni}, Cin7 Core :{ports.cin7}, Sitoo :{ports.sitoo}"
        f" (scenario: {args.scenario or 'empty'})",
        flush=True,
    )
    asyncio.run(serve(args.scenario, args.bind, ports, args.cin7_rate_limit or None))


if __name__ == "__main__":
    main()
