"""Reveni read leniently (operating-model.md §2, last paragraph; models/reveni.py): a return is quarantined only
when its id, its money or its order number is unusable; every field no public source shows may be missing; a status
outside the documented set is kept. And the connection's ``list_endpoint`` extra: true or false, named when wrong."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest

from returns_recon.connections import (
    REVENI,
    ConnectionConfigError,
    connection_problems,
    reveni_list_endpoint,
    true_or_false,
)
from returns_recon.extract.entities import validate
from returns_recon.models.reveni import STATUSES, ReveniReturn
from returns_recon.warehouse.loader import Invalid, Valid
from returns_recon.warehouse.tables import TABLES

pytestmark = pytest.mark.unit

# a return as the simulators serve it: every field the recommended model has (reveni_api.md §3)
FULL: dict[str, Any] = {
    "id": "4e26c9f08f2a468fabc16af12ae0209b",
    "order": {"id": "a3a7640d671c4cde8adff13560e25f7b", "external_id": "100231"},
    "type": "refund",
    "instant": False,
    "status": "received",
    "amount": "39.9000",
    "currency": "EUR",
    "refund_method": "original_payment",
    "return_point": {"id": "rp-wh-1", "type": "warehouse", "name": "Main warehouse"},
    "return_items": [
        {
            "item_id": "9b1f0000000000000000000000000001",
            "sku": "14785-5",
            "quantity": 1,
            "price": "39.9000",
            "return_reason": "size_too_small",
            "exchange": None,
            "validation_status": "pending",
            "restock": None,
            "validated_at": None,
        }
    ],
    "refunds": [
        {
            "id": "f0000000000000000000000000000001",
            "amount": "39.9000",
            "currency": "EUR",
            "status": "paid",
            "refunded_at": "2024-05-31T10:00:00Z",
        }
    ],
    "received_at": "2024-05-30T10:00:00Z",
    "created_at": "2024-05-28T10:00:00Z",
    "updated_at": "2024-05-31T10:20:00Z",
}
# what R2/R3 show publicly ([R-C]) and what the return is matched by ([R-U] R5): nothing else
MINIMAL: dict[str, Any] = {
    "id": "4e26c9f08f2a468fabc16af12ae0209b",
    "status": "in_progress",
    "amount": "39.9000",
    "currency": "EUR",
    "order": {"external_id": "100231"},
}


def check(payload: Any) -> Valid[ReveniReturn] | Invalid:
    return validate(ReveniReturn, payload, "id")


def staged(payload: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The staging rows of a valid payload, as column -> value per row."""
    outcome = check(payload)
    assert isinstance(outcome, Valid), outcome
    rows = outcome.model.staging_rows("run-1")
    return {table: [dict(zip(TABLES[table].columns, row, strict=True)) for row in rows[table]] for table in rows}


def test_a_return_with_every_field_stages_as_before() -> None:
    rows = staged(FULL)
    (ret,) = rows["stg_reveni__returns"]
    assert ret["status"] == "received"
    assert ret["return_point_id"] == "rp-wh-1"
    assert ret["amount"] == Decimal("39.9000")
    assert [i["validation_status"] for i in rows["stg_reveni__return_items"]] == ["pending"]
    assert [f["refund_id"] for f in rows["stg_reveni__refunds"]] == ["f0000000000000000000000000000001"]


def test_only_what_is_public_and_the_order_number_is_required() -> None:
    rows = staged(MINIMAL)
    (ret,) = rows["stg_reveni__returns"]
    assert (ret["return_id"], ret["order_external_id"], ret["amount"], ret["currency"], ret["status"]) == (
        MINIMAL["id"],
        "100231",
        Decimal("39.9000"),
        "EUR",
        "in_progress",
    )
    for column in ("return_type", "is_instant", "return_point_id", "created_at", "updated_at", "received_at"):
        assert ret[column] is None, column
    assert rows["stg_reveni__return_items"] == []
    assert rows["stg_reveni__refunds"] == []


@pytest.mark.parametrize("status", ["on_hold", "FOR_REVIEW", "", None])
def test_a_status_outside_the_documented_set_or_none_is_kept(status: str | None) -> None:
    payload = {**FULL, "status": status}
    if status is None:
        del payload["status"]
    (ret,) = staged(payload)["stg_reveni__returns"]
    assert ret["status"] == status
    assert status not in STATUSES


@pytest.mark.parametrize("value", ["for_review", None])
def test_an_items_validation_status_is_any_text_or_missing(value: str | None) -> None:
    payload = copy.deepcopy(FULL)
    if value is None:
        del payload["return_items"][0]["validation_status"]
    else:
        payload["return_items"][0]["validation_status"] = value
    (item,) = staged(payload)["stg_reveni__return_items"]
    assert item["validation_status"] == value


@pytest.mark.parametrize(
    "missing", ["type", "instant", "return_point", "return_items", "refunds", "created_at", "updated_at"]
)
def test_a_field_no_public_source_shows_may_be_missing(missing: str) -> None:
    payload = {k: v for k, v in FULL.items() if k != missing}
    assert isinstance(check(payload), Valid)


def test_a_return_point_without_an_id_and_a_refund_without_an_id() -> None:
    payload = copy.deepcopy(FULL)
    payload["return_point"] = {"name": "Somewhere"}
    del payload["refunds"][0]["id"]
    payload["refunds"].append({"amount": "1.0000", "currency": "EUR", "status": "pending"})
    rows = staged(payload)
    assert rows["stg_reveni__returns"][0]["return_point_id"] is None
    # keyed by the return and its place: unique, and the same on every read of the same return
    assert [f["refund_id"] for f in rows["stg_reveni__refunds"]] == [f"{FULL['id']}#refund-1", f"{FULL['id']}#refund-2"]


def _without(path: str) -> dict[str, Any]:
    payload = copy.deepcopy(FULL)
    *parents, last = path.split(".")
    node: Any = payload
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    del node[last]
    return payload


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (_without("id"), "id: Field required"),
        ({**FULL, "id": ""}, "id: String should have at least 1 character"),
        (_without("amount"), "amount: Field required"),
        ({**FULL, "amount": "N/A"}, "amount: Value error, not a decimal amount"),
        (_without("currency"), "currency: Field required"),
        ({**FULL, "currency": "euro"}, "currency: Value error, not an ISO 4217 currency code"),
        (_without("order"), "order: Field required"),
        (_without("order.external_id"), "order.external_id: Field required"),
        ({**FULL, "order": {"external_id": ""}}, "order.external_id: String should have at least 1 character"),
        (_without("refunds.0.amount"), "refunds.0.amount: Field required"),
        (_without("refunds.0.status"), "refunds.0.status: Field required"),
        (_without("return_items.0.sku"), "return_items.0.sku: Field required"),
        (_without("return_items.0.quantity"), "return_items.0.quantity: Field required"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_a_return_whose_identity_money_or_order_is_unusable_is_quarantined_with_the_reason(
    payload: dict[str, Any], reason: str
) -> None:
    outcome = check(payload)
    assert isinstance(outcome, Invalid)
    assert reason in outcome.error, outcome.error


# --- the connection's list_endpoint extra ------------------------------------------------------------------------


@dataclass
class FakeConn:
    conn_type: str | None = "http"
    host: str | None = "127.0.0.1"
    login: str | None = None
    password: str | None = "key"
    port: int | None = 443
    schema: str | None = "https"
    extra: dict[str, Any] = field(default_factory=lambda: {"store_id": "s1"})

    @property
    def extra_dejson(self) -> dict[str, Any]:
        return self.extra


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, True), ("", True), (True, True), (False, False), ("false", False), (" FALSE ", False), ("true", True)],
)
def test_list_endpoint_is_true_or_false_and_true_by_default(value: Any, expected: bool) -> None:
    extra = {"store_id": "s1"} if value is None else {"store_id": "s1", "list_endpoint": value}
    assert reveni_list_endpoint(extra) is expected
    assert connection_problems(REVENI, FakeConn(extra=extra)) == []


@pytest.mark.parametrize("value", ["no", "0", 0, 1, ["false"], {"x": 1}])
def test_a_list_endpoint_that_is_neither_names_the_connection_and_the_field(value: Any) -> None:
    extra = {"store_id": "s1", "list_endpoint": value}
    assert true_or_false(value) is None
    (problem,) = connection_problems(REVENI, FakeConn(extra=extra))
    assert problem.startswith("connection 'reveni_default' (AIRFLOW_CONN_REVENI_DEFAULT) is malformed: ")
    assert "extra 'list_endpoint'" in problem
    assert "true or false" in problem
    with pytest.raises(ConnectionConfigError, match=r"reveni_default.*extra 'list_endpoint'"):
        reveni_list_endpoint(extra)
