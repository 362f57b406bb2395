"""The published finance tables and views: built in a shadow schema, commented, audited, swapped in in one
transaction.

Each table has one grain, stated in its comment: money is kept at its own grain (a return's refund and credit in
``fct_returns``, never repeated on its item rows), so a plain SUM over any money column never counts a thing twice;
sums across currencies are never made. The views answer finance's daily questions over these tables and the
exception queue and postings; they are built with the tables (pointing at them) and move into ``recon`` with them,
so a publish never leaves a view behind on a dropped table.
"""

from __future__ import annotations

from psycopg import sql

from returns_recon.reconcile.sql import Published

# the tables, in the order they are built (sql/publish/<name>.sql), and their primary keys
BUILD = (
    Published("publish/fct_returns", primary_key=("return_id",)),
    Published("publish/fct_return_reconciliation", primary_key=("item_id",)),
    Published("publish/refund_journal", primary_key=("day", "currency")),
    Published("publish/daily_summary", primary_key=("day", "currency")),
)
TABLES = tuple(table.name for table in BUILD)

# --- views: finance's questions, built after the tables, over them; each view after the views it reads, dropped in
# the reverse order (money at risk per owner and currency is not rebuilt here: migration 0018's views
# recon.money_at_risk and recon.money_at_risk_by_return, over recon.exception_details, which the exception mails read)
VIEW_BUILD = (
    Published("publish/refunds_without_credit_note", view=True),
    Published("publish/open_exceptions_by_return_age", view=True),
    Published("publish/posted_documents", view=True),
    Published("publish/posted_yesterday", view=True),
)
VIEWS = tuple(view.name for view in VIEW_BUILD)
PUBLISHED = TABLES + VIEWS

# --- comments: what finance sees with \d+ (each table's grain first) ------------------------------------------

LEGS = "(text, one state: not summable)"
MONEY_SUM = "Safe to SUM within one currency."
COMMENTS: dict[str, tuple[str, dict[str, str]]] = {
    "fct_returns": (
        "Grain: one row per Reveni return in the reconciliation window (RECON_RECON_WINDOW_DAYS). The return's "
        "money lives here and only here: refunded, credited and credited_minus_refunded are safe to SUM, grouped "
        "by currency. Rebuilt at every reconciliation.",
        {
            "return_id": "Reveni return id (primary key)",
            "order_external_id": "the shop's order number the return belongs to",
            "sale_id": "the matched Cin7 Core sale (by RECON_SALE_MATCH_FIELD); NULL when none was found",
            "return_status": "the return's status in Reveni",
            "return_type": "the Reveni return type (refund, exchange, ...)",
            "is_instant": "an instant return: refunded before the goods arrive",
            "return_point_kind": "warehouse or store, from the location map; NULL when the return point is unmapped",
            "return_point_id": "the Reveni return point",
            "created_at": "when the return was created in Reveni (its age is counted from here)",
            "received_at": "when the goods were received at the return point; NULL while not received",
            "last_refund_at": "the latest Reveni refund of the return",
            "items": "the return's item rows in fct_return_reconciliation",
            "return_currency": "the return's currency in Reveni",
            "currency": "the currency of refunded and credited_minus_refunded: the refund's; for a return not "
            "refunded, the credit note's, else the return's",
            "refunds": "paid Reveni refunds of the return (count)",
            "refunded": f"money paid back by Reveni (paid refunds), in currency. {MONEY_SUM}",
            "credit_notes": "AUTHORISED Cin7 Core credit notes attributed to the return (count)",
            "credited": "total of those credit notes, in credit_currency (0 when none)",
            "credit_currency": "the currency of the attributed credit notes; NULL when there is none",
            "sale_currency": "the Cin7 Core sale's customer currency (the currency of its credit notes)",
            "currencies_differ": "refunded in one currency and credited in another: no gap can be computed",
            "credited_minus_refunded": "the gap: credited - refunded, in currency (negative: refunded but not "
            f"credited). NULL when currencies_differ. {MONEY_SUM}",
            "unattributed_notes": "AUTHORISED credit notes made by hand on the return's sale that no return can "
            "be attributed (the customer may be credited twice)",
            "unattributed_credited": "total of those notes, in the sale's currency; the same notes repeat on "
            "every return of the sale, so do not SUM this across returns (refund_journal has them once)",
            "sitoo_return_records": "Sitoo return records of the return (count)",
            "credit_note_leg": f"the credit-note leg {LEGS}: blocked (no sale), duplicate, unattributed, missing, "
            "unexpected, mismatch, ok or not_due, in that order of precedence",
            "sitoo_record_leg": f"the Sitoo return-record leg of a store return {LEGS}: not_applicable, blocked, "
            "not_due, ok or missing",
            "open_exception_types": "the open or acknowledged exception types of the return and its items",
            "overall_status": "exception (an open exception), reconciled (final status in Reveni) or in_progress",
            "age_days": "whole days from created_at to the reconciliation that published the row",
        },
    ),
    "fct_return_reconciliation": (
        "Grain: one row per return item in the reconciliation window, with the state of each leg. No money: the "
        "return's refund and credit are in fct_returns (join on return_id). quantity is safe to SUM. Rebuilt at "
        "every reconciliation.",
        {
            "item_id": "Reveni return item id (primary key)",
            "return_id": "the item's return (fct_returns.return_id)",
            "order_external_id": "the shop's order number",
            "sale_id": "the matched Cin7 Core sale; NULL when none was found",
            "sku": "the item's SKU",
            "quantity": "units returned on this item row (safe to SUM)",
            "currency": "the return's currency in Reveni",
            "return_status": "the return's status in Reveni",
            "validation_status": "the item's inspection result in Reveni (accepted, rejected, ...)",
            "restock": "whether Reveni says the item goes back to sellable stock",
            "return_point_kind": "warehouse or store; NULL when unmapped",
            "return_point_id": "the Reveni return point",
            "is_instant": "an instant return",
            "created_at": "when the return was created in Reveni",
            "received_at": "when the goods were received; NULL while not received",
            "validated_at": "when the item was inspected",
            "credit_note_leg": f"the return's credit-note leg, repeated on each of its items {LEGS}",
            "restock_leg": f"warehouse restock in Cin7 Core {LEGS}: not_applicable, blocked, not_due, ok, missing",
            "release_leg": f"release from holding to sellable {LEGS}: not_applicable, blocked, not_due, released, "
            "pending, overdue",
            "sitoo_record_leg": f"the return's Sitoo return-record leg, repeated on each of its items {LEGS}",
            "sitoo_stock_leg": f"store stock in Sitoo {LEGS}: not_applicable, blocked, not_due, ok, wrong_location, "
            "pending, missing",
            "exchange_leg": f"exchange order {LEGS}: not_applicable, missing, or the order's status",
            "open_exception_types": "open or acknowledged exception types of the item and of its return",
            "overall_status": "exception, reconciled or in_progress",
            "age_days": "whole days from the return's created_at to the reconciliation that published the row",
        },
    ),
    "refund_journal": (
        "Grain: one row per day (UTC) and currency: Reveni refunds against Cin7 Core credit notes and Sitoo return "
        "records, each by its own date. Money columns are safe to SUM within one currency. Rebuilt at every "
        "reconciliation.",
        {
            "day": "the day (UTC): refund date, credit note date or Sitoo order date",
            "currency": "the currency of every amount of the row",
            "reveni_refunds": "paid Reveni refunds that day (count)",
            "reveni_refunded": f"their total. {MONEY_SUM}",
            "cin7_credit_notes": "AUTHORISED credit notes attributed to a return, dated that day (count)",
            "cin7_credited": f"their total. {MONEY_SUM}",
            "sitoo_return_records": "Sitoo return records of returns, dated that day (count)",
            "sitoo_recorded": f"their total, as a positive amount. {MONEY_SUM}",
            "credited_minus_refunded": f"cin7_credited - reveni_refunded. {MONEY_SUM}",
            "cin7_unattributed_notes": "AUTHORISED notes made by hand on refunded returns' sales that no return can "
            "be attributed, dated that day (count)",
            "cin7_unattributed_credited": f"their total. {MONEY_SUM}",
        },
    ),
    "daily_summary": (
        "Grain: one row per day the returns were created (UTC) and currency: those returns, their money and their "
        "open exceptions. Safe to SUM within one currency. Rebuilt at every reconciliation.",
        {
            "day": "the day (UTC) the returns were created in Reveni",
            "currency": "the returns' currency",
            "returns": "returns created that day",
            "refunded": f"paid refunds of those returns. {MONEY_SUM}",
            "credited": f"AUTHORISED credit notes attributed to those returns. {MONEY_SUM}",
            "difference": f"credited - refunded. {MONEY_SUM}",
            "open_exceptions": "open or acknowledged exceptions of those returns",
            "open_by_type": "the same, per exception type (JSON object type: count)",
        },
    ),
    "refunds_without_credit_note": (
        "View, grain: one row per currency: returns refunded in Reveni with no AUTHORISED credit note attributed in "
        "Cin7 Core (from fct_returns).",
        {
            "currency": "the refunds' currency",
            "returns": "returns refunded without a credit note",
            "refunded": "their refunded total",
            "oldest_refund_at": "the oldest latest-refund among them",
            "returns_without_sale": "of which the Cin7 Core sale was not found (sale_not_found)",
            "returns_with_unattributed_note": "of which the sale carries a note made by hand that no return can be "
            "attributed (unattributed_credit_note: it may be this refund's credit)",
        },
    ),
    "open_exceptions_by_return_age": (
        "View, grain: one row per owner, exception type and age of the return (days since the return was created "
        "in Reveni, at query time; not since the exception was first seen): open and acknowledged exceptions.",
        {
            "owner": "who acts on it: finance, operations, data or customer service",
            "exception_type": "the exception type (dim_exception_types)",
            "severity": "critical, high, medium or info",
            "return_age": "0-6, 7-13, 14-29, 30-59 or 60+ days; 'older than the window' for a return no longer "
            "reconciled, 'no return' for an exception about another record",
            "return_age_from_days": "the lower bound of return_age in days, for ordering (NULL for the last two)",
            "exceptions": "open or acknowledged exceptions",
            "acknowledged": "of which acknowledged",
            "returns": "distinct returns concerned",
            "oldest_return_created_at": "creation time of the oldest return among them",
        },
    ),
    "posted_documents": (
        "View, grain: one row per document the pipeline created in Cin7 Core or Sitoo (posting done, or adopted: "
        "found on the target after an unanswered send).",
        {
            "posting_key": "the posting (postings.posting_key)",
            "posted_at": "when it was recorded as done or adopted",
            "posted_on": "posted_at's day (UTC)",
            "system": "cin7 or sitoo",
            "action": "create_credit_note, authorise_credit_note (our DRAFT credit note authorised after a person's "
            "approval: the same document again, its amount NULL as the DRAFT's row counts it), transfer_to_sellable, "
            "transfer_to_holding, sitoo_store_stock or sitoo_return_record",
            "status": "done or adopted",
            "document": "the document's number (credit note CR-..., transfer TR-...) or, without one, its id",
            "target_ref": "the document's id in the target system",
            "return_id": "the Reveni return",
            "item_id": "the return item, for stock postings",
            "exception_key": "the exception the posting fixes",
            "amount": "the document's money (credit notes, Sitoo return records); NULL for stock movements",
            "currency": "amount's currency: the sale's for a credit note, the Sitoo order's for a return record",
        },
    ),
    "posted_yesterday": (
        "View, grain: one row per system, action and currency: the documents the pipeline posted yesterday (UTC).",
        {
            "day": "yesterday (UTC)",
            "system": "cin7 or sitoo",
            "action": "the kind of document",
            "currency": "amount's currency; NULL for stock movements",
            "documents": "documents posted",
            "amount": "their total money, in currency; NULL for stock movements",
        },
    ),
}


def comment_statements(schema: str = "recon_build") -> sql.Composed:
    """COMMENT ON every published table, view and column, as one script (no parameters)."""
    steps = []
    for name, (about, columns) in COMMENTS.items():
        kind = sql.SQL("VIEW" if name in VIEWS else "TABLE")
        relation = sql.Identifier(schema, name)
        steps.append(sql.SQL("COMMENT ON {} {} IS {}").format(kind, relation, sql.Literal(about)))
        steps += [
            sql.SQL("COMMENT ON COLUMN {} IS {}").format(sql.Identifier(schema, name, column), sql.Literal(text))
            for column, text in columns.items()
        ]
    return sql.SQL(";\n").join(steps)


# Each audit (sql/audits/<file>.sql) returns one row: (ok, detail).
AUDITS = {
    "every item in scope is published once": "audits/items_published_once",
    "every return in scope is published once": "audits/returns_published_once",
    "refunds add up": "audits/refunds_add_up",
    "returns add up": "audits/returns_add_up",
}
