"""``python -m returns_recon.cli``: what a person does by hand.

    exceptions list [--owner finance] [--state open]   owners match case-insensitively; an unknown one warns
    exceptions ack KEY --by NAME [--note TEXT]
    exceptions resolve KEY --by NAME [--note TEXT]
    exceptions reopen KEY --by NAME [--note TEXT]      a key that does not exist exits 1
    exceptions history KEY              every change of the exception, oldest first (recon.exception_events)
    postings list [--status refused]
    postings replay --key KEY            one posting, through the same read-back and idempotency
    postings replay --run RUN_ID --failed   every refused or ambiguous posting of a run
    golive-check [--run-id ID]          read-only questions to the three accounts (docs/golive.md);
                                        exits 1 when a blocking check fails (that system's postings stay held)

The warehouse is the ``recon_warehouse`` Airflow connection (AIRFLOW_CONN_RECON_WAREHOUSE). Settings are
read from the environment, then from ``.env`` and ``.env.example`` in the current directory (a value already
set wins). Exit status: 0 done, 1 failed (the message says why), 2 a wrong command line.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import psycopg

from returns_recon.states import EXCEPTION_STATES

KNOWN_OWNERS = "SELECT owner FROM recon.dim_exception_types UNION SELECT owner FROM recon.exceptions ORDER BY 1"


def load_env_files(directory: Path | None = None) -> None:
    """``.env``, then ``.env.example``, of ``directory`` (default: the current one) into the environment,
    never over a value already set: the shell wins over .env, which wins over .env.example."""
    from dotenv import load_dotenv

    directory = directory or Path.cwd()
    for name in (".env", ".env.example"):
        if (directory / name).is_file():
            load_dotenv(directory / name, override=False)


class _Merchant:
    """The merchant the command is about: with a merchants file (``RECON_MERCHANTS_PATH``), the one ``--merchant``
    names; without it, the one merchant of the environment."""

    merchant = None  # returns_recon.merchants.Merchant | None

    @classmethod
    def choose(cls, merchant_id: str | None) -> None:
        from returns_recon.errors import NotRetryable
        from returns_recon.merchants import load_merchants

        cls.merchant = None
        found = load_merchants()
        if found is None:
            if merchant_id:
                raise NotRetryable("--merchant needs a merchants file: RECON_MERCHANTS_PATH is not set")
            return
        ids = ", ".join(m.id for m in found.merchants)
        if not merchant_id:
            raise NotRetryable(f"name the merchant: --merchant ID (one of {ids})")
        cls.merchant = next((m for m in found.merchants if m.id == merchant_id), None)
        if cls.merchant is None:
            raise NotRetryable(f"no merchant {merchant_id!r} in the merchants file (one of {ids})")

    @classmethod
    def ids(cls):  # -> ConnectionIds
        from returns_recon.orchestration.merchant import connection_ids

        return connection_ids(cls.merchant)

    @classmethod
    def settings(cls):  # -> ReconSettings
        from returns_recon.settings import load_settings

        base = load_settings()
        return base if cls.merchant is None else cls.merchant.settings_for(base)


def _connect() -> psycopg.Connection:
    from returns_recon.orchestration.connections import connect_warehouse_dsn

    return connect_warehouse_dsn(_Merchant.ids(), autocommit=True)


def _person(value: str) -> str:
    if not value.strip():
        raise argparse.ArgumentTypeError("must name who decided (a name or email), not be empty")
    return value.strip()


def main(argv: list[str] | None = None) -> int:
    from returns_recon.errors import NotRetryable

    load_env_files()
    try:
        return _main(argv)
    except NotRetryable as err:  # a missing, malformed or unreachable connection: the message says what to do
        print(f"error: {err}", file=sys.stderr)
        return 1


def _main(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m returns_recon.cli", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--merchant", help="with a merchants file (RECON_MERCHANTS_PATH): the merchant's id")
    sub = parser.add_subparsers(dest="area", required=True)
    exceptions = sub.add_parser("exceptions").add_subparsers(dest="action", required=True)
    listing = exceptions.add_parser("list")
    listing.add_argument("--owner", help="finance, operations, data, customer service (any case)")
    listing.add_argument("--state", default="open", type=str.lower, choices=EXCEPTION_STATES)
    for action in ("ack", "resolve", "reopen"):
        cmd = exceptions.add_parser(action)
        cmd.add_argument("key")
        cmd.add_argument("--by", required=True, type=_person, help="who decided (kept in the history)")
        cmd.add_argument("--note")
    exceptions.add_parser("history", help="every change of one exception, oldest first").add_argument("key")
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
    _Merchant.choose(args.merchant)
    if args.area == "postings":
        return _postings(args)
    if args.area == "golive-check":
        return _golive_check(args)
    from returns_recon.reconcile.engine import set_state

    with _connect() as conn:
        if args.action == "list":
            return _list(conn, args.owner, args.state)
        if args.action == "history":
            return _history(conn, args.key)
        state = {"ack": "acknowledged", "resolve": "resolved", "reopen": "open"}[args.action]
        if not set_state(conn, args.key, state, args.by, args.note):
            print(f"no exception with key {args.key}", file=sys.stderr)
            return 1
        print(f"{args.key}: {state} by {args.by}")
    return 0


def _list(conn: psycopg.Connection, owner: str | None, state: str) -> int:
    if owner is not None:
        known = [o for (o,) in conn.execute(KNOWN_OWNERS)]
        if owner.strip().lower() not in {o.lower() for o in known}:
            print(f"warning: no owner {owner!r}; the owners are: {', '.join(known)}", file=sys.stderr)
    rows = conn.execute(
        """SELECT exception_key, owner, severity, state, first_seen_at::date, occurrences
           FROM recon.exceptions WHERE state = %s AND (%s::text IS NULL OR lower(owner) = lower(btrim(%s)))
           ORDER BY 1""",
        (state, owner, owner),
    ).fetchall()
    for row in rows:
        print("\t".join(str(v) for v in row))
    return 0


def _history(conn: psycopg.Connection, key: str) -> int:
    if conn.execute("SELECT 1 FROM recon.exceptions WHERE exception_key = %s", (key,)).fetchone() is None:
        print(f"no exception with key {key}", file=sys.stderr)
        return 1
    rows = conn.execute(
        """SELECT changed_at, coalesce(from_state, '-'), to_state, changed_by, coalesce(run_id, ''), coalesce(note, '')
           FROM recon.exception_events WHERE exception_key = %s ORDER BY event_id""",
        (key,),
    ).fetchall()
    print("\t".join(("changed_at", "from", "to", "by", "run_id", "note")))
    for row in rows:
        print("\t".join(str(v) for v in row))
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
            keys = [
                k
                for (k,) in conn.execute(
                    "SELECT posting_key FROM recon.postings"
                    " WHERE last_run_id = %s AND status IN ('refused', 'ambiguous')",
                    (args.run,),
                )
            ]
        else:
            print("give --key KEY, or --run RUN_ID --failed", file=sys.stderr)
            return 2
        if not keys:
            print("nothing to replay")
            return 0
        from returns_recon.orchestration.connections import api_clients, warehouse_dsn
        from returns_recon.postings.execute import execute

        ids = _Merchant.ids()
        clients = api_clients(warehouse_dsn(ids), ids)
        report = execute(conn, clients, f"replay-{args.key or args.run}", _Merchant.settings(), keys)
        print(report.as_dict())
    return 0


def _golive_check(args: argparse.Namespace) -> int:
    """The same connections and hooks as the pipeline; the report is printed and kept in recon.golive_checks."""
    from datetime import UTC, datetime

    from returns_recon.golive import cin7_pace, run_golive_check
    from returns_recon.orchestration.connections import api_clients, lookup_connection, warehouse_dsn
    from returns_recon.warehouse.migrate import apply_migrations

    run_id = args.run_id or f"golive-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    ids = _Merchant.ids()
    cin7 = lookup_connection(ids.cin7)
    with _connect() as conn:
        apply_migrations(conn)
        clients = api_clients(warehouse_dsn(ids), ids)
        pace = cin7_pace(cin7.extra_dejson if cin7 else None)
        report = run_golive_check(conn, clients, _Merchant.settings(), run_id, cin7_calls_per_minute=pace)
    print(report.render())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
