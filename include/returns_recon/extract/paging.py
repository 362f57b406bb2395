"""Streaming pagers, one per paging style, each safe against rows that move while it pages.

- Reveni (ordered by ``updated_at``): keyset paging, each request asks again from the newest
  ``updated_at`` seen, so a row updated mid-scan moves ahead of the cursor instead of pushing
  another row out of sight.
- Cin7 Core (``Page``/``Limit``, no stable order): pages to the end, then checks that the
  distinct keys seen reach ``Total``; if rows moved between pages it scans again, yielding only
  keys not yet seen.
- Sitoo with an id range filter: keyset on the id (ascending); without one, ``start``/``num``
  (unsorted: those lists declare no ``sort``) with the same completeness check as Cin7.

Every pager yields each record once (duplicates in a page are dropped) and holds only keys,
never the records, of what it has already yielded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from returns_recon.apis.client import ApiClient

REVENI_PAGE = 500
CIN7_LIMIT = 1000
SITOO_NUM = 1000
MAX_PASSES = 4

KeyFn = Callable[[dict], str | None]


def field_key(name: str) -> KeyFn:
    return lambda row: None if row.get(name) is None else str(row[name])


class IncompleteListing(RuntimeError):
    """Rows kept moving: no complete pass after several attempts (retried by the task)."""


def _key(record: Any, field: str) -> str | None:
    if isinstance(record, dict):
        value = record.get(field)
        return None if value is None else str(value)
    return None


def reveni_returns(client: ApiClient, since: datetime | None, page_size: int = REVENI_PAGE) -> Iterator[dict]:
    cursor = since.isoformat().replace("+00:00", "Z") if since else None
    at_cursor: set[str] = set()  # ids already yielded whose updated_at equals the cursor
    page = 1
    while True:
        params: dict[str, Any] = {"page_size": page_size, "page": page}
        if cursor:
            params["updated_since"] = cursor
        body = client.get("returns", params, label="returns")
        rows = body.get("results") or []
        newest = cursor
        in_page: set[tuple[str, str | None]] = set()  # (id, updated_at) yielded from this page
        for row in rows:
            key, stamp = _key(row, "id"), _key(row, "updated_at")
            if stamp == cursor and key in at_cursor:
                continue
            if key is not None:
                if (key, stamp) in in_page:
                    continue  # the same version twice in one page
                in_page.add((key, stamp))
            if stamp is not None and (newest is None or stamp > newest):
                newest = stamp
            yield row
        if not body.get("next"):
            return
        # as compared above: both as text (_key), and a row without an id is never taken as seen
        stamped = [(row_id, _key(r, "updated_at")) for r in rows if (row_id := _key(r, "id")) is not None]
        if newest != cursor:
            cursor, page = newest, 1
            at_cursor = {key for key, stamp in stamped if stamp == newest}
        else:  # a whole page shares one timestamp: step through it by page number
            at_cursor |= {key for key, stamp in stamped if stamp == cursor}
            page += 1


def cin7_list(
    client: ApiClient,
    path: str,
    list_key: str,
    key: KeyFn,
    params: dict[str, Any] | None = None,
    limit: int = CIN7_LIMIT,
) -> Iterator[dict]:
    seen: set[str] = set()
    for _ in range(MAX_PASSES):
        page, total, keyless = 1, 0, 0
        while True:
            body = client.get(path, {**(params or {}), "Page": page, "Limit": limit}, label=path)
            rows = body.get(list_key) or []
            total = int(body.get("Total") or 0)
            for row in rows:
                row_key = key(row) if isinstance(row, dict) else None
                if row_key is None:
                    keyless += 1  # one of Total all the same
                    yield row  # malformed: the caller quarantines it
                    continue
                if row_key not in seen:
                    seen.add(row_key)
                    yield row
            if len(rows) < limit or page * limit >= total:
                break
            page += 1
        if len(seen) + keyless >= total:
            return
    raise IncompleteListing(f"cin7 {path}: {len(seen)} distinct rows of {total} after {MAX_PASSES} passes")


def sitoo_by_id(
    client: ApiClient,
    path: str,
    id_field: str,
    from_param: str,
    start_id: int,
    params: dict[str, Any] | None = None,
    num: int = SITOO_NUM,
) -> Iterator[dict]:
    next_id = start_id
    while True:
        query = {**(params or {}), from_param: next_id, "sort": id_field, "num": num, "start": 0}
        body = client.get(path, query, label=path)
        rows = body.get("items") or []
        highest = next_id - 1
        in_page: set[int] = set()  # ids yielded from this page: a row twice in one page is yielded once
        for row in rows:
            value = row.get(id_field) if isinstance(row, dict) else None
            if isinstance(value, int) and (value < next_id or value in in_page):
                continue  # duplicate of an earlier page, or of this one
            if isinstance(value, int):
                highest = max(highest, value)
                in_page.add(value)
            yield row
        if len(rows) < num or highest < next_id:
            return
        next_id = highest + 1


def sitoo_list(
    client: ApiClient, path: str, id_field: str, params: dict[str, Any] | None = None, num: int = SITOO_NUM
) -> Iterator[dict]:
    seen: set[str] = set()
    for _ in range(MAX_PASSES):
        start, total, keyless = 0, 0, 0
        while True:
            # no sort: these lists do not declare one (Sitoo OpenAPI); rows that move are caught below
            body = client.get(path, {**(params or {}), "start": start, "num": num}, label=path)
            rows = body.get("items") or []
            total = int(body.get("totalcount") or 0)
            for row in rows:
                key = _key(row, id_field)
                if key is None or key not in seen:
                    if key is not None:
                        seen.add(key)
                    else:
                        keyless += 1  # malformed (the caller quarantines it), one of totalcount all the same
                    yield row
            start += num
            if start >= total or not rows:
                break
        if len(seen) + keyless >= total:
            return
    raise IncompleteListing(f"sitoo {path}: {len(seen)} distinct rows of {total} after {MAX_PASSES} passes")
