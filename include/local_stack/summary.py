"""The short, human-readable summary that ends `make demo`."""

from __future__ import annotations

import psycopg

from local_stack.settings import ConnFields


def print_summary(conn: ConnFields, outcomes: dict[str, bool]) -> None:
    with psycopg.connect(conn.libpq_url()) as db:
        migrations = db.execute("SELECT count(*), max(name) FROM public.schema_migrations").fetchone()
        schemas = [
            r[0]
            for r in db.execute(
                "SELECT nspname FROM pg_namespace WHERE nspname IN ('raw', 'staging', 'recon') ORDER BY 1"
            )
        ]
    print("\n" + "=" * 72)
    print("Returns reconciliation demo: summary")
    print("=" * 72)
    for dag_id, ok in outcomes.items():
        print(f"  {dag_id:<28} {'succeeded' if ok else 'FAILED (see the output above)'}")
    print(f"  warehouse                    {conn.host}:{conn.port}/{conn.schema}, schemas: {', '.join(schemas)}")
    print(f"  migrations applied           {migrations[0]} (latest {migrations[1]})")
    print('  query it:                    psql "$(make -s warehouse-url)"; `make stop` stops it')
    print("=" * 72)
