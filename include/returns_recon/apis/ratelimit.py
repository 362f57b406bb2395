"""Client-side rate limits shared by every task and worker that calls the same account.

pyrate-limiter's Postgres bucket keeps the window in the warehouse (one table per account
budget), so concurrent tasks on different workers draw from one budget. The tables live in the internal
schema ``ops`` (migration 0015), out of what finance reads.
"""

from __future__ import annotations

import hashlib
from functools import cache
from typing import Protocol

from psycopg import sql
from psycopg_pool import ConnectionPool
from pyrate_limiter import Duration, Limiter, Rate, validate_rate_list
from pyrate_limiter.buckets.postgres import PostgresBucket

from returns_recon.warehouse.rows import one_row


class Budget(Protocol):
    def acquire(self) -> None: ...


class NoBudget:
    def acquire(self) -> None:
        return None


# The API counts a call when it arrives, we when we take it from the budget: a call delayed on its
# way (network, a slow connect) must not land inside the API's minute. A second of margin.
SKEW_MARGIN_MS = 1000


class SharedBudget:
    """``calls_per_minute`` for one account, shared through the warehouse."""

    def __init__(self, pool: ConnectionPool, key: str, calls_per_minute: int) -> None:
        table = "api_budget_" + hashlib.sha256(key.encode()).hexdigest()[:16]
        window = Duration.MINUTE + SKEW_MARGIN_MS
        # evenly spaced (no burst at the top of each minute), and never more than the minute's budget
        rates = [Rate(calls_per_minute, window)]
        spacing = window // calls_per_minute
        if spacing >= 1 and validate_rate_list(spaced := [Rate(1, spacing), *rates]):
            rates = spaced
        _ensure_schema(pool)
        bucket = PostgresBucket(pool, table, rates)
        self._limiter = Limiter(bucket)

    def acquire(self) -> None:
        self._limiter.try_acquire("call", blocking=True)


# the bucket names its table unqualified: its connections create and find it in ops
SCHEMA = "ops"
_SCHEMA_LOCK = 72_617_304


def _ensure_schema(pool: ConnectionPool) -> None:
    """ops as migration 0015 creates it, for a warehouse not migrated yet (serialised: two workers at once)."""
    with pool.connection() as conn:
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
        if one_row(conn.execute("SELECT to_regnamespace(%s) IS NULL", (SCHEMA,)))[0]:
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(SCHEMA)))


@cache
def _pool(dsn: str) -> ConnectionPool:
    # not autocommit: the bucket locks its table inside a transaction per check-and-put
    return ConnectionPool(dsn, min_size=1, max_size=4, open=True, kwargs={"options": f"-c search_path={SCHEMA}"})


def shared_budget(dsn: str, key: str, calls_per_minute: int | None) -> Budget:
    """A budget for ``key`` (service + account), or none when no limit is configured."""
    if not calls_per_minute:
        return NoBudget()
    return SharedBudget(_pool(dsn), key, calls_per_minute)
