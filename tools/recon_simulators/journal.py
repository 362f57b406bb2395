"""A request/response journal at the HTTP layer of the simulators, for contract tests.

Off by default and cheap when off (one attribute test per request). When on, every request a
simulator answers is recorded, errors and injected faults included: service, method, endpoint
name, raw path, query parameters (a list of pairs, order and repeats kept), the JSON request body,
the response status and the JSON response body. Bounded: the oldest records are dropped past
``max_records``. One journal serves the three simulators (they run in one process).

Control: ``POST /_sim/journal {"enabled": true|false, "clear": true}``, ``GET /_sim/journal``.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

MAX_RECORDS = 200_000


def _json_or_text(raw: bytes, media_type: str | None) -> tuple[Any, str | None]:
    """(parsed JSON, None) or (None, the text) when the body is not JSON."""
    if not raw:
        return None, None if media_type is None or "json" in (media_type or "") else ""
    try:
        return json.loads(raw), None
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None, raw[:2000].decode("utf-8", "replace")


class Journal:
    def __init__(self, max_records: int = MAX_RECORDS) -> None:
        self.enabled = False
        self._records: deque[dict] = deque(maxlen=max_records)
        self._dropped = 0
        self._lock = threading.Lock()

    def configure(self, enabled: bool | None = None, clear: bool = False, max_records: int | None = None) -> dict:
        with self._lock:
            if max_records:
                self._records = deque(self._records, maxlen=int(max_records))
            if clear:
                self._records.clear()
                self._dropped = 0
            if enabled is not None:
                self.enabled = bool(enabled)
        return self.status()

    def status(self) -> dict:
        return {
            "enabled": self.enabled,
            "count": len(self._records),
            "dropped": self._dropped,
            "max_records": self._records.maxlen,
        }

    def records(self) -> list[dict]:
        with self._lock:
            return list(self._records)

    async def record(self, service: str, endpoint: str, request: Request, response: Response) -> None:
        raw_request = await request.body() if request.method in {"POST", "PUT", "PATCH", "DELETE"} else b""
        request_body, request_text = _json_or_text(raw_request, "application/json")
        raw_response = bytes(getattr(response, "body", b"") or b"")
        response_body, response_text = _json_or_text(raw_response, response.media_type)
        entry = {
            "service": service,
            "method": request.method,
            "endpoint": endpoint,
            "path": request.url.path,
            "raw_path": (request.scope.get("raw_path") or b"").decode("latin-1") or request.url.path,
            "query": [[k, v] for k, v in request.query_params.multi_items()],
            "request_body": request_body,
            "request_text": request_text,
            "status": response.status_code,
            "media_type": response.media_type,
            "response_body": response_body,
            "response_text": response_text,
            "fault": getattr(request.state, "sim_fault", None),
            "aborted": type(response).__name__ == "AbortedResponse",
        }
        with self._lock:
            if len(self._records) == self._records.maxlen:
                self._dropped += 1
            self._records.append(entry)


JOURNAL = Journal()
