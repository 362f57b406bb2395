"""The allow-lists of stored payloads (``returns_recon.privacy.ALLOWED``) against what the pipeline reads:
every field a staging model reads is allowed, nothing else is except the fields the postings read back
from a stored payload, and the minimising keeps and drops what it says."""

from __future__ import annotations

import re
import types
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

import pytest
from pydantic import BaseModel

from returns_recon import privacy
from returns_recon.location_map import COLUMNS, LocationMapRow
from returns_recon.models import cin7, reveni, sitoo
from returns_recon.postings.actions.credit_note import RESTOCK_LINE_FIELDS

pytestmark = pytest.mark.unit

PACKAGE = Path(privacy.__file__).parent
# (source, entity) as stored (extract/entities.py, location_map.py) -> the model its staging rows come from
MODELS: dict[tuple[str, str], type[BaseModel]] = {
    ("reveni", "returns"): reveni.ReveniReturn,
    ("cin7", "sale_list"): cin7.SaleListRow,
    ("cin7", "credit_note_list"): cin7.CreditNoteListRow,
    ("cin7", "sales"): cin7.Sale,
    ("cin7", "stock_transfers"): cin7.StockTransferRow,
    ("cin7", "products"): cin7.Product,
    ("cin7", "locations"): cin7.Location,
    ("cin7", "availability"): cin7.Availability,
    ("sitoo", "products"): sitoo.Product,
    ("sitoo", "warehouses"): sitoo.Warehouse,
    ("sitoo", "stores"): sitoo.Store,
    ("sitoo", "warehouse_items"): sitoo.WarehouseItem,
    ("sitoo", "warehouse_transactions"): sitoo.WarehouseTransaction,
    ("sitoo", "orders"): sitoo.Order,
    ("merchant", "location_map"): LocationMapRow,
}
# allowed beyond the models, each for a reader of the stored payload
RESTOCK = "CreditNotes[].Restock[]."
READ_BACK = {
    # postings/actions/credit_note.py completes our DRAFT credit note with the restock lines stored on it
    ("cin7", "sales"): {RESTOCK + f for f in RESTOCK_LINE_FIELDS}
    - {RESTOCK + f for f in cin7.RestockLine.model_fields},
    # the refund orders the postings write to Sitoo (postings/actions/sitoo.py) carry these two keys only
    ("sitoo", "orders"): {"additionaldata.reveni-return-id", "additionaldata.source"},
}


def shape_of(model: type[BaseModel]) -> dict[str, Any]:
    return {field.alias or name: _shape(field.annotation) for name, field in model.model_fields.items()}


def _shape(annotation: Any) -> Any:
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return _shape(args[0])
    if origin in (Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return _shape(inner[0]) if len(inner) == 1 else privacy.KEEP
    if origin is list:
        inner = _shape(args[0])
        return [inner] if isinstance(inner, dict) else privacy.KEEP
    if origin is dict:
        return {}  # a free-form object: only the keys declared in the allow-list are kept
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return shape_of(annotation)
    return privacy.KEEP


def paths(shape: Any, prefix: str = "") -> set[str]:
    """Every node of a shape: ``a``, ``a.b``, ``list[]``, ``list[].c``."""
    if isinstance(shape, list):
        return {prefix + "[]"} | paths(shape[0], prefix + "[]")
    if isinstance(shape, dict):
        found = set()
        for key, value in shape.items():
            name = f"{prefix}.{key}" if prefix else key
            found |= {name} | paths(value, name) if not isinstance(value, list) else paths(value, name)
        return found
    return set()


def test_every_stored_entity_has_one_declared_allow_list() -> None:
    assert set(privacy.ALLOWED) == set(MODELS)
    with pytest.raises(privacy.UndeclaredEntity, match="no allow-list"):
        privacy.allowed("cin7", "customers")


@pytest.mark.parametrize("entity", sorted(MODELS), ids="/".join)
def test_the_allow_list_is_exactly_what_staging_reads_plus_what_postings_read_back(entity) -> None:
    read = paths(shape_of(MODELS[entity]))
    declared = paths(privacy.ALLOWED[entity])
    assert read - declared == set(), "fields staging reads that are not allowed (add them to privacy.ALLOWED)"
    assert declared - read == READ_BACK.get(entity, set()), "allowed fields nothing reads"


def test_the_location_map_allow_list_is_its_columns() -> None:
    assert set(privacy.ALLOWED["merchant", "location_map"]) == set(COLUMNS)


def test_no_sql_reads_a_raw_payload_field_that_is_not_allowed() -> None:
    """JSON paths read from stored payloads (``payload ->> 'x'``, ``payload #> '{a,b}'``) must be allowed."""
    everything = set().union(*(paths(shape) for shape in privacy.ALLOWED.values()))
    names = {p.rsplit(".", 1)[-1].removesuffix("[]") for p in everything}
    read = set()
    for path in PACKAGE.rglob("*"):
        if path.suffix in {".py", ".sql"}:
            for match in re.finditer(r"payload\s*(?:->>?|#>>?)\s*'\{?([\w,\-]+)\}?'", path.read_text()):
                read |= set(match.group(1).split(","))
    assert read - names == set()


SHAPE = privacy.fields("id amount", order=privacy.fields("external_id"), lines=[privacy.fields("sku")])
PAYLOAD = {
    "id": "r1",
    "amount": "1.00",
    "email": "a@example.org",
    "order": {"external_id": "#1", "customer_email": "a@example.org"},
    "lines": [{"sku": "S", "comment": "free text"}, {"sku": "T", "holder": {"name": "x"}}],
    "customer": {"name": "x", "address": {"zip": "1"}},
}


def test_minimise_keeps_only_allowed_fields_at_every_depth() -> None:
    assert privacy.minimise(PAYLOAD, SHAPE) == {
        "id": "r1",
        "amount": "1.00",
        "order": {"external_id": "#1"},
        "lines": [{"sku": "S"}, {"sku": "T"}],
    }


def test_an_invalid_payload_keeps_allowed_fields_and_only_the_names_of_the_rest() -> None:
    broken = {**PAYLOAD, "amount": {"nested": "a@example.org"}, "order": ["not", {"external_id": "#1", "x": 1}]}
    kept = privacy.minimise_invalid(broken, SHAPE)
    assert kept == {
        "id": "r1",
        "amount": {},
        "order": ["not", {"external_id": "#1"}],
        "lines": [{"sku": "S"}, {"sku": "T"}],
        privacy.DROPPED_KEYS: ["amount.nested", "customer", "email", "lines[].comment", "lines[].holder", "order[].x"],
    }
    assert "a@example.org" not in repr(kept)
    assert privacy.minimise_invalid(kept, SHAPE) == kept, "minimising again changes nothing"
    assert privacy.minimise_invalid(["a@example.org", {"email": "b"}], SHAPE) == {
        "_payload_type": "list",
        privacy.DROPPED_KEYS: ["[].email"],
    }
    assert privacy.minimise_invalid("a@example.org", SHAPE) == {"_payload_type": "str"}


def test_the_digest_changes_with_the_allow_list() -> None:
    assert privacy.digest(SHAPE) == privacy.digest(dict(reversed(SHAPE.items())))
    assert privacy.digest(SHAPE) != privacy.digest({**SHAPE, "email": privacy.KEEP})


def test_the_quarantine_reason_names_an_object_value_without_showing_it() -> None:
    from returns_recon.extract.entities import Invalid, validate

    payload = {"id": "r1", "amount": {"email": "a@example.org"}, "order": [{"name": "Alice Example"}]}
    outcome = validate(reveni.ReveniReturn, payload, "id")
    assert isinstance(outcome, Invalid)
    assert "amount: " in outcome.error
    assert "an object of 1 keys" in outcome.error
    assert "a@example.org" not in outcome.error
    assert "Alice" not in outcome.error
