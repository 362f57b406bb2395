"""The simulators and the pipeline against the API contract (contracts/*.yaml), at the HTTP layer.

(a) every GET endpoint of the contract, requested from the simulators over a generated scenario;
(b) a full hourly and a daily cycle of the pipeline, postings included, with the simulators'
journal on: every captured request and response; (c) the check catches an undocumented field in a
real captured response. Failures list every distinct violation with an example."""

from __future__ import annotations

import copy
import json

import pytest

from tests.fixtures.contract import check, check_all, check_exchange, report
from tests.fixtures.pipeline import cycle
from tests.fixtures.scenarios import scenario
from tests.fixtures.simulators import CREDS

pytestmark = pytest.mark.integration


def _journal(simulators) -> list[dict]:
    records = simulators.journal_records()
    assert records, "the journal captured nothing"
    return records


def _without_planted_invalid(records: list[dict], path) -> list[dict]:
    """Drop the Reveni returns the scenario plants as broken on purpose (expected ``invalid_record``
    exceptions, which the pipeline must quarantine): they test the pipeline, not the contract."""
    planted = {
        e["return_id"] for e in json.loads(path.read_text())["expected_exceptions"] if e["type"] == "invalid_record"
    }
    kept = []
    for record in records:
        if record["service"] == "reveni":
            if any(record["path"].rstrip("/").endswith(f"/{rid}") for rid in planted):
                continue
            body = record.get("response_body")
            if isinstance(body, dict) and isinstance(body.get("results"), list):
                body = {
                    **body,
                    "results": [r for r in body["results"] if not isinstance(r, dict) or r.get("id") not in planted],
                }
                record = {**record, "response_body": body}
        kept.append(record)
    return kept


def _every_get(simulators, document: dict) -> None:
    """One request to every GET endpoint of the three contracts (valid parameters only)."""
    cin7, sitoo, reveni = simulators.cin7_session(), simulators.sitoo_session(), simulators.reveni_session()
    sale = document["cin7"]["sales"][0]
    with_notes = next((s for s in document["cin7"]["sales"] if s.get("CreditNotes")), sale)
    for path in (
        "saleList",
        "saleCreditNoteList",
        "product",
        "ref/location",
        "ref/productavailability",
        "stockTransferList",
    ):
        cin7.get(f"{simulators.cin7}/{path}", params={"Page": 1, "Limit": 100}, timeout=60)
    cin7.get(f"{simulators.cin7}/saleList", params={"UpdatedSince": "2020-01-01T00:00:00", "Limit": 50}, timeout=60)
    cin7.get(f"{simulators.cin7}/sale", params={"ID": with_notes["ID"]}, timeout=60)
    cin7.get(f"{simulators.cin7}/sale/creditnote", params={"SaleID": with_notes["ID"]}, timeout=60)
    transfers = cin7.get(f"{simulators.cin7}/stockTransferList", params={"Limit": 5}, timeout=60).json()
    for row in transfers.get("StockTransferList", [])[:1]:
        cin7.get(f"{simulators.cin7}/stockTransfer", params={"TaskID": row["TaskID"]}, timeout=60)
    cin7.get(f"{simulators.cin7}/sale", params={"ID": "00000000-0000-0000-0000-000000000001"}, timeout=60)  # a 404
    cin7.get(f"{simulators.cin7}/webhooks", timeout=60)  # the pipeline does not call it in a cycle
    for path in ("products.json", "warehouses.json", "stores.json", "warehousetransactions.json"):
        sitoo.get(f"{simulators.sitoo_site}/{path}", params={"num": 100}, timeout=60)
    warehouses = sitoo.get(f"{simulators.sitoo_site}/warehouses.json", params={"num": 100}, timeout=60).json()
    for row in warehouses["items"][:2]:
        sitoo.get(
            f"{simulators.sitoo_site}/warehouses/{row['warehouseid']}/warehouseitems.json",
            params={"num": 100},
            timeout=60,
        )
    sitoo.get(f"{simulators.sitoo}/orders.json", params={"num": 100, "orderidfrom": 1}, timeout=60)
    listed = reveni.get(f"{simulators.reveni}/returns", params={"page_size": 50}, timeout=60).json()
    for row in listed.get("results", [])[:3]:
        reveni.get(f"{simulators.reveni}/returns/{row['id']}", timeout=60)


def test_every_contract_get_the_simulators_serve_matches_the_contract(simulators, small_scenario) -> None:
    simulators.load(small_scenario)
    simulators.journal(enabled=True, clear=True)
    try:
        _every_get(simulators, json.loads(small_scenario.read_text()))
        records = _without_planted_invalid(_journal(simulators), small_scenario)
    finally:
        simulators.journal(enabled=False, clear=True)
    served = {(r["service"], r["endpoint"]) for r in records}
    assert len(served) >= 15, served
    found = check_all(records, check_request=False)
    assert not found, f"{len(found)} contract violations by the simulators' responses:\n{report(found)}"


def test_a_full_hourly_and_daily_cycle_with_postings_keeps_to_the_contract(
    simulators, clients_for, warehouse_db, tmp_path
) -> None:
    path = scenario(tmp_path, 515, returns=300)
    simulators.load(path)
    clients = clients_for()
    simulators.journal(enabled=True, clear=True)
    try:
        cycle(warehouse_db, clients, path, "contract-hourly", mode="hourly")
        cycle(warehouse_db, clients, path, "contract-daily", mode="daily")
        records = _without_planted_invalid(_journal(simulators), path)
    finally:
        simulators.journal(enabled=False, clear=True)
    assert any(r["method"] == "POST" for r in records), "the cycles posted nothing: the test checks no request body"
    requests_found = check_all(records, check_response=False)
    responses_found = check_all(records, check_request=False)
    message = (
        f"{len(requests_found)} violations by the pipeline's requests:\n{report(requests_found)}\n\n"
        f"{len(responses_found)} violations by the simulators' responses:\n{report(responses_found)}"
    )
    assert requests_found == responses_found == {}, message


def test_an_undocumented_field_in_a_captured_response_is_caught(simulators, small_scenario) -> None:
    """No simulator switch serves an undocumented field: take a real captured response and add one."""
    simulators.load(small_scenario)
    simulators.journal(enabled=True, clear=True)
    try:
        document = json.loads(small_scenario.read_text())
        simulators.cin7_session().get(f"{simulators.cin7}/ref/location", params={"Limit": 5}, timeout=60)
        simulators.sitoo_session().get(f"{simulators.sitoo_site}/warehouses.json", params={"num": 5}, timeout=60)
        sale_id = document["cin7"]["sales"][0]["ID"]
        simulators.cin7_session().get(f"{simulators.cin7}/sale/creditnote", params={"SaleID": sale_id}, timeout=60)
        records = _journal(simulators)
    finally:
        simulators.journal(enabled=False, clear=True)
    by_endpoint = {(r["service"], r["endpoint"]): r for r in records}
    location = copy.deepcopy(by_endpoint[("cin7", "ref/location")])
    location["response_body"]["LocationList"][0]["Undocumented"] = 1
    assert "cin7 GET /ref/location: response LocationList[0] has undocumented field Undocumented" in check(location)
    warehouse = copy.deepcopy(by_endpoint[("sitoo", "warehouses")])
    warehouse["response_body"]["items"][0]["undocumented"] = "x"
    assert any("items[0] has undocumented field undocumented" in v for v in check(warehouse))
    notes = copy.deepcopy(by_endpoint[("cin7", "sale/creditnote")])
    notes["response_body"]["CreditNotes"] = [{"TaskID": sale_id, "RestockStatus": "AUTHORISED"}]
    assert "cin7 GET /sale/creditnote: response CreditNotes[0] has undocumented field RestockStatus" in check(notes)
    # and the raw path is matched against the contract's base path (the store id is in it)
    assert check_exchange("reveni", "GET", f"/merchants/v0/stores/{CREDS.reveni_store_id}/nothing", [], None, 200, {})
