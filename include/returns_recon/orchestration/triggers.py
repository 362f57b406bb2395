"""The trigger of the webhook inbox's AssetWatcher (``orchestration.assets.WEBHOOK_INBOX``). The triggerer imports
it by its class path, so it lives in the installed package, and runs it for as long as a DAG scheduled on the asset
is unpaused: each event it yields becomes an asset event, which schedules ``returns_recon_events`` (asset events
queued while a run is active fold into the next run). If ``run`` raises, the triggerer starts it again.

It waits on the warehouse, cheaply: LISTEN on the channel the inbox's insert trigger notifies (migration 0021), and
a poll every few seconds as a fallback (a notification is lost while the connection is down). It signals when
pending rows exist and

- they are not the rows of the last signal (oldest and newest id, count): a new row arrived, a run processed its
  batch and rows are still pending (``events_per_run`` left them to the next run), or rows were set pending again
  by hand (a replay, docs/operations.md), or
- rows have stayed pending ``resignal_seconds`` since the last signal (a failed run: try again).

The DAG reads the pending rows itself; the event's payload is only a wake-up."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

CHANNEL = "returns_recon_inbox"
PENDING = "SELECT min(inbox_id), max(inbox_id), count(*) FROM raw.webhook_inbox WHERE processed_at IS NULL"
# libpq options a connection's extra may carry for the warehouse (as for the Postgres provider's hook)
LIBPQ_OPTIONS = (
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "sslcrl",
    "connect_timeout",
    "application_name",
    "options",
    "target_session_attrs",
    "gssencmode",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
)


@dataclass
class Signals:
    """When to signal (see the module's docstring); ``now`` is monotonic seconds."""

    resignal_seconds: float
    rows: tuple[int, int, int] | None = None  # the pending rows at the last signal: oldest id, newest id, count
    at: float = -math.inf  # when the last signal was

    def due(self, oldest: int | None, newest: int | None, pending: int, now: float) -> bool:
        if not pending or oldest is None or newest is None:
            return False
        rows = (oldest, newest, pending)
        if rows != self.rows or now - self.at >= self.resignal_seconds:
            self.rows, self.at = rows, now
            return True
        return False


class InboxPendingTrigger(BaseEventTrigger):
    """Yields a ``TriggerEvent`` when the webhook inbox has rows to process (see the module's docstring)."""

    def __init__(
        self,
        conn_id: str = "recon_warehouse",
        poll_seconds: float = 5.0,
        resignal_seconds: float = 120.0,
        channel: str = CHANNEL,
        max_failures: int = 10,
    ) -> None:
        super().__init__()
        self.conn_id = conn_id
        self.poll_seconds = poll_seconds
        self.resignal_seconds = resignal_seconds
        self.channel = channel
        self.max_failures = max_failures

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "conn_id": self.conn_id,
                "poll_seconds": self.poll_seconds,
                "resignal_seconds": self.resignal_seconds,
                "channel": self.channel,
                "max_failures": self.max_failures,
            },
        )

    async def _dsn(self) -> str:
        """The warehouse's libpq connection string, from its Airflow connection (read without blocking the
        triggerer's event loop)."""
        from airflow.sdk import BaseHook
        from psycopg.conninfo import make_conninfo

        from returns_recon.reachability import WAREHOUSE_CONNECT_TIMEOUT

        conn = await BaseHook.aget_connection(self.conn_id)
        extra = conn.extra_dejson or {}
        options = {key: extra[key] for key in LIBPQ_OPTIONS if extra.get(key) is not None}
        options.setdefault("connect_timeout", WAREHOUSE_CONNECT_TIMEOUT)
        options.setdefault("application_name", "returns_recon inbox watcher")
        return make_conninfo(
            host=conn.host,
            port=conn.port or 5432,
            dbname=conn.schema,
            user=conn.login,
            password=conn.password,
            **options,
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        import psycopg
        from psycopg import sql

        dsn = await self._dsn()
        signals = Signals(self.resignal_seconds)
        failures = 0
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
                    await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
                    failures = 0
                    while True:
                        cursor = await conn.execute(PENDING)
                        oldest, newest, count = await cursor.fetchone() or (None, None, 0)
                        if signals.due(oldest, newest, count, time.monotonic()):
                            self.log.info("webhook inbox: %d events pending (ids %s to %s)", count, oldest, newest)
                            yield TriggerEvent({"pending": count, "oldest": oldest, "newest": newest})
                        # until a new row is notified, or the poll interval has passed
                        async for _ in conn.notifies(timeout=self.poll_seconds, stop_after=1):
                            pass
            # the warehouse down or refusing, or the inbox not there yet (migrations pending)
            except (psycopg.Error, OSError) as err:
                failures += 1
                if failures >= self.max_failures:
                    raise  # the triggerer starts the trigger again
                self.log.warning(
                    "webhook inbox watcher: the warehouse failed (%d of %d): %s", failures, self.max_failures, err
                )
                await asyncio.sleep(self.poll_seconds)
