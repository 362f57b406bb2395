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

OPEN = "state IN ('open', 'acknowledged')"

# the legs that belong to the return as a whole (r: int_return_legs)
CREDIT_NOTE_LEG = """CASE WHEN r.sale_id IS NULL THEN 'blocked'
            WHEN r.authorised_notes > 1 THEN 'duplicate'
            -- a note by hand on the sale that no return can be attributed: the credit may be twice
            WHEN r.refunded > 0 AND r.unattributed_notes > 0 THEN 'unattributed'
            WHEN r.refunded > 0 AND r.authorised_notes = 0 THEN 'missing'
            WHEN r.refunded = 0 AND r.authorised_notes > 0 THEN 'unexpected'
            WHEN r.refunded > 0 AND abs(r.credited - r.refunded) > %(tolerance)s THEN 'mismatch'
            WHEN r.refunded > 0 THEN 'ok' ELSE 'not_due' END"""
SITOO_RECORD_LEG = """CASE WHEN r.kind IS DISTINCT FROM 'store' THEN 'not_applicable'
            WHEN NOT r.map_ok THEN 'blocked'
            WHEN r.refunded = 0 THEN 'not_due'
            WHEN r.return_records > 0 THEN 'ok' ELSE 'missing' END"""
# the currency of a return's money: the refund's when refunded, else the credit note's, else the return's
MONEY_CURRENCY = ("CASE WHEN r.refunded > 0 THEN r.refund_currency "
                  "ELSE coalesce(r.credit_currency, r.refund_currency, r.currency) END")  # fmt: skip
CURRENCIES_DIFFER = ("(r.refunded > 0 AND r.authorised_notes > 0 "
                     "AND r.credit_currency IS DISTINCT FROM r.refund_currency)")  # fmt: skip

FCT_RETURNS = f"""
CREATE TABLE recon_build.fct_returns AS
SELECT r.return_id, r.order_external_id, r.sale_id, r.status AS return_status, r.return_type, r.is_instant,
       r.kind AS return_point_kind, r.return_point_id, r.created_at, r.received_at, r.last_refund_at,
       coalesce(n.items, 0) AS items, r.currency AS return_currency, {MONEY_CURRENCY} AS currency,
       coalesce(r.refund_count, 0) AS refunds, r.refunded,
       r.authorised_notes AS credit_notes, coalesce(r.credited, 0) AS credited, r.credit_currency,
       s.customer_currency AS sale_currency, {CURRENCIES_DIFFER} AS currencies_differ,
       CASE WHEN NOT {CURRENCIES_DIFFER} THEN coalesce(r.credited, 0) - r.refunded END AS credited_minus_refunded,
       r.unattributed_notes, coalesce(r.unattributed_credited, 0) AS unattributed_credited,
       r.return_records AS sitoo_return_records,
       {CREDIT_NOTE_LEG} AS credit_note_leg,
       {SITOO_RECORD_LEG} AS sitoo_record_leg,
       coalesce(o.types, '{{}}'::text[]) AS open_exception_types,
       CASE WHEN o.types IS NOT NULL THEN 'exception'
            WHEN r.status IN ('accepted', 'partly_accepted', 'rejected', 'cancelled') THEN 'reconciled'
            ELSE 'in_progress' END AS overall_status,
       floor(date_part('epoch', now() - r.created_at) / 86400)::int AS age_days
FROM int_return_legs r
LEFT JOIN (SELECT return_id, count(*) AS items FROM int_items GROUP BY return_id) n USING (return_id)
LEFT JOIN staging.stg_cin7__sales s ON s.sale_id = r.sale_id
-- open exceptions of the return and of its items
LEFT JOIN (
    SELECT return_id, array_agg(DISTINCT exception_type ORDER BY exception_type) AS types
    FROM recon.exceptions WHERE {OPEN} AND return_id IS NOT NULL GROUP BY return_id
) o USING (return_id);
ALTER TABLE recon_build.fct_returns ADD PRIMARY KEY (return_id);
"""

FCT_RETURN_RECONCILIATION = f"""
CREATE TABLE recon_build.fct_return_reconciliation AS
SELECT i.item_id, i.return_id, r.order_external_id, r.sale_id, i.sku, i.quantity, r.currency, r.status AS return_status,
       i.validation_status, i.restock, r.kind AS return_point_kind, r.return_point_id, r.is_instant,
       r.created_at, r.received_at, i.validated_at,
       {CREDIT_NOTE_LEG} AS credit_note_leg,
       CASE WHEN r.kind IS DISTINCT FROM 'warehouse' THEN 'not_applicable'
            WHEN NOT r.map_ok OR i.unknown_cin7 THEN 'blocked'
            WHEN r.received_at IS NULL THEN 'not_due'
            WHEN i.restocked_to_holding + i.restocked_to_sellable + i.restocked_elsewhere > 0 THEN 'ok'
            ELSE 'missing' END AS restock_leg,
       CASE WHEN r.kind IS DISTINCT FROM 'warehouse' THEN 'not_applicable'
            WHEN NOT r.map_ok OR i.unknown_cin7 THEN 'blocked'
            WHEN i.validation_status = 'accepted' AND i.restock THEN
                 CASE WHEN i.restocked_to_sellable + (i.transfers_into_sellable - i.transfers_out_of_sellable)
                           * i.quantity > 0 THEN 'released'
                      WHEN i.validated_at + %(release_sla)s < now() THEN 'overdue' ELSE 'pending' END
            ELSE 'not_due' END AS release_leg,
       {SITOO_RECORD_LEG} AS sitoo_record_leg,
       CASE WHEN r.kind IS DISTINCT FROM 'store' THEN 'not_applicable'
            WHEN NOT r.map_ok OR i.unknown_sitoo THEN 'blocked'
            WHEN i.sitoo_at_mapped THEN 'ok'
            WHEN i.sitoo_elsewhere THEN 'wrong_location'
            WHEN i.validation_status = 'accepted' AND i.restock THEN
                 CASE WHEN i.validated_at + %(restock_sla)s < now() THEN 'missing' ELSE 'pending' END
            ELSE 'not_due' END AS sitoo_stock_leg,
       CASE WHEN i.exchange_sku IS NULL THEN 'not_applicable'
            WHEN r.exchange_sale_id IS NULL THEN 'missing'
            ELSE lower(coalesce(r.exchange_order_status, 'unknown')) END AS exchange_leg,
       CASE WHEN o.types IS NULL AND ro.types IS NULL THEN '{{}}'::text[]
            WHEN ro.types IS NULL THEN o.types
            WHEN o.types IS NULL THEN ro.types
            ELSE ARRAY(SELECT DISTINCT t FROM unnest(o.types || ro.types) t ORDER BY t) END AS open_exception_types,
       CASE WHEN o.types IS NOT NULL OR ro.types IS NOT NULL THEN 'exception'
            WHEN r.status IN ('accepted', 'partly_accepted', 'rejected', 'cancelled') THEN 'reconciled'
            ELSE 'in_progress' END AS overall_status,
       floor(date_part('epoch', now() - r.created_at) / 86400)::int AS age_days
FROM int_items i
JOIN int_return_legs r USING (return_id)
-- open exceptions of the item, and of its return as a whole
LEFT JOIN (
    SELECT return_id, item_id, array_agg(DISTINCT exception_type ORDER BY exception_type) AS types
    FROM recon.exceptions WHERE {OPEN} AND item_id IS NOT NULL GROUP BY return_id, item_id
) o ON o.return_id = i.return_id AND o.item_id = i.item_id
LEFT JOIN (
    SELECT return_id, array_agg(DISTINCT exception_type ORDER BY exception_type) AS types
    FROM recon.exceptions WHERE {OPEN} AND item_id IS NULL GROUP BY return_id
) ro ON ro.return_id = i.return_id;
ALTER TABLE recon_build.fct_return_reconciliation ADD PRIMARY KEY (item_id);
"""

REFUND_JOURNAL = """
CREATE TABLE recon_build.refund_journal AS
WITH refunds AS (
    SELECT (coalesce(f.refunded_at, r.created_at) AT TIME ZONE 'UTC')::date AS day, f.currency, count(*) AS refunds,
           sum(f.amount) AS refunded
    FROM staging.stg_reveni__refunds f JOIN int_returns r USING (return_id)
    WHERE f.status = 'paid' GROUP BY 1, 2
), credits AS (
    SELECT (coalesce(c.credit_note_date, now()) AT TIME ZONE 'UTC')::date AS day, c.currency, count(*) AS credit_notes,
           sum(c.total) AS credited
    FROM int_credit_notes c WHERE c.status = 'AUTHORISED' GROUP BY 1, 2
), unattributed AS (
    -- AUTHORISED notes made by hand on the sales of refunded returns that no return can be attributed
    SELECT (coalesce(u.credit_note_date, now()) AT TIME ZONE 'UTC')::date AS day, u.currency,
           count(*) AS unattributed_notes, sum(u.total) AS unattributed_credited
    FROM int_notes_by_hand u WHERE u.return_id IS NULL GROUP BY 1, 2
), records AS (
    SELECT (x.recorded_at AT TIME ZONE 'UTC')::date AS day, x.currency, sum(x.return_records) AS sitoo_records,
           -sum(x.record_total) AS sitoo_recorded
    FROM int_return_legs x WHERE x.return_records > 0 GROUP BY 1, 2
)
SELECT day, currency,
       coalesce(refunds, 0) AS reveni_refunds, coalesce(refunded, 0) AS reveni_refunded,
       coalesce(credit_notes, 0) AS cin7_credit_notes, coalesce(credited, 0) AS cin7_credited,
       coalesce(sitoo_records, 0) AS sitoo_return_records, coalesce(sitoo_recorded, 0) AS sitoo_recorded,
       coalesce(credited, 0) - coalesce(refunded, 0) AS credited_minus_refunded,
       coalesce(unattributed_notes, 0) AS cin7_unattributed_notes,
       coalesce(unattributed_credited, 0) AS cin7_unattributed_credited
FROM refunds FULL JOIN credits USING (day, currency) FULL JOIN unattributed USING (day, currency)
FULL JOIN records USING (day, currency);
ALTER TABLE recon_build.refund_journal ADD PRIMARY KEY (day, currency);
"""

DAILY_SUMMARY = f"""
CREATE TABLE recon_build.daily_summary AS
WITH per_day AS (
    SELECT (r.created_at AT TIME ZONE 'UTC')::date AS day, r.currency, count(*) AS returns,
           sum(r.refunded) AS refunded, sum(coalesce(r.credited, 0)) AS credited
    FROM int_return_legs r GROUP BY 1, 2
), open_exceptions AS (
    SELECT (r.created_at AT TIME ZONE 'UTC')::date AS day, r.currency, sum(t.n) AS open_exceptions,
           jsonb_object_agg(t.exception_type, t.n) AS by_type
    FROM (SELECT q.return_id, q.exception_type, count(*) AS n FROM recon.exceptions q
          WHERE q.{OPEN} GROUP BY 1, 2) t
    JOIN int_returns r USING (return_id)
    GROUP BY 1, 2
)
SELECT p.day, p.currency, p.returns, p.refunded, p.credited, p.credited - p.refunded AS difference,
       coalesce(o.open_exceptions, 0)::bigint AS open_exceptions, coalesce(o.by_type, '{{}}'::jsonb) AS open_by_type
FROM per_day p
LEFT JOIN open_exceptions o USING (day, currency);
ALTER TABLE recon_build.daily_summary ADD PRIMARY KEY (day, currency);
"""

TABLES = ("fct_returns", "fct_return_reconciliation", "refund_journal", "daily_summary")
BUILD = (FCT_RETURNS, FCT_RETURN_RECONCILIATION, REFUND_JOURNAL, DAILY_SUMMARY)

# --- views: finance's questions (built after the tables, over them; no parameters) ----------------------------

REFUNDS_WITHOUT_CREDIT_NOTE = """
CREATE VIEW recon_build.refunds_without_credit_note AS
SELECT currency, count(*) AS returns, sum(refunded) AS refunded, min(last_refund_at) AS oldest_refund_at,
       count(*) FILTER (WHERE sale_id IS NULL) AS returns_without_sale,
       count(*) FILTER (WHERE unattributed_notes > 0) AS returns_with_unattributed_note
FROM recon_build.fct_returns
WHERE refunded > 0 AND credit_notes = 0
GROUP BY currency;
"""

# ages from the return's creation in Reveni, at the moment of the query
OPEN_EXCEPTIONS_BY_RETURN_AGE = f"""
CREATE VIEW recon_build.open_exceptions_by_return_age AS
WITH aged AS (
    SELECT e.owner, e.exception_type, e.severity, e.state, e.return_id, f.created_at,
           floor(date_part('epoch', now() - f.created_at) / 86400)::int AS age
    FROM recon.exceptions e
    LEFT JOIN recon_build.fct_returns f USING (return_id)
    WHERE e.{OPEN}
), bucketed AS (
    SELECT a.*,
           CASE WHEN a.created_at IS NOT NULL THEN
                CASE WHEN a.age < 7 THEN 0 WHEN a.age < 14 THEN 7 WHEN a.age < 30 THEN 14 WHEN a.age < 60 THEN 30
                     ELSE 60 END END AS bucket
    FROM aged a
)
SELECT owner, exception_type, severity,
       CASE bucket WHEN 0 THEN '0-6 days' WHEN 7 THEN '7-13 days' WHEN 14 THEN '14-29 days'
                   WHEN 30 THEN '30-59 days' WHEN 60 THEN '60+ days'
                   ELSE CASE WHEN return_id IS NULL THEN 'no return' ELSE 'older than the window' END
       END AS return_age,
       bucket AS return_age_from_days,
       count(*) AS exceptions, count(*) FILTER (WHERE state = 'acknowledged') AS acknowledged,
       count(DISTINCT return_id) AS returns, min(created_at) AS oldest_return_created_at
FROM bucketed
GROUP BY 1, 2, 3, 4, 5;
"""

# a document counts as posted when its posting ended done (sent) or adopted (found on the target after an
# unanswered send), at the first such step of its log; days in UTC like every other table
POSTED_DOCUMENTS = """
CREATE VIEW recon_build.posted_documents AS
SELECT p.posting_key, l.posted_at, (l.posted_at AT TIME ZONE 'UTC')::date AS posted_on, p.system, p.action,
       p.status, coalesce(p.target_number, p.target_ref) AS document, p.target_ref, p.return_id, p.item_id,
       p.exception_key, p.amount,
       CASE WHEN p.amount IS NULL THEN NULL
            WHEN p.system = 'sitoo' THEN p.payload ->> 'currencycode'
            ELSE f.sale_currency END AS currency
FROM recon.postings p
JOIN (SELECT posting_key, min(at) AS posted_at FROM recon.posting_log
      WHERE outcome IN ('done', 'adopted') GROUP BY posting_key) l USING (posting_key)
LEFT JOIN recon_build.fct_returns f USING (return_id)
WHERE p.status IN ('done', 'adopted');
"""

POSTED_YESTERDAY = """
CREATE VIEW recon_build.posted_yesterday AS
SELECT posted_on AS day, system, action, currency, count(*) AS documents, sum(amount) AS amount
FROM recon_build.posted_documents
WHERE posted_on = (now() AT TIME ZONE 'UTC')::date - 1
GROUP BY 1, 2, 3, 4;
"""

# in the order they are built (a view after the views it reads); dropped in the reverse order
# (money at risk per owner and currency is not rebuilt here: migration 0018's views recon.money_at_risk and
# recon.money_at_risk_by_return, over recon.exception_details, which the exception mails read too)
VIEWS = ("refunds_without_credit_note", "open_exceptions_by_return_age", "posted_documents", "posted_yesterday")
VIEW_BUILD = (REFUNDS_WITHOUT_CREDIT_NOTE, OPEN_EXCEPTIONS_BY_RETURN_AGE, POSTED_DOCUMENTS, POSTED_YESTERDAY)
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
            "action": "create_credit_note, transfer_to_sellable, transfer_to_holding, sitoo_store_stock or "
            "sitoo_return_record",
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
        steps += [sql.SQL("COMMENT ON COLUMN {} IS {}").format(sql.Identifier(schema, name, column), sql.Literal(text))
                  for column, text in columns.items()]  # fmt: skip
    return sql.SQL(";\n").join(steps)


# Each audit returns one row: (ok, detail).
AUDITS = {
    "every item in scope is published once": """
        SELECT (SELECT count(*) FROM recon_build.fct_return_reconciliation) = (SELECT count(*) FROM int_items),
               format('%%s published, %%s in scope', (SELECT count(*) FROM recon_build.fct_return_reconciliation),
                      (SELECT count(*) FROM int_items))""",
    "every return in scope is published once": """
        SELECT (SELECT count(*) FROM recon_build.fct_returns) = (SELECT count(*) FROM int_returns),
               format('%%s published, %%s in scope', (SELECT count(*) FROM recon_build.fct_returns),
                      (SELECT count(*) FROM int_returns))""",
    "refunds add up": """
        SELECT coalesce((SELECT sum(refunded) FROM recon_build.daily_summary), 0)
               = coalesce((SELECT sum(reveni_refunded) FROM recon_build.refund_journal), 0)
           AND coalesce((SELECT sum(refunded) FROM recon_build.daily_summary), 0)
               = coalesce((SELECT sum(refunded) FROM recon_build.fct_returns), 0),
               'daily_summary.refunded = refund_journal.reveni_refunded = fct_returns.refunded'""",
    "returns add up": """
        SELECT coalesce((SELECT sum(returns) FROM recon_build.daily_summary), 0) = (SELECT count(*) FROM int_returns),
               'daily_summary.returns = returns in scope'""",
}
