"""The simulators' clock: follows real time from an anchor, and can be set or advanced."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta


class SimClock:
    def __init__(self, start: datetime | None = None) -> None:
        self._lock = threading.Lock()
        self._anchor = start or datetime.now(UTC)
        self._real_anchor = time.monotonic()
        self._frozen = False
        self._speed = 1.0

    def now(self) -> datetime:
        with self._lock:
            if self._frozen:
                return self._anchor
            return self._anchor + timedelta(seconds=(time.monotonic() - self._real_anchor) * self._speed)

    def set(self, when: datetime, *, frozen: bool | None = None, speed: float | None = None) -> None:
        """Jump to ``when``; optionally freeze, or run ``speed`` times faster than real time."""
        with self._lock:
            self._anchor = when
            self._real_anchor = time.monotonic()
            if frozen is not None:
                self._frozen = frozen
            if speed is not None:
                self._speed = speed

    def advance(self, delta: timedelta) -> datetime:
        current = self.now()
        self.set(current + delta)
        return current + delta

    @property
    def frozen(self) -> bool:
        return self._frozen

    @property
    def speed(self) -> float:
        return self._speed
