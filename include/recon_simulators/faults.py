"""Fault injection and call accounting, per service.

Every request passes through ``FaultState.decide``: it counts the call, applies the rate
limit in simulator-clock time, and may inject one fault. For writes (POST/PUT) a fault is
applied *after* the write by default, the ambiguous case a client must survive.
"""

from __future__ import annotations

import hashlib
import random
import threading
from collections import Counter, deque
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

ThrottleForm = Literal["429", "503", "400"]


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
    seed: int = 1


Fault = Literal["5xx", "timeout", "reset", "html"]


@dataclass
class Decision:
    throttled: bool = False
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
        with self._lock:
            self.config = config
            self._rng = random.Random(config.seed)

    def reset_counters(self) -> None:
        with self._lock:
            self.calls.clear()
            self.throttled.clear()
            self.faults.clear()
            self._windows.clear()

    def decide(self, endpoint: str, budget_key: str, now: datetime, *, eligible: bool = True) -> Decision:
        """Count the call and decide its fate. ``eligible`` is False for admin traffic."""
        with self._lock:
            self.calls[endpoint] += 1
            cfg = self.config
            if cfg.rate_limit_per_minute is not None:
                window = self._windows.setdefault(budget_key, deque())
                while window and (now - window[0]).total_seconds() >= 60:
                    window.popleft()
                if len(window) >= cfg.rate_limit_per_minute:
                    self.throttled[endpoint] += 1
                    return Decision(throttled=True)
                window.append(now)
            decision = Decision(latency_s=cfg.latency_ms / 1000)
            if not eligible:
                return decision
            roll = self._rng.random()
            for fault, rate in (
                ("5xx", cfg.error_rate_5xx),
                ("timeout", cfg.timeout_rate),
                ("reset", cfg.reset_rate),
                ("html", cfg.html_rate),
            ):
                if roll < rate:
                    decision.fault = fault  # type: ignore[assignment]
                    self.faults[fault] += 1
                    break
                roll -= rate
            return decision

    def chance(self, rate: float, fault: str | None = None) -> bool:
        """True with probability ``rate``; counted under ``fault`` when it happens."""
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
        if rate <= 0:
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
