"""Fault injection and call accounting, per service.

Every request passes through ``FaultState.decide``: it counts the call, refuses it when the key has
been "rotated" (``auth_refuse_writes_after``), applies the rate limit in simulator-clock time, and may
inject one fault. For writes (POST/PUT/DELETE) a fault is applied *after* the write by default, the
ambiguous case a client must survive; an empty or truncated body is always an answer to an applied
write. Every write-side fault is off by default (docs/simulators.md).
"""

from __future__ import annotations

import hashlib
import random
import threading
from collections import Counter, deque
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

ThrottleForm = Literal["429", "503", "400"]
# "default": the service's own header (Sitoo and Reveni ``Retry-After: 1``, Cin7 Core none, as documented);
# "none": no header; "seconds" / "date": the two forms RFC 9110 §10.2.3 allows (delay-seconds, HTTP-date)
RetryAfterForm = Literal["default", "none", "seconds", "date"]
ElementStatus = Literal[500, 503, 429]
ELEMENT_STATUSES: tuple[ElementStatus, ...] = (500, 503, 429)
# True while the request being served is a read and ``writes_only`` is on: no fault applies to it
_READ_UNDER_WRITES_ONLY: ContextVar[bool] = ContextVar("read_under_writes_only", default=False)


class FaultConfig(BaseModel):
    """What to inject; every rate is a probability per request (0 = off)."""

    rate_limit_per_minute: int | None = Field(None, description="None = unlimited")
    throttle_form: ThrottleForm = "429"
    error_rate_5xx: float = 0.0
    latency_ms: int = 0
    timeout_rate: float = 0.0
    timeout_seconds: float = 20.0
    reset_rate: float = 0.0
    html_rate: float = 0.0
    shift_rate: float = 0.0
    duplicate_rate: float = 0.0
    malformed_rate: float = 0.0
    write_fault_after_apply: bool = True
    # --- write-side faults, each off by default -------------------------------------------------------
    writes_only: bool = Field(False, description="the rate limit and every random fault apply to writes only")
    auth_refuse_writes_after: int | None = Field(
        None, ge=0, description="after N writes, every later call is refused, as after a key rotation"
    )
    auth_refuse_status: Literal[401, 403] = 401
    retry_after_form: RetryAfterForm = "default"
    retry_after_seconds: int = Field(1, ge=0, description="the delay a throttle asks for (seconds or date form)")
    element_error_rate: float = Field(0.0, description="Sitoo batch writes: an element answered 5xx/429, not applied")
    element_error_statuses: list[ElementStatus] = Field(default_factory=lambda: list(ELEMENT_STATUSES), min_length=1)
    empty_body_rate: float = Field(0.0, description="an applied write answered 200 with an empty body")
    truncated_body_rate: float = Field(0.0, description="an applied write answered with its body cut short")
    seed: int = 1


Fault = Literal["5xx", "timeout", "reset", "html", "empty", "truncated"]
# the faults that answer an applied write (never a read, never before the write)
ANSWER_FAULTS = ("empty", "truncated")


@dataclass
class Decision:
    throttled: bool = False
    auth_refused: bool = False
    fault: Fault | None = None
    latency_s: float = 0.0


class FaultState:
    def __init__(self, service: str, config: FaultConfig | None = None) -> None:
        self.service = service
        self._lock = threading.Lock()
        self.configure(config or FaultConfig())
        self.calls: Counter[str] = Counter()
        self.throttled: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()
        self._windows: dict[str, deque[datetime]] = {}

    def configure(self, config: FaultConfig) -> None:
        """A new configuration starts afresh: its random sequence and its count of writes (a fixed key)."""
        with self._lock:
            self.config = config
            self._rng = random.Random(config.seed)
            self.writes = 0

    def reset_counters(self) -> None:
        with self._lock:
            self.calls.clear()
            self.throttled.clear()
            self.faults.clear()
            self._windows.clear()

    def decide(
        self, endpoint: str, budget_key: str, now: datetime, *, eligible: bool = True, write: bool = False
    ) -> Decision:
        """Count the call and decide its fate. ``eligible`` is False for a call refused by authentication."""
        with self._lock:
            self.calls[endpoint] += 1
            cfg = self.config
            quiet = cfg.writes_only and not write
            _READ_UNDER_WRITES_ONLY.set(quiet)
            if not eligible:
                return Decision()
            after = cfg.auth_refuse_writes_after
            if after is not None and self.writes >= after:
                self.faults[f"auth_{cfg.auth_refuse_status}"] += 1
                return Decision(auth_refused=True)
            if cfg.rate_limit_per_minute is not None and not quiet:
                window = self._windows.setdefault(budget_key, deque())
                while window and (now - window[0]).total_seconds() >= 60:
                    window.popleft()
                if len(window) >= cfg.rate_limit_per_minute:
                    self.throttled[endpoint] += 1
                    return Decision(throttled=True)
                window.append(now)
            if write:
                self.writes += 1
            decision = Decision(latency_s=cfg.latency_ms / 1000)
            if quiet:
                return decision
            rates = [
                ("5xx", cfg.error_rate_5xx),
                ("timeout", cfg.timeout_rate),
                ("reset", cfg.reset_rate),
                ("html", cfg.html_rate),
            ]
            if write:
                rates += [("empty", cfg.empty_body_rate), ("truncated", cfg.truncated_body_rate)]
            roll = self._rng.random()
            for fault, rate in rates:
                if roll < rate:
                    decision.fault = fault  # type: ignore[assignment]
                    if fault not in ANSWER_FAULTS:  # counted when a write is applied and so answered
                        self.faults[fault] += 1
                    break
                roll -= rate
            return decision

    def count(self, fault: str) -> None:
        with self._lock:
            self.faults[fault] += 1

    def chance(self, rate: float, fault: str | None = None) -> bool:
        """True with probability ``rate``; counted under ``fault`` when it happens. Never for a read while
        ``writes_only`` is on."""
        if _READ_UNDER_WRITES_ONLY.get():
            return False
        with self._lock:
            hit = rate > 0 and self._rng.random() < rate
            if hit and fault:
                self.faults[fault] += 1
            return hit

    def pick(self, n: int) -> int:
        with self._lock:
            return self._rng.randrange(n)

    def is_malformed(self, key: str) -> bool:
        """Stable per record: the same record is malformed on every read."""
        rate = self.config.malformed_rate
        if rate <= 0 or _READ_UNDER_WRITES_ONLY.get():
            return False
        digest = hashlib.sha256(f"{self.config.seed}:{key}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64 < rate

    def snapshot(self) -> dict:
        with self._lock:
            return {
                "calls": dict(self.calls),
                "total_calls": sum(self.calls.values()),
                "throttled": dict(self.throttled),
                "total_throttled": sum(self.throttled.values()),
                "faults": dict(self.faults),
                "config": self.config.model_dump(),
            }
