"""TaskFlow wrappers shared by the DAGs: each is a few lines that resolve Airflow inputs
(connections, context) and call a plain function of the package."""

from __future__ import annotations

import logging

from airflow.sdk import task

log = logging.getLogger(__name__)


@task
def check_connections() -> None:
    """Fail fast, naming each missing or malformed connection and the variable to set."""
    from returns_recon.connections import ALL_CONNECTIONS
    from returns_recon.orchestration import require_connections

    require_connections(ALL_CONNECTIONS)
    log.info("all %d connections are present and well formed", len(ALL_CONNECTIONS))


@task
def migrate_warehouse() -> list[str]:
    """Apply pending warehouse migrations (idempotent, serialised by an advisory lock)."""
    from returns_recon.orchestration import warehouse_connection
    from returns_recon.warehouse.migrate import apply_migrations

    with warehouse_connection() as conn:
        applied = apply_migrations(conn)
    log.info("migrations applied now: %s", applied or "none, already up to date")
    return applied
