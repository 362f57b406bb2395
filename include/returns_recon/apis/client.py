"""One request loop for all three APIs: pace under the shared budget, classify the answer,
retry what is worth retrying (tenacity), and count calls.

Only reads are retried here. A write that fails ambiguously is never blindly repeated: the
corrective-postings executor reads back first (see ``returns_recon.postings``).

Until its host has answered once, a read that cannot connect, or connects and gets no answer within the
read timeout, means the host is unreachable: it is tried only as often as fits into
``reachability.BUDGET_SECONDS`` (each attempt waiting out its timeouts), then fails with ``Unreachable``
naming the connection and host:port, which Airflow does not retry. Once the host has answered, the same
failures are transient glitches, retried like a 5xx.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeGuard
from urllib.parse import urlsplit

import requests
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)
from urllib3.exceptions import InvalidHeader, MaxRetryError, NameResolutionError, NewConnectionError
from urllib3.util.retry import Retry

from returns_recon.apis.errors import ApiError, AuthError, ThrottledError, TransientError
from returns_recon.apis.ratelimit import Budget, NoBudget
from returns_recon.reachability import BUDGET_SECONDS, Unreachable, worst_case_seconds


def _number(value: Any) -> Any:
    if isinstance(value, Decimal):  # amounts read exactly go back out as JSON numbers, digit for digit
        return float(value) if Decimal(repr(float(value))) == value.normalize() else str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def encode_json(body: Any) -> bytes:
    return json.dumps(body, default=_number, separators=(",", ":")).encode()


log = logging.getLogger(__name__)


def retry_after_seconds(response: requests.Response) -> float | None:
    """``Retry-After`` in either form RFC 9110 §10.2.3 allows (delay seconds or an HTTP date), parsed by
    urllib3's own parser; None when absent or unreadable (the backoff then decides)."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(Retry().parse_retry_after(value)))
    except InvalidHeader:
        log.warning("ignoring an unreadable Retry-After header: %r", value[:64])
        return None


ThrottleCheck = Callable[[requests.Response], bool]


def connect_failure(err: requests.RequestException) -> str | None:
    """Why no connection could be made (refused, unknown host, no route), or None for other failures
    (a reset or a broken answer: the host was there)."""
    cause = err.args[0] if err.args else None
    cause = cause.reason if isinstance(cause, MaxRetryError) else cause
    if isinstance(cause, NameResolutionError):
        return "host name not found"
    if not isinstance(cause, NewConnectionError):
        return None
    os_error = cause.__cause__ if isinstance(cause.__cause__, OSError) else None
    if isinstance(os_error, ConnectionRefusedError):
        return "connection refused"
    return f"no connection ({os_error.strerror})" if os_error and os_error.strerror else "no connection"


class NoAnswer(TransientError):
    """The host did not answer: no connection (``connected`` False), or no answer within the read timeout."""

    def __init__(self, service: str, reason: str, *, connected: bool) -> None:
        super().__init__(f"{service}: {reason}")
        self.reason = reason
        self.connected = connected


@dataclass
class RetrySettings:
    attempts: int = 8
    initial_wait: float = 1.0
    max_wait: float = 60.0
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    unreachable_budget: float = BUDGET_SECONDS

    def pauses(self, count: int) -> tuple[float, ...]:
        """The pauses before the 2nd, 3rd, ... attempt on a host that never answered (backoff, no jitter)."""
        return tuple(min(self.initial_wait * 2**n, self.max_wait) for n in range(count))

    def per_attempt(self, *, connected: bool) -> float:
        """The longest one attempt can take without an answer: the connect timeout, and the read timeout
        once connected."""
        return self.connect_timeout + (self.read_timeout if connected else 0.0)

    def no_answer_attempts(self, *, connected: bool) -> int:
        """How many attempts on a host that never answered fit into the budget, worst case (at least one)."""
        count = 1
        while count < self.attempts and self.no_answer_worst_case(count + 1, connected=connected) <= (
            self.unreachable_budget
        ):
            count += 1
        return count

    def no_answer_worst_case(self, attempts: int | None = None, *, connected: bool) -> float:
        attempts = attempts or self.no_answer_attempts(connected=connected)
        return worst_case_seconds(self.per_attempt(connected=connected), self.pauses(attempts - 1))


@dataclass
class ApiClient:
    """A configured session for one service, with its budget and its rules."""

    service: str
    conn_id: str
    session: requests.Session
    base_url: str
    is_throttled: ThrottleCheck
    budget: Budget = field(default_factory=NoBudget)
    retry: RetrySettings = field(default_factory=RetrySettings)
    calls: Counter[str] = field(default_factory=Counter)
    # the headers of the latest answer (read by the go-live check; informational only)
    last_headers: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)
    answered: bool = False  # the host has answered once (anything, even a 5xx): it is reachable

    @property
    def host_port(self) -> tuple[str, int | None]:
        """The base URL's host and port (never its user info or path)."""
        parts = urlsplit(self.base_url)
        return parts.hostname or "", parts.port or {"https": 443, "http": 80}.get(parts.scheme)

    def url(self, path: str) -> str:
        return f"{self.base_url.rstrip('/')}/{path.lstrip('/')}"

    def get(self, path: str, params: Mapping[str, Any] | None = None, *, label: str | None = None) -> Any:
        """GET ``path`` and return its JSON body, retrying transient failures."""
        return self._with_retries(lambda: self._once("GET", path, params=params, label=label))

    def send(self, method: str, path: str, *, json_body: Any = None, label: str | None = None) -> Any:
        """One write. Retried only when the service refused it unprocessed for its rate limit (after its
        ``Retry-After``); any other failure is left to the caller, who reads back before a second attempt."""
        retrying = Retrying(
            retry=retry_if_exception(lambda e: isinstance(e, ThrottledError) and e.refused_unprocessed),
            stop=stop_after_attempt(self.retry.attempts),
            wait=self._wait,
            reraise=True,
            before_sleep=self._log_retry,
        )
        return retrying(lambda: self._once(method, path, json_body=json_body, label=label))

    def _with_retries(self, call: Callable[[], Any]) -> Any:
        retrying = Retrying(
            retry=retry_if_exception_type(TransientError),
            stop=self._stop,
            wait=self._wait,
            reraise=True,
            before_sleep=self._log_retry,
        )
        started = time.monotonic()
        try:
            return retrying(call)
        except NoAnswer as err:
            if self.answered:
                raise
            host, port = self.host_port
            attempts = retrying.statistics.get("attempt_number", 1)
            raise Unreachable(
                self.conn_id,
                host,
                port,
                err.reason,
                attempts,
                time.monotonic() - started,
                f"that the {self.service} API is up",
            ) from err

    def _unreachable(self, error: BaseException | None) -> TypeGuard[NoAnswer]:
        return isinstance(error, NoAnswer) and not self.answered

    def _stop(self, state: RetryCallState) -> bool:
        error = state.outcome.exception() if state.outcome else None
        if self._unreachable(error):
            return state.attempt_number >= self.retry.no_answer_attempts(connected=error.connected)
        return state.attempt_number >= self.retry.attempts

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if self._unreachable(error):
            return self.retry.pauses(state.attempt_number)[-1]
        if isinstance(error, ThrottledError) and error.retry_after:
            return min(error.retry_after, self.retry.max_wait)
        backoff = wait_exponential_jitter(initial=self.retry.initial_wait, max=self.retry.max_wait)
        return backoff(state)

    def _log_retry(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        log.warning("%s: attempt %d failed (%s); retrying", self.service, state.attempt_number, error)

    def _once(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        label: str | None = None,
    ) -> Any:
        self.budget.acquire()
        self.calls[label or path] += 1
        try:
            response = self.session.request(
                method,
                self.url(path),
                params=params,
                data=None if json_body is None else encode_json(json_body),
                headers=None if json_body is None else {"Content-Type": "application/json"},
                timeout=(self.retry.connect_timeout, self.retry.read_timeout),
            )
            self.answered = True
            body = response.content
            self.last_headers = response.headers
        except requests.ConnectTimeout as err:
            raise NoAnswer(
                self.service,
                f"no connection within {self.retry.connect_timeout:g} s (connect timeout)",
                connected=False,
            ) from err
        except requests.ReadTimeout as err:
            raise NoAnswer(
                self.service,
                f"connected, but no answer within {self.retry.read_timeout:g} s (read timeout)",
                connected=True,
            ) from err
        except (requests.Timeout, requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as err:
            reason = connect_failure(err)
            if reason:
                raise NoAnswer(self.service, reason, connected=False) from err
            raise TransientError(f"{self.service}: {type(err).__name__}: {err}") from err
        return self._parse(response, body)

    def _parse(self, response: requests.Response, body: bytes) -> Any:
        status = response.status_code
        if status in (401, 403):
            raise AuthError(self.service, status, self.conn_id)
        if self.is_throttled(response):
            raise ThrottledError(self.service, body.decode(errors="replace"), retry_after_seconds(response), status)
        if status >= 500:
            raise TransientError(f"{self.service} answered {status}: {body[:200].decode(errors='replace')}")
        if status >= 400:
            raise ApiError(self.service, status, body.decode(errors="replace"))
        content_type = response.headers.get("content-type", "")
        if "json" not in content_type:
            raise TransientError(f"{self.service} answered {status} with {content_type or 'no content type'}, not JSON")
        try:
            return json.loads(body, parse_float=Decimal)
        except ValueError as err:
            raise TransientError(f"{self.service} answered a body that is not valid JSON") from err
