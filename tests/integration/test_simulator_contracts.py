"""Contract tests: the simulators behave as the real APIs are documented to (shared/reference)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import requests

from recon_simulators.cin7 import ZERO_GUID
from recon_simulators.scenario import read_header_and_records

pytestmark = pytest.mark.integration


@pytest.fixture
def sims(simulators, small_scenario):
    simulators.load(small_scenario)
    return simulators


@pytest.fixture(scope="module")
def data(small_scenario) -> dict[str, list[dict]]:
    _, records = read_header_and_records(small_scenario)
    grouped: dict[str, list[dict]] = {}
    for kind, record in records:
        grouped.setdefault(kind, []).append(record)
    return grouped


# --- authentication ------------------------------------------------------------------------------


def test_each_service_refuses_bad_credentials_its_own_way(sims) -> None:
    reveni = requests.get(f"{sims.reveni}/returns", headers={"Authorization": "Bearer wrong"}, timeout=5)
    assert reveni.status_code == 401
    assert "detail" in reveni.json()
    cin7 = requests.get(
        f"{sims.cin7}/saleList", headers={"api-auth-accountid": "x", "api-auth-applicationkey": "y"}, timeout=5
    )
    assert cin7.status_code == 403
    assert cin7.json() == [{"ErrorCode": 403, "Exception": "Method authentication failed"}]
    sitoo = requests.get(f"{sims.sitoo}/orders.json", auth=("90001-1", "wrong"), timeout=5)
    assert sitoo.status_code == 401
    assert set(sitoo.json()) == {"statuscode", "errortext"}


# --- envelopes and paging ----------------------------------------------------------------------


def test_reveni_pages_to_the_end_without_loss_or_repeat(sims, data) -> None:
    session, seen, url = sims.reveni_session(), [], f"{sims.reveni}/returns?page_size=7"
    while url:
        body = session.get(url, timeout=5).json()
        assert set(body) == {"count", "next", "previous", "results"}
        seen += [r["id"] for r in body["results"]]
        url = body["next"]
    assert sorted(seen) == sorted(r["id"] for r in data["reveni.returns"])
    assert session.get(f"{sims.reveni}/returns?page_size=501", timeout=5).status_code == 400


def test_reveni_updated_since_filters(sims, data) -> None:
    stamps = sorted(r["updated_at"] for r in data["reveni.returns"])
    middle = stamps[len(stamps) // 2]
    body = (
        sims.reveni_session().get(f"{sims.reveni}/returns", params={"updated_since": middle, "page_size": 500}).json()
    )
    assert body["count"] == sum(1 for s in stamps if s >= middle)
    assert all(r["updated_at"] >= middle for r in body["results"])


def _cin7_all(session, url: str, key: str, limit: int, **params) -> tuple[list[dict], int]:
    rows, page = [], 1
    while True:
        body = session.get(url, params={**params, "Page": page, "Limit": limit}, timeout=10).json()
        rows += body[key]
        if len(body[key]) < limit:
            return rows, body["Total"]
        page += 1


def test_cin7_sale_list_pages_completely_in_a_meaningless_order(sims, data) -> None:
    rows, total = _cin7_all(sims.cin7_session(), f"{sims.cin7}/saleList", "SaleList", 13)
    ids = [r["SaleID"] for r in rows]
    assert len(ids) == len(set(ids)) == total == len(data["cin7.sales"])
    updated = [r["Updated"] for r in rows]
    assert updated != sorted(updated)
    assert updated != sorted(updated, reverse=True)
    fractions = {len(u.split(".")[1]) if "." in u else 0 for u in updated}
    assert len(fractions) >= 3, fractions  # varying fractional precision, as the real service
    assert sims.cin7_session().get(f"{sims.cin7}/saleList?Limit=1001", timeout=5).status_code == 400


def test_cin7_paths_and_parameters_are_case_insensitive(sims) -> None:
    base = sims.cin7.replace("/ExternalApi/v2", "/externalapi/v2")
    body = sims.cin7_session().get(f"{base}/SALELIST", params={"page": 1, "limit": 3}, timeout=5).json()
    assert len(body["SaleList"]) == 3


def test_cin7_unknown_path_is_html_with_200(sims) -> None:
    response = sims.cin7_session().get(f"{sims.cin7}/saleLists", timeout=5)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")


def test_cin7_product_sku_filter_is_fuzzy(sims, data) -> None:
    sku = data["cin7.products"][0]["SKU"]
    body = sims.cin7_session().get(f"{sims.cin7}/product", params={"Sku": sku[:6].lower(), "Limit": 1000}).json()
    assert body["Total"] > 1
    assert all(sku[:6].lower() in p["SKU"].lower() for p in body["Products"])


def test_sitoo_envelope_paging_and_types(sims, data) -> None:
    session, rows, start = sims.sitoo_session(), [], 0
    while True:
        body = session.get(f"{sims.sitoo}/orders.json", params={"start": start, "num": 9, "sort": "orderid"}).json()
        assert set(body) == {"totalcount", "items"}
        rows += body["items"]
        start += 9
        if start >= body["totalcount"]:
            break
    assert [r["orderid"] for r in rows] == sorted(o["orderid"] for o in data["sitoo.orders"])
    sample = rows[0]
    assert re.fullmatch(r"-?\d+\.\d{2}", sample["moneytotal_gross_all"])
    assert re.fullmatch(r"-?\d+\.\d{3}", sample["orderitems"][0]["decimalquantitytotal"])
    assert isinstance(sample["orderdate"], int)
    items = session.get(f"{sims.sitoo_site}/warehouses/1/warehouseitems.json", params={"num": 5}).json()["items"]
    assert re.fullmatch(r"\d+\.\d{3}", items[0]["decimaltotal"])


def test_sitoo_default_sort_is_newest_first(sims) -> None:
    body = sims.sitoo_session().get(f"{sims.sitoo}/orders.json", params={"num": 5}).json()
    ids = [o["orderid"] for o in body["items"]]
    assert ids == sorted(ids, reverse=True)


# --- rate limits ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("form", "status", "pattern"),
    [
        ("429", 429, r"60 calls per minute API limit"),
        ("503", 503, r"60 calls per minute API limit"),
        ("400", 400, r"calls per 60 seconds API limit"),
    ],
)
def test_cin7_throttle_forms(sims, form: str, status: int, pattern: str) -> None:
    sims.faults("cin7", rate_limit_per_minute=5, throttle_form=form)
    sims.counters(reset=True)
    session = sims.cin7_session()
    codes = [session.get(f"{sims.cin7}/ref/location", timeout=5) for _ in range(7)]
    assert [r.status_code for r in codes[:5]] == [200] * 5
    throttled = codes[5]
    assert throttled.status_code == status
    assert re.search(pattern, throttled.json()[0]["Exception"])
    assert "Retry-After" not in throttled.headers
    assert sims.counters()["cin7"]["total_throttled"] == 2


def test_sitoo_throttle_has_retry_after(sims) -> None:
    sims.faults("sitoo", rate_limit_per_minute=2)
    session = sims.sitoo_session()
    codes = [session.get(f"{sims.sitoo_site}/stores.json", timeout=5) for _ in range(3)]
    assert codes[2].status_code == 429
    assert codes[2].headers["Retry-After"].isdigit()
    assert codes[2].json()["statuscode"] == 429


def test_rate_limit_window_follows_the_simulator_clock(sims) -> None:
    sims.faults("cin7", rate_limit_per_minute=2)
    session = sims.cin7_session()
    assert [session.get(f"{sims.cin7}/ref/location").status_code for _ in range(3)] == [200, 200, 429]
    sims.advance(seconds=61)
    assert session.get(f"{sims.cin7}/ref/location").status_code == 200


# --- Cin7 credit notes and stock -------------------------------------------------------------------


def _sale_without_credit_note(data, sale_type: str) -> dict:
    return next(
        s
        for s in data["cin7.sales"]
        if s["Type"] == sale_type and not s["CreditNotes"] and s["Invoices"] and s["CustomerReference"].isdigit()
    )


def _credit_note_body(sale: dict, task_id: str = ZERO_GUID, status: str = "DRAFT", qty: int = 1) -> dict:
    line = sale["Invoices"][0]["Lines"][0]
    total = round(line["Price"] * qty, 2)
    return {
        "SaleID": sale["ID"],
        "TaskID": task_id,
        "CombineAdditionalCharges": False,
        "CreditNoteInvoiceNumber": sale["Invoices"][0]["InvoiceNumber"],
        "Memo": "reveni:test",
        "Status": status,
        "CreditNoteDate": "2026-11-20T00:00:00",
        "Lines": [
            {
                "ProductID": line["ProductID"],
                "SKU": line["SKU"],
                "Quantity": qty,
                "Price": line["Price"],
                "Discount": 0,
                "Tax": round(total * 0.2, 2),
                "Total": total,
                "TaxRule": line["TaxRule"],
            }
        ],
    }


def test_simple_sale_allows_one_credit_note(sims, data) -> None:
    sale, session = _sale_without_credit_note(data, "Simple Sale"), sims.cin7_session()
    first = session.post(f"{sims.cin7}/sale/creditnote", json=_credit_note_body(sale), timeout=5)
    assert first.status_code == 200, first.text
    assert first.json()["CreditNotes"][0]["TaskID"] == sale["ID"]
    second = session.post(f"{sims.cin7}/sale/creditnote", json=_credit_note_body(sale), timeout=5)
    assert second.status_code == 400
    assert "only one credit note" in second.json()[0]["Exception"]


def test_advanced_sale_credit_notes_post_replaces_lines_and_authorised_is_final(sims, data) -> None:
    sale, session = _sale_without_credit_note(data, "Advanced Sale"), sims.cin7_session()
    url = f"{sims.cin7}/sale/creditnote"

    def post(body: dict) -> requests.Response:
        return session.post(url, json=body)

    one = post(_credit_note_body(sale)).json()["CreditNotes"][0]
    two = post(_credit_note_body(sale)).json()["CreditNotes"][0]
    assert one["TaskID"] != two["TaskID"]
    assert ZERO_GUID not in (one["TaskID"], two["TaskID"])
    replaced = post(_credit_note_body(sale, one["TaskID"], qty=2)).json()["CreditNotes"][0]
    assert [line["Quantity"] for line in replaced["Lines"]] == [2]
    # a field outside the POST model (apib L24578) is not read
    authorised = post(
        {**_credit_note_body(sale, one["TaskID"], status="AUTHORISED"), "RestockStatus": "DRAFT", "Unknown": 1}
    ).json()["CreditNotes"][0]
    assert authorised["Status"] == "AUTHORISED"
    assert "Unknown" not in authorised
    # apib L24689: a POST is refused unless the note is DRAFT or NOT AVAILABLE, whatever it carries
    for body in (
        _credit_note_body(sale, one["TaskID"], status="AUTHORISED"),
        {
            **_credit_note_body(sale, one["TaskID"], status="AUTHORISED"),
            "Lines": authorised["Lines"],
            "Restock": [{"SKU": authorised["Lines"][0]["SKU"], "Location": "Main Warehouse", "Quantity": 1}],
        },
    ):
        again = post(body)
        assert again.status_code == 400
        assert "cannot be changed" in again.json()[0]["Exception"]
    notes = session.get(url, params={"SaleID": sale["ID"]}).json()["CreditNotes"]
    assert {n["TaskID"] for n in notes} == {one["TaskID"], two["TaskID"]}
    assert all("RestockStatus" not in n for n in notes)


def test_credit_note_needs_an_authorised_or_paid_invoice(sims, data) -> None:
    sale = json.loads(json.dumps(_sale_without_credit_note(data, "Advanced Sale")))
    sale["Invoices"][0]["Status"] = "DRAFT"
    sims.upsert("cin7.sales", sale)
    response = sims.cin7_session().post(f"{sims.cin7}/sale/creditnote", json=_credit_note_body(sale))
    assert response.status_code == 400
    assert "AUTHORISED or PAID" in response.json()[0]["Exception"]


def _on_hand(sims, sku: str, location: str) -> float:
    rows = (
        sims.cin7_session()
        .get(f"{sims.cin7}/ref/productavailability", params={"Sku": sku, "Location": location, "Limit": 1000})
        .json()["ProductAvailabilityList"]
    )
    return sum(r["OnHand"] for r in rows if r["SKU"] == sku)


def test_restock_and_transfer_move_stock(sims, data) -> None:
    sale, session = _sale_without_credit_note(data, "Advanced Sale"), sims.cin7_session()
    line = sale["Invoices"][0]["Lines"][0]
    locations = {loc["Name"]: loc["ID"] for loc in data["cin7.locations"]}
    hold, sellable = "Main Warehouse Returns Hold", "Main Warehouse"
    before_hold, before_sellable = _on_hand(sims, line["SKU"], hold), _on_hand(sims, line["SKU"], sellable)
    body = _credit_note_body(sale, status="AUTHORISED")
    body["Restock"] = [
        {
            "ProductID": line["ProductID"],
            "SKU": line["SKU"],
            "LocationID": locations[sellable],
            "Quantity": 1,
            "RestockLocationID": locations[hold],
        }
    ]
    posted = session.post(f"{sims.cin7}/sale/creditnote", json=body).json()
    assert set(posted) == {"SaleID", "CreditNotes"}  # apib L24750
    note = posted["CreditNotes"][0]
    assert "RestockStatus" not in note
    listed = _cin7_all(session, f"{sims.cin7}/saleCreditNoteList", "SaleList", 1000)[0]
    assert [r["RestockStatus"] for r in listed if r["CreditNoteNumber"] == note["CreditNoteNumber"]] == ["AUTHORISED"]
    assert _on_hand(sims, line["SKU"], hold) == before_hold + 1
    transfer = {
        "From": locations[hold],
        "To": locations[sellable],
        "Status": "COMPLETED",
        "Reference": "reveni:t:1",
        "CompletionDate": "2026-11-20T00:00:00",
        "Lines": [{"ProductID": line["ProductID"], "SKU": line["SKU"], "TransferQuantity": 1}],
    }
    created = session.post(f"{sims.cin7}/stockTransfer", json=transfer)
    assert created.status_code == 200, created.text
    assert _on_hand(sims, line["SKU"], hold) == before_hold
    assert _on_hand(sims, line["SKU"], sellable) == before_sellable + 1
    # Search reads FromLocation, ToLocation, Status, CustomerReference and Number, not Reference (apib L26299)
    number = created.json()["Number"]
    by_number = session.get(f"{sims.cin7}/stockTransferList", params={"Search": number}).json()["StockTransferList"]
    assert [t["TaskID"] for t in by_number] == [created.json()["TaskID"]]
    assert session.get(f"{sims.cin7}/stockTransferList", params={"Search": "reveni:t:1"}).json()["Total"] == 0
    undated = {k: v for k, v in transfer.items() if k != "CompletionDate"}  # required (apib L26409)
    assert "Missing CompletionDate" in session.post(f"{sims.cin7}/stockTransfer", json=undated).json()[0]["Exception"]
    too_many = {**transfer, "Lines": [{**transfer["Lines"][0], "TransferQuantity": 10_000}]}
    refused = session.post(f"{sims.cin7}/stockTransfer", json=too_many)
    assert refused.status_code == 400
    assert "Not enough" in refused.json()[0]["Exception"]


# --- Sitoo writes --------------------------------------------------------------------------------------


def test_sitoo_transactions_batch_with_per_element_status(sims, data) -> None:
    sku, session = data["sitoo.products"][0]["sku"], sims.sitoo_session()
    url = f"{sims.sitoo_site}/warehousetransactions.json"
    before = session.get(f"{sims.sitoo_site}/warehouses/2/warehouseitems.json", params={"sku": sku}).json()
    level = float(before["items"][0]["decimaltotal"]) if before["items"] else 0.0
    batch = [
        {
            "warehouseid": 2,
            "transactiontype": 10,
            "externalid": "reveni:x:1",
            "items": [{"sku": sku, "decimalquantity": "2.000"}],
        },
        {"warehouseid": 90, "transactiontype": 10, "items": [{"sku": sku, "decimalquantity": "1.000"}]},
        {"warehouseid": 2, "transactiontype": 40, "items": [{"sku": sku, "decimalquantity": "1.000"}]},
    ]
    result = session.post(url, json=batch).json()
    assert [r["statuscode"] for r in result] == [200, 400, 400]
    assert "virtual" in result[1]["return"]
    assert "read only" in result[2]["return"]
    after = session.get(f"{sims.sitoo_site}/warehouses/2/warehouseitems.json", params={"sku": sku}).json()
    assert float(after["items"][0]["decimaltotal"]) == level + 2
    too_big = session.post(url, json=[batch[0]] * 1001)
    assert too_big.status_code == 400


def test_sitoo_refund_order_is_found_by_externalid_once(sims, data) -> None:
    session = sims.sitoo_session()
    order = {
        "ordertypeid": 10,
        "externalid": "ret-contract-1",
        "currencycode": "EUR",
        "payments": [],
        "orderitems": [{"productname": "Shirt", "sku": "X", "quantity": -1}],
    }
    created = session.post(f"{sims.sitoo_site}/orders.json", json=order)
    assert isinstance(created.json(), int)
    found = session.get(f"{sims.sitoo}/orders.json", params={"externalid": "ret-contract-1"}).json()
    assert found["totalcount"] == 1
    assert found["items"][0]["orderitems"][0]["quantity"] == -1
    assert session.post(f"{sims.sitoo_site}/orders.json", json=order).status_code == 400


# --- fault injection --------------------------------------------------------------------------------


def test_5xx_switches_on_and_off(sims) -> None:
    session = sims.reveni_session()
    sims.faults("reveni", error_rate_5xx=1.0)
    assert session.get(f"{sims.reveni}/returns").status_code in (500, 503)
    sims.faults("reveni")
    assert session.get(f"{sims.reveni}/returns").status_code == 200


def test_html_page_with_200(sims) -> None:
    sims.faults("cin7", html_rate=1.0)
    response = sims.cin7_session().get(f"{sims.cin7}/saleList")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")


def test_connection_reset(sims) -> None:
    sims.faults("sitoo", reset_rate=1.0)
    with pytest.raises((requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError)):
        sims.sitoo_session().get(f"{sims.sitoo}/orders.json", timeout=5)


def test_timeout(sims) -> None:
    sims.faults("reveni", timeout_rate=1.0, timeout_seconds=2)
    with pytest.raises(requests.exceptions.ReadTimeout):
        sims.reveni_session().get(f"{sims.reveni}/returns", timeout=0.5)


def test_duplicate_rows(sims) -> None:
    sims.faults("reveni", duplicate_rate=1.0)
    ids = [r["id"] for r in sims.reveni_session().get(f"{sims.reveni}/returns?page_size=20").json()["results"]]
    assert len(ids) == 21
    assert len(set(ids)) == 20


def test_rows_shift_between_pages(sims) -> None:
    sims.faults("cin7", shift_rate=1.0, seed=3)
    rows, total = _cin7_all(sims.cin7_session(), f"{sims.cin7}/saleList", "SaleList", 10)
    ids = [r["SaleID"] for r in rows]
    assert len(set(ids)) != total or len(ids) != len(set(ids))


def test_malformed_records_are_stable(sims) -> None:
    sims.faults("reveni", malformed_rate=0.5, seed=9)
    session = sims.reveni_session()
    first = session.get(f"{sims.reveni}/returns?page_size=100").json()["results"]
    second = session.get(f"{sims.reveni}/returns?page_size=100").json()["results"]
    broken = [r["id"] for r in first if r["amount"] == "12,5O"]
    assert 0 < len(broken) < len(first)
    assert broken == [r["id"] for r in second if r["amount"] == "12,5O"]


def test_write_fault_applies_the_write_first(sims, data) -> None:
    sale = _sale_without_credit_note(data, "Advanced Sale")
    sims.faults("cin7", error_rate_5xx=1.0)
    session = sims.cin7_session()
    assert session.post(f"{sims.cin7}/sale/creditnote", json=_credit_note_body(sale)).status_code >= 500
    sims.faults("cin7")
    notes = session.get(f"{sims.cin7}/sale/creditnote", params={"SaleID": sale["ID"]}).json()["CreditNotes"]
    assert [n["Memo"] for n in notes] == ["reveni:test"]


def test_counters_per_endpoint(sims) -> None:
    sims.counters(reset=True)
    session = sims.cin7_session()
    session.get(f"{sims.cin7}/saleList")
    session.get(f"{sims.cin7}/saleList")
    session.get(f"{sims.cin7}/product")
    calls = sims.counters()["cin7"]["calls"]
    assert calls == {"saleList": 2, "product": 1}


# --- the world moves -------------------------------------------------------------------------------


def test_advancing_the_clock_applies_due_events(sims, small_scenario: Path) -> None:
    pending = json.loads(small_scenario.read_text())["events"]
    assert pending, "the small scenario schedules some events"
    result = sims.advance(hours=13)
    assert result["events_applied"] == len(pending)
    event = next(e for e in pending if e["k"] == "reveni.returns")
    body = sims.reveni_session().get(f"{sims.reveni}/returns/{event['v']['id']}").json()
    assert body["status"] == "received"
    assert body["updated_at"] == event["at"]


# --- Sitoo: documented parameters ------------------------------------------------------------------------


def test_sitoo_lists_inactive_products_only_when_asked(sims, data) -> None:
    inactive = {p["productid"] for p in data["sitoo.products"] if p.get("active") is False}
    assert inactive, "the generator plants inactive products"
    url, session = f"{sims.sitoo_site}/products.json", sims.sitoo_session()
    default = {p["productid"] for p in session.get(url, params={"num": 1000}).json()["items"]}
    listed = session.get(url, params={"num": 1000, "includeinactive": "true"}).json()["items"]
    assert not default & inactive
    assert inactive <= {p["productid"] for p in listed}
    assert all("active" not in p for p in listed)  # product-read.yaml has no such field


def test_sitoo_undeclared_query_parameters_follow_the_setting(sims) -> None:
    url, session = f"{sims.sitoo_site}/stores.json", sims.sitoo_session()
    assert session.get(url, params={"sort": "storeid"}).status_code == 200  # ignored by default
    requests.post(f"{sims.admin}/behaviour/sitoo", json={"undeclared_query_parameters": "reject"}, timeout=5)
    try:
        refused = session.get(url, params={"sort": "storeid"})
        assert refused.status_code == 400
        assert set(refused.json()) == {"statuscode", "errortext"}
        assert session.get(url, params={"num": 5}).status_code == 200
    finally:
        requests.post(f"{sims.admin}/behaviour/sitoo", json={"undeclared_query_parameters": "ignore"}, timeout=5)
