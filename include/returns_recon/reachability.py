"""A host that does not answer fails the task within a minute, naming the connection and host:port.

Both the APIs (``apis.client``) and the warehouse give up on a host that never answered after a bounded
number of attempts, each bounded by its timeouts, the whole worst case within ``BUDGET_SECONDS``; the
error is ``Unreachable`` (not retried by Airflow: the log says what to check), and never holds a secret.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

import psycopg

from returns_recon.errors import NotRetryable

log = logging.getLogger(__name__)

BUDGET_SECONDS = 60.0  # an unreachable host fails the task within this, worst case

# the warehouse: libpq's connect_timeout per attempt (it covers the TCP connect and the startup exchange,
# so a host that accepts the connection but never answers times out too), and the pauses between attempts
WAREHOUSE_CONNECT_TIMEOUT = 10
WAREHOUSE_PAUSES = (1.0, 2.0)  # three attempts: 3 x 10 s + 3 s = 33 s at most

T = TypeVar("T")


class Unreachable(NotRetryable):
    """No answer from a connection's host:port within the budget."""

    def __init__(
        self, conn_id: str, host: str, port: int | None, reason: str, attempts: int, seconds: float, check: str
    ) -> None:
        super().__init__(
            f"cannot reach {host_port(host, port)} (Airflow connection '{conn_id}'): {reason}; gave up after "
            f"{attempts} attempt{'s' * (attempts != 1)} in {seconds:.0f} s. Check the connection's host and port, "
            f"{check}, and that this worker can reach it (firewall, proxy, DNS); then clear the task"
        )
        self.conn_id = conn_id
        self.host = host
        self.port = port


def host_port(host: str, port: int | None) -> str:
    host = f"[{host}]" if ":" in host else host  # an IPv6 address
    return f"{host}:{port}" if port else host


def worst_case_seconds(per_attempt: float, pauses: tuple[float, ...]) -> float:
    """Attempts that each wait out their whole timeout, and the pauses between them."""
    return per_attempt * (len(pauses) + 1) + sum(pauses)


def warehouse_worst_case_seconds() -> float:
    return worst_case_seconds(WAREHOUSE_CONNECT_TIMEOUT, WAREHOUSE_PAUSES)


# libpq's words for "the server never answered" (any other connect error, e.g. a refused password, is not
# about reachability and is raised as it is)
_NO_ANSWER = {
    "connection refused": "connection refused",
    "could not translate host name": "host name not found",
    "name or service not known": "host name not found",
    "no route to host": "no route to host",
    "network is unreachable": "network unreachable",
    "timeout expired": "no answer within the connect timeout",
}


def no_answer_reason(err: psycopg.OperationalError) -> str | None:
    """Why the server never answered, in a few words of ours (never libpq's text), or None if it did."""
    if isinstance(err, psycopg.errors.ConnectionTimeout):
        return "no answer within the connect timeout"
    text = str(err).lower()
    return next((reason for words, reason in _NO_ANSWER.items() if words in text), None)


def connect_warehouse(connect: Callable[[], T], conn_id: str, host: str, port: int | None) -> T:
    """``connect()`` (which sets ``connect_timeout``), tried ``len(WAREHOUSE_PAUSES) + 1`` times while the
    server does not answer; then ``Unreachable`` naming the connection and host:port."""
    started = time.monotonic()
    pauses = iter(WAREHOUSE_PAUSES)
    attempt = 0
    while True:
        attempt += 1
        try:
            return connect()
        except psycopg.OperationalError as err:
            reason = no_answer_reason(err)
            if reason is None:
                raise  # the server answered (a refused password, a missing database): not about reachability
            pause = next(pauses, None)
            if pause is None:
                raise Unreachable(
                    conn_id, host, port, reason, attempt, time.monotonic() - started, "that the warehouse is running"
                ) from err
            log.warning(
                "warehouse %s: %s (attempt %d); trying again in %g s", host_port(host, port), reason, attempt, pause
            )
            time.sleep(pause)
