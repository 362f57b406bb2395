"""The contract validator can fail: each kind of violation is caught, and documented examples pass."""

from __future__ import annotations

import copy

import pytest

from tests.fixtures.contract import check_exchange, load_contracts

pytestmark = pytest.mark.unit

CIN7 = "/ExternalApi/v2"
SITOO = "/v2/accounts/12345/sites/1"

# dearinventory.apib#L24701-L24753 (the documented POST sale/creditnote body)
CREDIT_NOTE_POST = {
    "SaleID": "916ab4c0-6ccb-4c93-873d-0603859050e4",
    "TaskID": "529511e7-6ed6-4a99-a2a7-fab1d32198eb",
    "CombineAdditionalCharges": False,
    "CreditNoteInvoiceNumber": "INV-00005",
    "Memo": "",
    "Status": "AUTHORISED",
    "CreditNoteDate": "2017-11-22T00:00:00",
    "CreditNoteConversionRate": 1,
    "Lines": [
        {
            "ProductID": "4aadd8f6-4d3d-46ca-acbb-1a9a662f9bc1",
            "SKU": "Bread",
            "Name": "Baked Bread",
            "Quantity": 1,
            "Price": 8,
            "Discount": 0,
            "Tax": 0,
            "Total": 8,
            "AverageCost": 5,
            "TaxRule": "Tax on Sales",
            "Account": "200",
            "Comment": "",
        }
    ],
    "AdditionalCharges": [
        {
            "Description": "Desktop/network support via phone.",
            "Quantity": 1,
            "Price": 350,
            "Discount": 0,
            "Tax": 0,
            "Total": 350,
            "TaxRule": "Tax on Sales",
            "Account": "200",
            "Comment": "",
        }
    ],
    "Restock": [
        {
            "ProductID": "4aadd8f6-4d3d-46ca-acbb-1a9a662f9bc1",
            "SKU": "Bread",
            "Name": "Baked Bread",
            "Location": "Main Warehouse",
            "LocationID": "19aeca31-bd49-4fbe-8abd-37a6169cc2cb",
            "Quantity": 1,
            "BatchSN": "PO-00001-1",
            "ExpiryDate": "2017-11-30T00:00:00",
            "RestockLocation": "Main Warehouse2",
            "RestockLocationID": "19aeca31-bd49-4fbe-8abd-37a6169cc2c2",
        }
    ],
}
# dearinventory.apib#L24758-L24815 (its documented response), trimmed to one of each line kind
CREDIT_NOTE_RESPONSE = {
    "SaleID": "916ab4c0-6ccb-4c93-873d-0603859050e4",
    "CreditNotes": [{**{k: v for k, v in CREDIT_NOTE_POST.items() if k != "SaleID"}, "CreditNoteNumber": "CR-00002"}],
}
# dearinventory.apib#L20613-L20650 (a saleCreditNoteList row, RestockStatus included)
CREDIT_NOTE_ROW = {
    "SaleID": "d31f22a1-c74d-46ca-aa52-61b26e758603",
    "OrderNumber": "SO-00001",
    "Status": "ORDERED",
    "OrderDate": "2021-08-27T00:00:00",
    "InvoiceDate": None,
    "Customer": "DS Customer",
    "CustomerID": "26375354-5341-4f4d-9332-babd18e36263",
    "InvoiceNumber": None,
    "CustomerReference": "",
    "InvoiceAmount": 0,
    "PaidAmount": 0,
    "InvoiceDueDate": None,
    "ShipBy": None,
    "BaseCurrency": "RUB",
    "CustomerCurrency": "USD",
    "CreditNoteNumber": None,
    "Updated": "2021-10-26T16:31:00.287Z",
    "QuoteStatus": "",
    "OrderStatus": "AUTHORISED",
    "CombinedPickingStatus": "PICKED",
    "CombinedPaymentStatus": "UNPAID",
    "CombinedTrackingNumbers": None,
    "CombinedPackingStatus": "PACKED",
    "CombinedShippingStatus": "SHIPPED",
    "CombinedInvoiceStatus": "INVOICED / CREDITED",
    "CreditNoteStatus": "DRAFT",
    "FulFilmentStatus": "FULFILLED",
    "Type": "Credit Note",
    "SourceChannel": "",
    "ExternalID": "",
    "OrderLocationID": "4710c076-fde9-4baa-b7b2-683200eeb9e8",
    "RestockStatus": "DRAFT",
}
# sitoo/src/paths/sites/_siteid_/warehousetransactions.yaml#/post/requestBody/content/application~1json/example
SITOO_TRANSACTIONS = [
    {
        "warehouseid": 2,
        "transactiontype": 20,
        "description": "Move Out",
        "externalid": "EXTID1",
        "reasoncode": None,
        "items": [{"sku": "Q100", "decimalquantity": "-13.000"}],
    },
    {
        "warehouseid": 1,
        "transactiontype": 10,
        "description": "Move In",
        "externalid": "EXTID2",
        "reasoncode": None,
        "items": [{"sku": "Q100", "decimalquantity": "13.000", "moneypricein": "3.45"}],
    },
]


def post_note(body: dict, response: dict | None = None, status: int = 200) -> list[str]:
    return check_exchange("cin7", "POST", f"{CIN7}/sale/creditnote", [], body, status, response or CREDIT_NOTE_RESPONSE)


def test_the_three_contracts_load_and_every_endpoint_cites_a_source() -> None:
    contracts = load_contracts()
    assert set(contracts) == {"cin7", "sitoo", "reveni"}
    for contract in contracts.values():
        for endpoint in contract.endpoints:
            assert endpoint.spec.get("source"), endpoint.label
            for decl in endpoint.query.values():
                assert decl.get("source"), (endpoint.label, decl)


def test_documented_examples_pass() -> None:
    assert post_note(CREDIT_NOTE_POST) == []
    row_list = {"Total": 1, "Page": 1, "SaleList": [CREDIT_NOTE_ROW]}
    query = [["Page", "1"], ["Limit", "1000"], ["UpdatedSince", "2021-10-26T16:31:00"]]
    assert check_exchange("cin7", "GET", f"{CIN7}/saleCreditNoteList", query, None, 200, row_list) == []
    assert (
        check_exchange(
            "sitoo",
            "POST",
            f"{SITOO}/warehousetransactions.json",
            [],
            SITOO_TRANSACTIONS,
            200,
            [{"statuscode": 200, "return": 17}, {"statuscode": 200, "return": 18}],
        )
        == []
    )
    error = [{"ErrorCode": 400, "Exception": "Missing EffectiveDate"}]
    assert check_exchange("cin7", "POST", f"{CIN7}/sale/creditnote", [], CREDIT_NOTE_POST, 400, error) == []


def test_paths_and_query_names_are_case_insensitive_for_cin7_only() -> None:
    body = {"Total": 0, "Page": 1, "SaleList": []}
    assert (
        check_exchange("cin7", "GET", "/externalapi/v2/SALELIST", [["page", "1"], ["LIMIT", "5"]], None, 200, body)
        == []
    )
    found = check_exchange("sitoo", "GET", f"{SITOO}/Products.json", [], None, 200, {"totalcount": 0, "items": []})
    assert found
    assert "no such endpoint" in found[0]


def test_a_response_with_an_undocumented_field_is_caught() -> None:
    sale = {
        "ID": "916ab4c0-6ccb-4c93-873d-0603859050e4",
        "CreditNotes": [
            {
                "TaskID": "280fba91-281c-4416-ad43-674ae2d17355",
                "Status": "AUTHORISED",
                "RestockStatus": "AUTHORISED",
                "Restock": [],
            }
        ],
    }
    found = check_exchange("cin7", "GET", f"{CIN7}/sale", [["ID", sale["ID"]]], None, 200, sale)
    assert found == ["cin7 GET /sale: response CreditNotes[0] has undocumented field RestockStatus"]
    assert found[0].key == "cin7 GET /sale: response CreditNotes[] has undocumented field RestockStatus"
    note = copy.deepcopy(CREDIT_NOTE_RESPONSE)
    note["CreditNotes"][0]["RestockStatus"] = "AUTHORISED"
    assert post_note(CREDIT_NOTE_POST, note) == [
        "cin7 POST /sale/creditnote: response CreditNotes[0] has undocumented field RestockStatus"
    ]


def test_a_request_with_an_undeclared_query_parameter_is_caught() -> None:
    body = {"Total": 0, "Page": 1, "SaleList": []}
    found = check_exchange("cin7", "GET", f"{CIN7}/saleList", [["CustomerReference", "100231"]], None, 200, body)
    assert found == ["cin7 GET /saleList: request has undeclared query parameter CustomerReference"]
    found = check_exchange(
        "sitoo", "GET", f"{SITOO}/stores.json", [["sort", "storeid"]], None, 200, {"totalcount": 0, "items": []}
    )
    assert found == ["sitoo GET /sites/{siteid}/stores.json: request has undeclared query parameter sort"]


def test_a_cin7_post_with_money_as_a_string_is_caught() -> None:
    body = copy.deepcopy(CREDIT_NOTE_POST)
    body["Lines"][0]["Price"] = "8.00"
    assert post_note(body) == ["cin7 POST /sale/creditnote: request Lines[0].Price is string '8.00', documented number"]


def test_a_post_with_an_undocumented_field_is_caught() -> None:
    body = {**CREDIT_NOTE_POST, "RestockStatus": "AUTHORISED"}
    assert post_note(body) == ["cin7 POST /sale/creditnote: request has undocumented field RestockStatus"]
    order = {
        "ordertypeid": 10,
        "orderitems": [{"productname": "Shirt", "quantity": -1}],
        "additionaldata": {"x": "y"},
        "source": "returns-recon",
    }
    found = check_exchange("sitoo", "POST", f"{SITOO}/orders.json", [], order, 200, 11513)
    assert found == ["sitoo POST /sites/{siteid}/orders.json: request has undocumented field source"]


def test_a_missing_required_post_field_is_caught() -> None:
    body = {k: v for k, v in CREDIT_NOTE_POST.items() if k != "CombineAdditionalCharges"}
    assert post_note(body) == ["cin7 POST /sale/creditnote: request misses required field CombineAdditionalCharges"]
    transfer = {
        "FromLocation": "A",
        "ToLocation": "B",
        "Status": "COMPLETED",
        "Lines": [{"SKU": "X", "TransferQuantity": 1}],
    }
    found = check_exchange("cin7", "POST", f"{CIN7}/stockTransfer", [], transfer, 200, None, check_response=False)
    assert found == ["cin7 POST /stockTransfer: request misses required field CompletionDate"]


def test_a_wrong_date_format_is_caught() -> None:
    body = {"Total": 0, "Page": 1, "SaleList": []}
    found = check_exchange(
        "cin7", "GET", f"{CIN7}/saleList", [["UpdatedSince", "2024-05-01T10:00:00+00:00"]], None, 200, body
    )
    assert len(found) == 1
    assert "query parameter UpdatedSince" in found[0]
    assert "cin7_datetime" in found[0]
    note = {**CREDIT_NOTE_POST, "CreditNoteDate": "22/11/2017"}
    assert post_note(note) == [
        "cin7 POST /sale/creditnote: request CreditNoteDate value '22/11/2017' does not match the documented format "
        r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?$"
    ]
    found = check_exchange(
        "sitoo",
        "GET",
        f"{SITOO}/warehousetransactions.json",
        [["datecreatedfrom", "2024-05-01"]],
        None,
        200,
        {"totalcount": 0, "items": []},
    )
    assert found == [
        "sitoo GET /sites/{siteid}/warehousetransactions.json: query parameter datecreatedfrom value '2024-05-01' "
        "is not an integer"
    ]


def test_error_shapes_and_undocumented_statuses_are_checked() -> None:
    found = check_exchange("cin7", "GET", f"{CIN7}/sale", [["ID", "x"]], None, 404, {"error": "Sale not found"})
    assert "cin7 GET /sale: error response 404 is object {'error': 'Sale not found'}, documented array" in found
    found = check_exchange(
        "cin7", "GET", f"{CIN7}/sale", [["ID", "x"]], None, 504, [{"ErrorCode": 504, "Exception": "t"}]
    )
    assert found == ["cin7 GET /sale: response status 504 is not documented"]
    found = check_exchange("sitoo", "GET", f"{SITOO}/stores.json", [], None, 429, {"statuscode": 429})
    assert found == ["sitoo GET /sites/{siteid}/stores.json: error response 429 misses required field errortext"]
