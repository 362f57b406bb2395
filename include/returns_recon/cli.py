"""``python -m returns_recon.cli``: what a person does by hand.

    exceptions list [--owner finance] [--state open]
    exceptions ack KEY --by NAME [--note TEXT]
    exceptions resolve KEY --by NAME [--note TEXT]
    exceptions reopen KEY --by NAME
    postings list [--status refused]
    postings replay --key KEY            one posting, through the same read-back and idempotency
    postings replay --run RUN_ID --failed   every refused or ambiguous posting of a run
    golive-check [--run-id ID]          read-only questions to the three accounts (docs/golive.md);
                                        exits 1 when a blocking check fails (that system's postings stay held)

The warehouse is the ``recon_warehouse`` Airflow connection (AIRFLOW_CONN_RECON_WAREHOUSE).
"""

from __future__ import annotations

import argparse
import sys

import psycopg


def _connect() -> psycopg.Connection:
    from returns_recon.orchestration import warehouse_dsn

    return psycopg.connect(warehouse_dsn(), autocommit=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m returns_recon.cli", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    sub = parser.add_subparsers(dest="area", required=True)
    exceptions = sub.add_parser("exceptions").add_subparsers(dest="action", required=True)
    listing = exceptions.add_parser("list")
    listing.add_argument("--owner")
    listing.add_argument("--state", default="open")
    for action in ("ack", "resolve", "reopen"):
        cmd = exceptions.add_parser(action)
        cmd.add_argument("key")
        cmd.add_argument("--by", required=True, help="who decided (kept with the exception)")
        cmd.add_argument("--note")
    postings = sub.add_parser("postings").add_subparsers(dest="action", required=True)
    plist = postings.add_parser("list")
    plist.add_argument("--status")
    replay = postings.add_parser("replay")
    replay.add_argument("--key")
    replay.add_argument("--run")
    replay.add_argument("--failed", action="store_true", help="with --run: its refused and ambiguous postings")
    golive = sub.add_parser("golive-check", help="the read-only go-live check (docs/golive.md)")
    golive.add_argument("--run-id", help="default: golive-<UTC time>")
    args = parser.parse_args(argv)
    if args.area == "postings":
        return _postings(args)
    if args.area == "golive-check":
        return _golive_check(args)
    from returns_recon.reconcile.engine import set_state

    with _connect() as conn:
        if args.action == "list":
            rows = conn.execute(
                """SELECT exception_key, owner, severity, state, first_seen_at::date, occurrences
                   FROM recon.exceptions WHERE state = %s AND (%s::text IS NULL OR owner = %s) ORDER BY 1""",
                (args.state, args.owner, args.owner),
            ).fetchall()
            for row in rows:
                print("\t".join(str(v) for v in row))
            return 0
        state = {"ack": "acknowledged", "resolve": "resolved", "reopen": "open"}[args.action]
        if not set_state(conn, args.key, state, args.by, args.note):
            print(f"no exception with key {args.key}", file=sys.stderr)
            return 1
        print(f"{args.key}: {state} by {args.by}")
    return 0


def _postings(args: argparse.Namespace) -> int:
    with _connect() as conn:
        if args.action == "list":
            rows = conn.execute(
                """SELECT posting_key, action, system, return_id, status, attempts, coalesce(last_error, '')
                   FROM recon.postings WHERE %s::text IS NULL OR status = %s ORDER BY updated_at""",
                (args.status, args.status),
            ).fetchall()
            for row in rows:
                print("\t".join(str(v) for v in row))
            return 0
        if args.key:
            keys = [args.key]
        elif args.run and args.failed:
            keys = [k for (k,) in conn.execute(
                "SELECT posting_key FROM recon.postings WHERE last_run_id = %s AND status IN ('refused', 'ambiguous')",
                (args.run,))]  # fmt: skip
        else:
            print("give --key KEY, or --run RUN_ID --failed", file=sys.stderr)
            return 2
        if not keys:
            print("nothing to replay")
            return 0
        from returns_recon.orchestration import api_clients, warehouse_dsn
        from returns_recon.postings.execute import execute
        from returns_recon.settings import load_settings

        report = execute(conn, api_clients(warehouse_dsn()), f"replay-{args.key or args.run}", load_settings(), keys)
        print(report.as_dict())
    return 0


def _golive_check(args: argparse.Namespace) -> int:
    """The same connections and hooks as the pipeline; the report is printed and kept in recon.golive_checks."""
    from datetime import UTC, datetime

    from returns_recon.golive import cin7_pace, run_golive_check
    from returns_recon.orchestration import api_clients, lookup_connection, warehouse_dsn
    from returns_recon.settings import load_settings
    from returns_recon.warehouse.migrate import apply_migrations

    run_id = args.run_id or f"golive-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    cin7 = lookup_connection("cin7_core_default")
    with _connect() as conn:
        apply_migrations(conn)
        clients = api_clients(warehouse_dsn())
        report = run_golive_check(conn, clients, load_settings(), run_id,
                                  cin7_calls_per_minute=cin7_pace(cin7.extra_dejson if cin7 else None))  # fmt: skip
    print(report.render())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
