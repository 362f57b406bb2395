"""One request loop for all three APIs: pace under the shared budget, classify the answer,
retry what is worth retrying (tenacity), and count calls.

Only reads are retried here. A write that fails ambiguously is never blindly repeated: the
corrective-postings executor reads back first (see ``returns_recon.postings``).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import requests
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)
from urllib3.exceptions import InvalidHeader
from urllib3.util.retry import Retry

from returns_recon.apis.errors import ApiError, AuthError, ThrottledError, TransientError
from returns_recon.apis.ratelimit import Budget, NoBudget


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


@dataclass
class RetrySettings:
    attempts: int = 8
    initial_wait: float = 1.0
    max_wait: float = 60.0
    connect_timeout: float = 10.0
    read_timeout: float = 60.0


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
            stop=stop_after_attempt(self.retry.attempts),
            wait=self._wait,
            reraise=True,
            before_sleep=self._log_retry,
        )
        return retrying(call)

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
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
            body = response.content
            self.last_headers = response.headers
        except (requests.Timeout, requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as err:
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
