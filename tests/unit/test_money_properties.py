"""Money normalisation round-trips exactly (hypothesis): API text or JSON number → Decimal →
stored JSON → read back → sent back as JSON → read by the API, without losing a cent."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from returns_recon.apis.client import encode_json
from returns_recon.models.types import to_decimal
from returns_recon.postings.sale_view import with_numbers
from returns_recon.warehouse.loader import canonical_json

pytestmark = pytest.mark.unit

# numeric(18, 4): what the warehouse stores
amounts = st.decimals(
    min_value=Decimal("-99999999999999.9999"),
    max_value=Decimal("99999999999999.9999"),
    places=4,
    allow_nan=False,
    allow_infinity=False,
)


@given(amounts)
def test_text_and_json_numbers_normalise_to_the_same_exact_decimal(amount: Decimal) -> None:
    assert to_decimal(str(amount)) == amount
    assert to_decimal(f"  {amount}  ") == amount
    as_json_number = json.loads(f'{{"Total": {amount}}}', parse_float=Decimal)["Total"]
    assert to_decimal(as_json_number) == amount


@given(amounts)
def test_stored_payloads_give_back_the_same_amounts(amount: Decimal) -> None:
    stored = json.loads(canonical_json({"CreditNotes": [{"Total": amount, "Lines": [{"Quantity": amount}]}]}))
    restored = with_numbers(stored)
    assert restored["CreditNotes"][0]["Total"] == amount
    assert restored["CreditNotes"][0]["Lines"][0]["Quantity"] == amount


@given(amounts)
def test_amounts_sent_to_an_api_are_read_back_exactly(amount: Decimal) -> None:
    sent = encode_json({"Total": amount})
    received = json.loads(sent, parse_float=Decimal)["Total"]
    assert Decimal(str(received)) == amount


@given(amounts)
def test_the_same_payload_read_twice_hashes_the_same(amount: Decimal) -> None:
    assert canonical_json({"a": amount, "b": 1}) == canonical_json({"b": 1, "a": to_decimal(str(amount))})


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_floats_are_refused_as_money(value: float) -> None:
    with pytest.raises(ValueError, match="not a decimal amount"):
        to_decimal(value)
