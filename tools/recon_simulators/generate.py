"""``python -m recon_simulators.generate``: write a scenario (and its location map as CSV)."""

from __future__ import annotations

import argparse
import csv
import time
from datetime import UTC, datetime
from pathlib import Path

from recon_simulators.generator import (
    DEFAULT_RATE,
    MESSY_DEFAULTS,
    MESSY_SHAPES,
    PLANTABLE,
    GeneratorConfig,
    generate,
)
from recon_simulators.scenario import read_header_and_records
from recon_simulators.timefmt import require_ts


def location_map_csv_path(scenario: Path) -> Path:
    name = scenario.name
    for suffix in (".jsonl.gz", ".jsonl", ".json"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return scenario.with_name(f"{name}.location_map.csv")


def write_location_map_csv(scenario: Path, out: Path) -> int:
    _, records = read_header_and_records(scenario)
    rows = [record for kind, record in records if kind == "location_map"]
    with out.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, dict[str, float], dict[str, float]]:
    """The arguments, the planting rate of every type and the rate of every messy shape."""
    parser = argparse.ArgumentParser(prog="python -m recon_simulators.generate", description=__doc__)
    parser.add_argument("--returns", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True, help=".json, or .jsonl / .jsonl.gz for large scenarios")
    parser.add_argument("--clock", default="", help="scenario time (ISO 8601); default: now, to the hour")
    parser.add_argument(
        "--rate",
        action="append",
        default=[],
        metavar="TYPE=RATE",
        help=f"planting rate of an exception type (default {DEFAULT_RATE} each); 'all=0.01' sets every type",
    )
    parser.add_argument(
        "--messy",
        action="append",
        default=[],
        metavar="SHAPE=RATE",
        help="rate of a messy shape (default: docs/scenarios.md, MESSY_DEFAULTS); 'all=0' turns every one off; "
        f"shapes: {', '.join(MESSY_SHAPES)}",
    )
    parser.add_argument("--clean", action="store_true", help="no messy shapes: one defect per broken return")
    args = parser.parse_args(argv)
    rates = _overrides(parser, args.rate, dict.fromkeys(PLANTABLE, DEFAULT_RATE), PLANTABLE, "exception type")
    messy = _overrides(parser, args.messy, {} if args.clean else dict(MESSY_DEFAULTS), MESSY_SHAPES, "messy shape")
    return args, rates, {k: v for k, v in messy.items() if v > 0}


def _overrides(
    parser: argparse.ArgumentParser, items: list[str], rates: dict[str, float], known: tuple[str, ...], what: str
) -> dict[str, float]:
    """Apply NAME=RATE options (``all=RATE``: every known name) to ``rates``; an unknown name is an error."""
    for item in items:
        name, _, value = item.partition("=")
        if name == "all":
            rates = dict.fromkeys(known, float(value))
        elif name in known:
            rates[name] = float(value)
        else:
            parser.error(f"unknown {what} {name!r}; known: {', '.join(known)}")
    return rates


def main(argv: list[str] | None = None) -> None:
    args, rates, messy = parse_args(argv)
    clock = require_ts(args.clock) if args.clock else datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    config = GeneratorConfig(returns=args.returns, seed=args.seed, clock=clock, rates=rates, messy=messy)
    summary = generate(config, args.out)
    csv_path = location_map_csv_path(args.out)
    write_location_map_csv(args.out, csv_path)
    planted = sum(summary["exceptions"].values())
    shapes = ", ".join(f"{k} {v}" for k, v in sorted(summary["messy"].items()) if ":" not in k) or "none"
    print(
        f"wrote {args.out}: {summary['returns']} returns, {planted} planted exceptions "
        f"({len(summary['exceptions'])} types; messy shapes: {shapes}) in {time.monotonic() - started:.1f}s; "
        f"location map: {csv_path}"
    )


if __name__ == "__main__":
    main()
