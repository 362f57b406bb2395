"""The short, human-readable summary that ends `make demo`."""

from __future__ import annotations

import psycopg

from local_stack.settings import ConnFields
from returns_recon.warehouse.rows import one_row

STAGING_COUNTS = """
SELECT 'Reveni returns', count(*) FROM staging.stg_reveni__returns
UNION ALL SELECT 'Reveni return items', count(*) FROM staging.stg_reveni__return_items
UNION ALL SELECT 'Cin7 Core sales (headers)', count(*) FROM staging.stg_cin7__sales
UNION ALL SELECT 'Cin7 Core credit notes', count(*) FROM staging.stg_cin7__credit_notes
UNION ALL SELECT 'Cin7 Core stock transfers', count(*) FROM staging.stg_cin7__stock_transfers
UNION ALL SELECT 'Sitoo orders', count(*) FROM staging.stg_sitoo__orders
UNION ALL SELECT 'Sitoo warehouse transactions', count(*) FROM staging.stg_sitoo__warehouse_transactions
UNION ALL SELECT 'location map return points', count(*) FROM staging.dim_location_map
UNION ALL SELECT 'quarantined payloads', count(*) FROM raw.quarantine WHERE superseded_at IS NULL
"""


DEFAULT_QUERY = '  query it:                          psql "$(make -s warehouse-url)"; `make stop` stops it'


def print_summary(
    conn: ConnFields,
    outcomes: dict[str, bool],
    docs_index: str | None = None,
    merchant: str | None = None,
    query: str | None = None,
) -> None:
    """``merchant`` (`make demo MERCHANTS=N`): whose summary it is, in its heading; ``query``: how to query its
    warehouse (default: `make warehouse-url`)."""
    with psycopg.connect(conn.libpq_url()) as db:
        migrations = one_row(db.execute("SELECT count(*), max(name) FROM public.schema_migrations"))
        counts = db.execute(STAGING_COUNTS).fetchall()
        quality = db.execute(
            """SELECT suite, count(*) FILTER (WHERE success), count(*),
                      count(*) FILTER (WHERE NOT success AND severity = 'critical')
               FROM recon.dq_results
               WHERE run_id = (SELECT run_id FROM recon.dq_results WHERE suite <> 'location_map_csv'
                               ORDER BY checked_at DESC LIMIT 1)
               GROUP BY suite ORDER BY suite"""
        ).fetchall()
        mismatches = db.execute(
            "SELECT exception_type, count(*) FROM staging.int_master_data__mismatches GROUP BY 1 ORDER BY 1"
        ).fetchall()
        has_recon = one_row(db.execute("SELECT to_regclass('recon.fct_return_reconciliation') IS NOT NULL"))[0]
        recon = _finance(db) if has_recon else None
        calls = db.execute(
            """SELECT source, sum(api_calls) FROM raw.extract_runs
               WHERE run_id = (SELECT run_id FROM raw.extract_runs ORDER BY finished_at DESC LIMIT 1)
               GROUP BY source ORDER BY source"""
        ).fetchall()
    line = "=" * 72
    heading = "Returns reconciliation demo: summary" + (f" of {merchant}" if merchant else "")
    print(f"\n{line}\n{heading}\n{line}")
    for dag_id, ok in outcomes.items():
        print(f"  {dag_id:<34} {'succeeded' if ok else 'FAILED (see the output above)'}")
    print(f"  warehouse                          {conn.host}:{conn.port}/{conn.schema}")
    print(f"  migrations applied                 {migrations[0]} (latest {migrations[1]})")
    print("  staged from the three systems:")
    for label, count in counts:
        print(f"    {label:<32} {count:>8}")
    if quality:
        print("  data quality (last run):")
        for suite, passed, total, critical in quality:
            flag = f", {critical} CRITICAL" if critical else ""
            print(f"    {suite:<32} {passed}/{total} passed{flag}")
    if mismatches:
        print("  master-data mismatches:           " + ", ".join(f"{t} {n}" for t, n in mismatches))
    if docs_index:
        print(f"  Data Docs:                         {docs_index}")
    if calls:
        print("  API calls in the last run:        " + ", ".join(f"{s} {n}" for s, n in calls))
    if recon:
        statuses, owners, types, money = recon
        print("  reconciliation (for finance):")
        print("    returns                        " + ", ".join(f"{n} {s.replace('_', ' ')}" for s, n in statuses))
        print("    open exceptions by owner       " + (", ".join(f"{o} {n}" for o, n in owners) or "none"))
        for kind, owner, n in types:
            print(f"      {kind:<34} {owner:<17} {n:>5}")
        print("    refunded vs credited (in scope):")
        for currency, refunded, credited in money:
            print(
                f"      {currency}  refunded {refunded:>12,.2f}   credited {credited:>12,.2f}   "
                f"difference {credited - refunded:>10,.2f}"
            )
    print(f"  query it:                          {query}" if query else DEFAULT_QUERY)
    print(line)


def _finance(db: psycopg.Connection):
    statuses = db.execute(
        """SELECT status, count(*) FROM (
               SELECT return_id, CASE WHEN bool_or(overall_status = 'exception') THEN 'with_exceptions'
                                      WHEN bool_and(overall_status = 'reconciled') THEN 'reconciled'
                                      ELSE 'in_progress' END AS status
               FROM recon.fct_return_reconciliation GROUP BY return_id) r
           GROUP BY status ORDER BY status"""
    ).fetchall()
    open_rows = "FROM recon.exceptions WHERE recon.is_open(state)"
    owners = db.execute(f"SELECT owner, count(*) {open_rows} GROUP BY 1 ORDER BY 1").fetchall()
    types = db.execute(f"SELECT exception_type, owner, count(*) {open_rows} GROUP BY 1, 2 ORDER BY 2, 1").fetchall()
    money = db.execute(
        "SELECT currency, sum(refunded), sum(credited) FROM recon.daily_summary GROUP BY 1 ORDER BY 1"
    ).fetchall()
    return statuses, owners, types, money
