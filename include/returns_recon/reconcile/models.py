"""The intermediate models (int_...): SQL over staging in ``sql/models/``, one file each, materialised in this
order as unlogged tables of the reconciliation transaction's work schema. Together they state what every leg of
every return item should show, what it does show, and the state of each leg (int_items, int_return_legs), which
detection and publication both read.

Set-based throughout: every source table is aggregated once by its join key and hash-joined; no per-row
subqueries. The two last models are wide (one row per item, one per return, with every leg), so detection and
publication each read them once without joining again."""

from __future__ import annotations

from returns_recon.reconcile.sql import Table

MODELS = (
    Table("models/int_returns", unique_key=("return_id",)),
    # detection looks notes up by sale for every return that may have been credited twice (1M returns: 35 s
    # of sequential scans without it, under 1 s with it)
    Table("models/int_notes_by_hand", index=("sale_id",)),
    Table("models/int_credit_notes", index=("return_id",)),
    Table("models/int_credit_note_tax", analyze=False),
    Table("models/int_item_restocks"),
    Table("models/int_item_references"),
    Table("models/int_items"),
    Table("models/int_return_legs"),
)


def tax_rate(tax: str, total: str) -> str:
    """SQL: the tax rate of a sale line, as the reconciliation reads it (staging.line_tax_rate, migration 0019)."""
    return f"staging.line_tax_rate({tax}, {total})"
