"""The pagers of ``returns_recon.extract.paging`` against small in-memory servers: which requests they make
(page, offset or keyset), where they stop, and that every record is yielded once although rows move, repeat
or are broken. The servers answer the way the vendors document it (shared/reference): Cin7 Core ``Page``/
``Limit`` with ``Total`` (cin7_core_api.md §3), Sitoo ``start``/``num`` with ``{totalcount, items}`` and
``sort`` ascending on an id filter (sitoo_api.md §2), Reveni ``page``/``page_size``/``updated_since`` with
``next`` (reveni_api.md: an assumption of ours, as the simulator serves it)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from returns_recon.extract import paging

pytestmark = pytest.mark.unit


class Api:
    """What the pagers use of ``ApiClient``: ``get(path, params, label=...)`` returning the JSON body.
    Records every request; ``answer`` builds the body from the path and the query."""

    def __init__(self, answer: Callable[[dict[str, Any]], Any]) -> None:
        self.answer = answer
        self.requests: list[tuple[str, dict[str, Any], str | None]] = []

    def get(self, path: str, params: dict[str, Any] | None = None, *, label: str | None = None) -> Any:
        self.requests.append((path, dict(params or {}), label))
        return self.answer(dict(params or {}))

    @property
    def queries(self) -> list[dict[str, Any]]:
        return [query for _, query, _ in self.requests]


# --- Cin7 Core: Page/Limit, Total ---------------------------------------------------------------------


def cin7_server(rows: list[Any], *, list_key: str = "SaleList", total: int | None = None) -> Callable:
    """``rows`` is the listing (a list, or a callable giving the listing for the n-th request)."""
    calls = {"n": 0}

    def answer(query: dict[str, Any]) -> dict[str, Any]:
        calls["n"] += 1
        listing = rows(calls["n"]) if callable(rows) else rows
        page, limit = query["Page"], query["Limit"]
        served = listing[(page - 1) * limit : page * limit]
        return {"Total": len(listing) if total is None else total, "Page": page, list_key: served}

    return answer


def sales(*ids: str) -> list[dict[str, Any]]:
    return [{"SaleID": sale_id} for sale_id in ids]


def cin7(api: Api, limit: int, params: dict[str, Any] | None = None) -> list[Any]:
    return list(paging.cin7_list(api, "saleList", "SaleList", paging.field_key("SaleID"), params, limit=limit))


def ids(rows: list[Any], field: str = "SaleID") -> list[Any]:
    return [row.get(field) if isinstance(row, dict) else row for row in rows]


def test_cin7_reads_page_after_page_until_a_short_page() -> None:
    api = Api(cin7_server(sales("a", "b", "c", "d", "e")))
    rows = cin7(api, limit=2, params={"UpdatedSince": "2026-03-01T10:00:00"})
    assert ids(rows) == ["a", "b", "c", "d", "e"]
    assert api.requests == [
        ("saleList", {"UpdatedSince": "2026-03-01T10:00:00", "Page": page, "Limit": 2}, "saleList")
        for page in (1, 2, 3)
    ]


def test_cin7_stops_at_total_when_the_last_page_is_full() -> None:
    """``Page*Limit >= Total`` ends the listing: no request for an empty page after a full last one."""
    api = Api(cin7_server(sales("a", "b", "c", "d")))
    assert ids(cin7(api, limit=2)) == ["a", "b", "c", "d"]
    assert [query["Page"] for query in api.queries] == [1, 2]


def test_cin7_empty_listing_is_one_request() -> None:
    api = Api(cin7_server([]))
    assert cin7(api, limit=1000) == []
    assert api.queries == [{"Page": 1, "Limit": 1000}]


def test_cin7_drops_duplicates_within_and_across_pages() -> None:
    served = {1: sales("a", "a", "b"), 2: sales("c", "b")}  # a repeated in page 1, b again on page 2
    api = Api(lambda q: {"Total": 3, "SaleList": served.get(q["Page"], [])})
    assert ids(cin7(api, limit=2)) == ["a", "b", "c"]
    assert [query["Page"] for query in api.queries] == [1, 2]


def test_cin7_scans_again_for_a_row_that_moved_and_yields_only_what_it_missed() -> None:
    """No stable order: "c" moves from page 2 to page 1 between the requests of the first pass, so the
    pass sees 3 distinct of Total 4; a second pass finds "c" and yields nothing twice."""
    before, after = sales("a", "b", "c", "d"), sales("c", "a", "b", "d")
    api = Api(cin7_server(lambda n: before if n == 1 else after))
    rows = cin7(api, limit=2)
    assert ids(rows) == ["a", "b", "d", "c"]
    assert [query["Page"] for query in api.queries] == [1, 2, 1, 2]


def test_cin7_gives_up_after_max_passes_when_the_total_is_never_reached() -> None:
    api = Api(cin7_server(sales("a", "b"), total=5))  # Total says 5, only two rows are ever served
    with pytest.raises(paging.IncompleteListing, match=r"cin7 saleList: 2 distinct rows of 5 after 4 passes"):
        cin7(api, limit=2)
    # each pass: a full page 1, then the short (empty) page 2
    assert [query["Page"] for query in api.queries] == [1, 2] * paging.MAX_PASSES


def test_cin7_yields_a_row_without_its_key_for_quarantine_and_still_completes() -> None:
    """A row the key function cannot key (malformed, e.g. no SaleID) is yielded for the caller to quarantine;
    it is one of ``Total``, so the listing is complete without it being counted as missing."""
    broken = {"Status": "BROKEN"}
    api = Api(cin7_server([*sales("a", "b"), broken, "not an object"]))
    rows = cin7(api, limit=10)
    assert rows == [*sales("a", "b"), broken, "not an object"]
    assert len(api.requests) == 1


def test_cin7_total_missing_counts_as_zero() -> None:
    api = Api(lambda q: {"SaleList": sales("a") if q["Page"] == 1 else []})
    assert ids(cin7(api, limit=5)) == ["a"]
    assert len(api.requests) == 1


def test_field_key() -> None:
    key = paging.field_key("ID")
    assert key({"ID": 0}) == "0"
    assert key({"ID": "x"}) == "x"
    assert key({"ID": None}) is None
    assert key({}) is None


# --- Sitoo: start/num over {totalcount, items} -----------------------------------------------------------


def sitoo_server(rows: list[Any] | Callable[[int], list[Any]], total: int | None = None) -> Callable:
    calls = {"n": 0}

    def answer(query: dict[str, Any]) -> dict[str, Any]:
        calls["n"] += 1
        listing = rows(calls["n"]) if callable(rows) else rows
        start, num = query["start"], query["num"]
        return {"totalcount": len(listing) if total is None else total, "items": listing[start : start + num]}

    return answer


def stores(*numbers: int) -> list[dict[str, Any]]:
    return [{"storeid": n} for n in numbers]


def sitoo_list(api: Api, num: int, params: dict[str, Any] | None = None) -> list[Any]:
    return list(paging.sitoo_list(api, "sites/1/stores.json", "storeid", params, num=num))


def test_sitoo_list_advances_start_by_num_without_sorting() -> None:
    api = Api(sitoo_server(stores(1, 2, 3, 4, 5)))
    assert ids(sitoo_list(api, num=2, params={"includeinactive": "true"}), "storeid") == [1, 2, 3, 4, 5]
    assert api.requests == [
        ("sites/1/stores.json", {"includeinactive": "true", "start": start, "num": 2}, "sites/1/stores.json")
        for start in (0, 2, 4)
    ]


def test_sitoo_list_stops_at_totalcount_when_the_last_page_is_full() -> None:
    api = Api(sitoo_server(stores(1, 2, 3, 4)))
    assert ids(sitoo_list(api, num=2), "storeid") == [1, 2, 3, 4]
    assert [query["start"] for query in api.queries] == [0, 2]


def test_sitoo_list_empty_envelope_is_one_request() -> None:
    api = Api(lambda q: {"totalcount": 0, "items": []})
    assert sitoo_list(api, num=1000) == []
    assert api.queries == [{"start": 0, "num": 1000}]


def test_sitoo_list_scans_again_for_a_row_that_moved_and_drops_repeats() -> None:
    before, after = stores(1, 2, 3, 4), stores(3, 1, 2, 4)  # 3 moves to the front after the first request
    api = Api(sitoo_server(lambda n: before if n == 1 else after))
    assert ids(sitoo_list(api, num=2), "storeid") == [1, 2, 4, 3]
    assert [query["start"] for query in api.queries] == [0, 2, 0, 2]


def test_sitoo_list_an_empty_page_ends_the_pass_and_an_unreached_total_fails() -> None:
    api = Api(sitoo_server(stores(1, 2), total=3))
    with pytest.raises(paging.IncompleteListing, match=r"sitoo sites/1/stores.json: 2 distinct rows of 3"):
        sitoo_list(api, num=2)
    assert [query["start"] for query in api.queries] == [0, 2] * paging.MAX_PASSES


def test_sitoo_list_yields_a_row_without_its_id_and_still_completes() -> None:
    api = Api(sitoo_server([*stores(1, 2), {"name": "no id"}]))
    assert ids(sitoo_list(api, num=10), "storeid") == [1, 2, None]
    assert len(api.requests) == 1


# --- Sitoo: keyset on an ascending id -----------------------------------------------------------------


def orders_server(order_ids: list[int], overlap: int = 0) -> Callable:
    """Orders ascending from ``orderidfrom`` (less ``overlap``: a server that serves ids below it again)."""

    def answer(query: dict[str, Any]) -> dict[str, Any]:
        assert query["sort"] == "orderid"
        assert query["start"] == 0
        wanted = sorted(i for i in order_ids if i >= query["orderidfrom"] - overlap)
        return {"totalcount": len(wanted), "items": [{"orderid": i} for i in wanted[: query["num"]]]}

    return answer


def by_id(api: Api, start_id: int, num: int, params: dict[str, Any] | None = None) -> list[Any]:
    return list(paging.sitoo_by_id(api, "orders.json", "orderid", "orderidfrom", start_id, params, num=num))


def test_sitoo_by_id_asks_again_from_the_highest_id_seen() -> None:
    api = Api(orders_server([3, 5, 8, 9, 12]))
    assert ids(by_id(api, 4, num=2, params={"warehouseid": 7}), "orderid") == [5, 8, 9, 12]
    assert api.queries == [
        {"warehouseid": 7, "orderidfrom": start, "sort": "orderid", "num": 2, "start": 0} for start in (4, 9, 13)
    ]


def test_sitoo_by_id_a_full_last_page_costs_one_empty_request() -> None:
    api = Api(orders_server([1, 2, 3, 4]))
    assert ids(by_id(api, 1, num=2), "orderid") == [1, 2, 3, 4]
    assert [query["orderidfrom"] for query in api.queries] == [1, 3, 5]


def test_sitoo_by_id_skips_rows_below_the_cursor() -> None:
    """A server that serves the overlap again (ids below ``orderidfrom``): those rows were yielded before."""
    api = Api(orders_server([1, 2, 3], overlap=1))
    assert ids(by_id(api, 1, num=2), "orderid") == [1, 2, 3]
    assert [query["orderidfrom"] for query in api.queries] == [1, 3, 4]


def test_sitoo_by_id_stops_on_a_full_page_that_does_not_advance() -> None:
    """A full page whose ids cannot move the cursor (not integers) ends the listing instead of asking the
    same page forever; its rows are yielded for quarantine."""
    api = Api(lambda q: {"totalcount": 2, "items": [{"orderid": "x"}, {"orderid": None}]})
    assert ids(by_id(api, 10, num=2), "orderid") == ["x", None]
    assert len(api.requests) == 1


# --- Reveni: keyset on updated_at -------------------------------------------------------------------------


class ReveniServer:
    """Returns ordered by (updated_at, id), ``updated_since`` inclusive, ``next`` while more pages follow."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = {row["id"]: row for row in rows}
        self.after_request: Callable[[int], None] = lambda n: None
        self.n = 0

    def __call__(self, query: dict[str, Any]) -> dict[str, Any]:
        self.n += 1
        since, page, size = query.get("updated_since"), query["page"], query["page_size"]
        listing = sorted(
            (row for row in self.rows.values() if since is None or row["updated_at"] >= since),
            key=lambda row: (row["updated_at"], row["id"]),
        )
        served = [dict(row) for row in listing[(page - 1) * size : page * size]]
        more = page * size < len(listing)
        self.after_request(self.n)
        return {"count": len(listing), "next": f"?page={page + 1}" if more else None, "results": served}


def stamp(minute: int) -> str:
    return f"2026-03-01T10:{minute:02d}:00Z"


def returns(*pairs: tuple[str, int]) -> list[dict[str, Any]]:
    return [{"id": key, "updated_at": stamp(minute)} for key, minute in pairs]


def reveni(api: Api, since: datetime | None = None, page_size: int = 2) -> list[Any]:
    return list(paging.reveni_returns(api, since, page_size=page_size))


def test_reveni_first_read_has_no_since_and_one_page_ends_on_no_next() -> None:
    api = Api(ReveniServer(returns(("a", 1), ("b", 2))))
    assert ids(reveni(api, page_size=500), "id") == ["a", "b"]
    assert api.requests == [("returns", {"page_size": 500, "page": 1}, "returns")]


def test_reveni_since_is_sent_in_utc_with_z() -> None:
    api = Api(lambda q: {"results": [], "next": None})
    assert reveni(api, datetime(2026, 3, 1, 9, 59, 59, tzinfo=UTC)) == []
    assert api.queries == [{"page_size": 2, "page": 1, "updated_since": "2026-03-01T09:59:59Z"}]


def test_reveni_asks_again_from_the_newest_updated_at_and_skips_what_it_yielded_there() -> None:
    """After each page the cursor moves to the newest ``updated_at`` seen, page 1 again; the rows at the
    cursor, served again by the inclusive filter, are not yielded twice."""
    api = Api(ReveniServer(returns(("a", 1), ("b", 2), ("c", 2), ("d", 3), ("e", 4))))
    assert ids(reveni(api), "id") == ["a", "b", "c", "d", "e"]
    assert api.queries == [
        {"page_size": 2, "page": 1},
        {"page_size": 2, "page": 1, "updated_since": stamp(2)},  # b again (skipped), c
        {"page_size": 2, "page": 2, "updated_since": stamp(2)},  # d, e
    ]


def test_reveni_steps_through_a_timestamp_shared_by_more_than_a_page() -> None:
    api = Api(ReveniServer(returns(("a", 5), ("b", 5), ("c", 5), ("d", 5), ("e", 5), ("f", 6))))
    assert ids(reveni(api), "id") == ["a", "b", "c", "d", "e", "f"]
    assert [(q["page"], q.get("updated_since")) for q in api.queries] == [
        (1, None),
        (1, stamp(5)),
        (2, stamp(5)),
        (3, stamp(5)),
    ]


def test_reveni_a_row_updated_mid_scan_moves_ahead_without_hiding_another() -> None:
    """Return a is updated after the first page: offset paging would now skip c; the keyset read yields
    every row, and a again in its new version."""
    server = ReveniServer(returns(("a", 1), ("b", 2), ("c", 3), ("d", 4)))

    def update(n: int) -> None:
        if n == 1:
            server.rows["a"] = {"id": "a", "updated_at": stamp(9), "status": "received"}

    server.after_request = update
    rows = reveni(Api(server))
    assert ids(rows, "id") == ["a", "b", "c", "d", "a"]
    assert rows[-1]["status"] == "received"


def test_reveni_empty_first_page() -> None:
    api = Api(lambda q: {"count": 0, "next": None, "results": []})
    assert reveni(api) == []
    assert len(api.requests) == 1


def test_reveni_rows_without_a_timestamp_are_yielded_and_do_not_move_the_cursor() -> None:
    served = {
        (None, 1): {"next": "?page=2", "results": [{"id": "a", "updated_at": None}, "junk"]},
        (None, 2): {"next": None, "results": [{"id": "b", "updated_at": stamp(1)}]},
    }
    api = Api(lambda q: served[q.get("updated_since"), q["page"]])
    assert reveni(api) == [{"id": "a", "updated_at": None}, "junk", {"id": "b", "updated_at": stamp(1)}]


def test_reveni_numeric_ids_at_the_cursor_are_not_yielded_twice() -> None:
    """The rows at the cursor are remembered by the same text key they are compared with (an id served as a
    number included)."""
    api = Api(ReveniServer([{"id": n, "updated_at": stamp(m)} for n, m in ((1, 1), (2, 2), (3, 2), (4, 3))]))
    assert ids(reveni(api), "id") == [1, 2, 3, 4]


# --- a record twice in one page (the module's promise: each record yielded once) -----------------------------


def test_sitoo_by_id_a_row_twice_in_one_page_is_yielded_once() -> None:
    page = {"totalcount": 3, "items": [{"orderid": 5}, {"orderid": 5}, {"orderid": 6}]}
    api = Api(lambda q: page if q["orderidfrom"] <= 5 else {"totalcount": 0, "items": []})
    assert ids(by_id(api, 5, num=3), "orderid") == [5, 6]


def test_reveni_a_row_twice_in_one_page_is_yielded_once() -> None:
    row = {"id": "a", "updated_at": stamp(1)}
    api = Api(lambda q: {"results": [row, dict(row), {"id": "b", "updated_at": stamp(2)}], "next": None})
    assert ids(reveni(api, page_size=3), "id") == ["a", "b"]
