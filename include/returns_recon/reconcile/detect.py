"""Every exception type of the taxonomy, detected in one statement over the int_ models: ``sql/detect/found.sql``.

Each check is a condition over one row of ``int_return_legs`` (a return) or ``int_items`` (an item), named after the
exception type it raises and stated once in that file; the legs' states it reads are the models'. Blocking rules and
the reading order are in the file's header.
"""

from __future__ import annotations

from typing import NamedTuple

from returns_recon.reconcile.sql import Table

FOUND = Table("detect/found", unique_key=("exception_key",), analyze=False)


class Check(NamedTuple):
    exception_type: str


# the types found.sql raises, by the row they are checked on (a unit test holds this to the file)
RETURN_CHECKS = tuple(
    map(
        Check,
        (
            "sale_not_found",
            "refund_without_credit_note",
            "credit_note_without_refund",
            "duplicate_credit_note",
            "credit_note_amount_mismatch",
            "credit_note_tax_mismatch",
            "unattributed_credit_note",
            "double_refund",
            "sitoo_return_record_missing",
            "exchange_order_missing",
            "exchange_order_held",
            "unmapped_location",
        ),
    )
)
ITEM_CHECKS = tuple(
    map(
        Check,
        (
            "missing_restock",
            "premature_restock",
            "rejected_item_in_sellable_stock",
            "inspected_not_released",
            "restock_latency_breach",
            "sitoo_stock_missing",
            "sitoo_stock_wrong_location",
            "unknown_sku_cin7",
            "unknown_sku_sitoo",
        ),
    )
)
# checks that read other tables than the two models: our postings that need a person, quarantined payloads
OTHER_CHECKS = tuple(map(Check, ("credit_note_awaiting_approval", "posting_refused", "invalid_record")))
