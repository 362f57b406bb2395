"""Reveni merchant API simulator (``/merchants/v0/stores/{store_id}/``, Bearer key).

Only authentication and ``GET returns/{id}`` are publicly documented; listing, paging and the
error body follow the recommended model in ``reveni_api.md`` and are assumptions (docs/simulators.md):
``GET returns?updated_since=&page=&page_size=`` answers ``{count, next, previous, results}``
ordered by ``updated_at`` then ``id``; errors are ``{"detail": ...}``. Webhook subscriptions
(``POST/DELETE webhooks``, [R-U]) and the signed deliveries of every change: ``webhooks.py``.
"""

from __future__ import annotations

import bisect
import copy
from datetime import datetime
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from recon_simulators.http import ServiceApp, read_json
from recon_simulators.timefmt import iso_z, parse_ts
from recon_simulators.webhooks import reveni_webhook_fields

if TYPE_CHECKING:
    from recon_simulators.webhooks import WebhookHub

MAX_PAGE_SIZE = 500


def _listed_at(record: dict) -> str:
    """Where a return sits in the list's ``updated_at`` order. A return without ``updated_at`` (the field is not
    public, reveni_api.md §3 [R-I]; a scenario may leave it out: generator.py ``no_created_at``) sorts first: a read
    without ``updated_since`` lists it, one with it does not (the list's filter is our assumption too)."""
    return str(record.get("updated_at") or "")


class ReveniState:
    def __init__(self, store_id: str, hub: WebhookHub | None = None) -> None:
        self.store_id = store_id
        self.returns: dict[str, dict] = {}
        self._by_updated: list[tuple[str, str]] = []
        self.hub = hub

    def upsert(self, record: dict, *, touched_at: datetime | None = None) -> dict:
        record = copy.deepcopy(record)
        if touched_at is not None:
            record["updated_at"] = iso_z(touched_at)
        # a record without an id (a broken one a scenario may plant) is kept under a key of its own
        record_id = str(record.get("id") or f"~no-id-{len(self.returns)}")
        old = self.returns.get(record_id)
        if old is not None:
            key = (_listed_at(old), record_id)
            index = bisect.bisect_left(self._by_updated, key)
            if index < len(self._by_updated) and self._by_updated[index] == key:
                del self._by_updated[index]
        self.returns[record_id] = record
        bisect.insort(self._by_updated, (_listed_at(record), record_id))
        if touched_at is not None and self.hub is not None:  # a change, not a scenario's initial state
            # reveni_api.md L121: return.created for a new return, return.updated for any later change
            self.hub.reveni_return_changed(record, created=old is None, at=touched_at)
        return record

    def updated_since(self, since: datetime | None) -> tuple[int, int]:
        """The [start, end) slice of the updated index at or after ``since``."""
        start = 0 if since is None else bisect.bisect_left(self._by_updated, (iso_z(since), ""))
        return start, len(self._by_updated)

    def at(self, position: int) -> dict:
        return self.returns[self._by_updated[position][1]]


class ReveniApp(ServiceApp):
    name = "reveni"

    def __init__(self, world, faults, api_key: str) -> None:
        self.api_key = api_key
        super().__init__(world, faults)

    @property
    def state(self) -> ReveniState:
        return self.world.reveni

    def register(self) -> None:
        base = "/merchants/v0/stores/{store_id}"
        self.route(f"{base}/returns", "returns", self.list_returns, ["GET"])
        self.route(f"{base}/returns/{{return_id}}", "return", self.get_return, ["GET"])
        self.route(f"{base}/returns/{{return_id}}/partial_validate", "partial_validate", self.validate, ["POST"])
        # reveni_api.md L64-L65 [R-U] R5: webhooks are created "using the API" ([R-C] R3)
        self.route(f"{base}/webhooks", "webhooks", self.create_webhook, ["POST"])
        self.route(f"{base}/webhooks/{{webhook_id}}", "webhook", self.delete_webhook, ["DELETE"])

    def authenticate(self, request: Request) -> Response | None:
        header = request.headers.get("authorization", "")
        if header != f"Bearer {self.api_key}":
            return self.error(401, "Invalid API key.")
        if request.path_params.get("store_id") != self.state.store_id:
            return self.error(404, "Store not found.")
        return None

    def budget_key(self, request: Request) -> str:
        return request.headers.get("authorization", "")

    def error(self, status: int, message: str) -> Response:
        return JSONResponse({"detail": message}, status_code=status)

    def throttled(self) -> Response:
        return JSONResponse({"detail": "Request was throttled."}, status_code=429, headers={"Retry-After": "1"})

    def _serialise(self, record: dict) -> dict:
        if self.faults.is_malformed(f"reveni:{record.get('id')}"):
            broken = copy.deepcopy(record)
            broken["amount"] = "12,5O"
            return broken
        return record

    def list_returns(self, request: Request) -> Response:
        if not self.world.behaviour.reveni.list_endpoint:  # vendor silent: an account may have no list endpoint
            return self.error(404, "Not found.")
        params = request.query_params
        try:
            since = parse_ts(params.get("updated_since"))
            page = int(params.get("page", "1"))
            page_size = int(params.get("page_size", "100"))
        except ValueError:
            return self.error(400, "Invalid query parameter.")
        if page < 1 or not 1 <= page_size <= MAX_PAGE_SIZE:
            return self.error(400, f"page must be >= 1 and page_size between 1 and {MAX_PAGE_SIZE}.")
        start, end = self.state.updated_since(since)
        count = end - start
        offset = start + (page - 1) * page_size
        if self.faults.chance(self.faults.config.shift_rate, "shift") and offset > start:
            offset -= 1  # a concurrent update moved a row: this page starts one row early
        rows = [self._serialise(self.state.at(i)) for i in range(offset, min(offset + page_size, end))]
        if rows and self.faults.chance(self.faults.config.duplicate_rate, "duplicate"):
            rows.insert(self.faults.pick(len(rows)), rows[self.faults.pick(len(rows))])
        base = str(request.url.replace(query=""))

        def link(number: int) -> str:
            query: dict[str, int | str] = {"page": number, "page_size": page_size}
            if params.get("updated_since"):
                query["updated_since"] = params["updated_since"]
            return f"{base}?{urlencode(query)}"

        has_next = (page - 1) * page_size + page_size < count
        return JSONResponse(
            {
                "count": count,
                "next": link(page + 1) if has_next else None,
                "previous": link(page - 1) if page > 1 else None,
                "results": rows,
            }
        )

    def get_return(self, request: Request) -> Response:
        record = self.state.returns.get(request.path_params["return_id"])
        if record is None:
            return self.error(404, "Not found.")
        return JSONResponse(self._serialise(record))

    async def validate(self, request: Request) -> Response:
        record = self.state.returns.get(request.path_params["return_id"])
        if record is None:
            return self.error(404, "Not found.")
        body = await read_json(request)
        if not isinstance(body, dict) or not isinstance(body.get("items"), list):
            return self.error(400, "items is required.")
        updated = copy.deepcopy(record)
        by_id = {item["item_id"]: item for item in updated["return_items"]}
        for entry in body["items"]:
            item = by_id.get(entry.get("item_id"))
            if item is None or entry.get("status") not in {"accepted", "rejected"}:
                return self.error(400, f"Invalid item {entry.get('item_id')!r}.")
            item["validation_status"] = entry["status"]
            item["restock"] = entry.get("restock", entry["status"] == "accepted")
            item["validated_at"] = iso_z(self.world.clock.now())
        return JSONResponse(self.state.upsert(updated, touched_at=self.world.clock.now()))

    async def create_webhook(self, request: Request) -> Response:
        """``{"event_types": [...], "url"}`` → ``{id, url, event_types}`` (reveni_api.md L64 [R-U]); 201, one of
        the two success codes R5 accepts (L67); the refusal of a bad body is vendor silent (400 ``detail``)."""
        fields = reveni_webhook_fields(await read_json(request))
        if isinstance(fields, str):
            return self.error(400, fields)
        return JSONResponse(self.world.webhooks.subscribe("reveni", **fields).reveni_view(), status_code=201)

    def delete_webhook(self, request: Request) -> Response:
        """reveni_api.md L65 [R-U]; the answer is vendor silent: 200 with no body (R5 accepts 200, L67)."""
        if not self.world.webhooks.delete("reveni", request.path_params["webhook_id"]):
            return self.error(404, "Not found.")
        return Response(b"", status_code=200, media_type="application/json")
