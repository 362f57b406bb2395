"""A small psycopg pool on the warehouse, opened at first use (never at import) and closed by its owner."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import psycopg
    from psycopg_pool import ConnectionPool

MAX_SIZE = 4
WAIT_SECONDS = 10.0  # a request waits this long for a connection, then fails (the caller answers 503)


class LazyPool:
    def __init__(
        self,
        name: str,
        dsn_of: Callable[[], str] | None = None,
        max_size: int = MAX_SIZE,
        wait_seconds: float = WAIT_SECONDS,
    ) -> None:
        self.name = name
        self._dsn_of = dsn_of
        self.max_size = max_size
        self.wait_seconds = wait_seconds
        self._pool: ConnectionPool | None = None
        self._lock = threading.Lock()

    def pool(self) -> ConnectionPool:
        with self._lock:
            if self._pool is None:
                from psycopg_pool import ConnectionPool

                dsn_of = self._dsn_of
                if dsn_of is None:
                    from returns_recon.orchestration.connections import warehouse_dsn

                    dsn_of = warehouse_dsn
                pool = ConnectionPool(
                    dsn_of(),
                    min_size=1,
                    max_size=self.max_size,
                    kwargs={"autocommit": True},
                    check=ConnectionPool.check_connection,
                    timeout=self.wait_seconds,
                    name=self.name,
                    open=False,
                )
                pool.open(wait=False)  # connects in the background; a request waits at most wait_seconds
                self._pool = pool
            return self._pool

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        with self.pool().connection() as conn:
            yield conn

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()
