"""Print a reconciliation SQL file with its parameters written in, to paste into psql.

    python -m returns_recon.reconcile.sql list
    python -m returns_recon.reconcile.sql render models/int_items release_sla='48 hours' restock_sla='72 hours'

Values are given as text; PostgreSQL casts each to the type its place needs (an interval, a number).
"""

from __future__ import annotations

import argparse
import sys

from returns_recon.reconcile.sql import SqlFileError, load, names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m returns_recon.reconcile.sql", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="the files and the parameters each takes")
    render = commands.add_parser("render", help="print a file with its parameters' values written in")
    render.add_argument("name", help="the file, e.g. models/int_items")
    render.add_argument("values", nargs="*", metavar="NAME=VALUE")
    args = parser.parse_args(argv)
    if args.command == "list":
        for name in names():
            print(name, " ".join(sorted(load(name).parameters)))
        return 0
    values = dict(value.split("=", 1) for value in args.values if "=" in value)
    try:
        print(load(args.name).render(values).rstrip() + ";")
    except (SqlFileError, FileNotFoundError) as err:
        print(err, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
