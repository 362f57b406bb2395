"""How an API call failed, which decides whether it is retried."""

from __future__ import annotations

from returns_recon.errors import NotRetryable


class ApiError(RuntimeError):
    """A refusal that a retry will not change (4xx other than throttling)."""

    def __init__(self, service: str, status: int, message: str) -> None:
        super().__init__(f"{service} answered {status}: {message[:500]}")
        self.service = service
        self.status = status


class AuthError(ApiError, NotRetryable):
    """Credentials refused: fix the connection, do not retry."""

    def __init__(self, service: str, status: int, conn_id: str) -> None:
        ApiError.__init__(
            self, service, status, f"credentials refused; check the Airflow connection '{conn_id}' (login/password)"
        )


class TransientError(RuntimeError):
    """Worth retrying: 5xx, timeouts, resets, a non-JSON page with HTTP 200."""


class ThrottledError(TransientError):
    """The service said slow down; ``retry_after`` seconds if it said how long."""

    def __init__(self, service: str, message: str, retry_after: float | None, status: int = 429) -> None:
        super().__init__(f"{service} throttled the call ({status}): {message[:200]}")
        self.retry_after = retry_after
        self.status = status

    @property
    def refused_unprocessed(self) -> bool:
        """A rate-limit refusal (429, or Cin7 Core's 400 limit message) was not processed, so a write may be
        sent again; a 503 may come from anywhere on the way and is treated as ambiguous."""
        return self.status != 503
