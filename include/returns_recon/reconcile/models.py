"""The intermediate models (int_...), as SQL over staging, built into temporary tables of the
reconciliation transaction. Each is one statement; together they state what every leg of every
return item should show and what it does show. Parameters: %(window_days)s, %(tolerance)s,
%(release_sla)s, %(restock_sla)s (hours); {match_column} is the configured sale field.

Set-based throughout: every source table is aggregated once by its join key and hash-joined; no
per-row subqueries. The two last models are wide (one row per return, one per item, with every
leg), so detection and publication each read them once without joining again."""

from __future__ import annotations

INT_RETURNS = """
CREATE UNLOGGED TABLE int_returns AS
SELECT r.return_id, r.order_external_id, r.return_type, r.is_instant, r.status, r.amount, r.currency,
       r.return_point_id, r.return_point_name, r.received_at, r.created_at, r.updated_at,
       m.kind, m.problem AS map_problem, (m.return_point_id IS NOT NULL AND m.problem IS NULL) AS map_ok,
       m.cin7_holding_location AS holding, m.cin7_sellable_location AS sellable, m.sitoo_warehouse_id,
       s.sale_id, s.sales_matched,
       coalesce(f.refunded, 0) AS refunded, f.refund_currency, f.refund_count, f.last_refund_at
FROM staging.stg_reveni__returns r
LEFT JOIN staging.int_location_map__checked m USING (return_point_id)
LEFT JOIN (
    SELECT s.{match_column} AS order_ref, min(s.sale_id) AS sale_id, count(*) AS sales_matched
    FROM staging.stg_cin7__sales s
    WHERE coalesce(s.external_id, '') NOT LIKE 'reveni-exchange:%%'
    GROUP BY 1
) s ON s.order_ref = r.order_external_id
LEFT JOIN (
    SELECT return_id, sum(amount) FILTER (WHERE status = 'paid') AS refunded, min(currency) AS refund_currency,
           count(*) FILTER (WHERE status = 'paid') AS refund_count, max(refunded_at) AS last_refund_at
    FROM staging.stg_reveni__refunds GROUP BY return_id
) f USING (return_id)
WHERE r.created_at >= now() - make_interval(days => %(window_days)s);
CREATE UNIQUE INDEX ON int_returns (return_id);
ANALYZE int_returns;
"""

# Credit notes made by hand (AUTHORISED, without our memo) on the sale of a refunded return, each with the
# refunded returns of its sale it matches (operating-model.md §1): the same SKUs with the same quantities
# (summed per SKU) as the return's refunded items, the refunded total (±tolerance) and the same currency.
# Attributed to the return when exactly one matches; otherwise unattributed (return_id NULL), raised as
# unattributed_credit_note on every refunded return of the sale. Few rows: only sales with such a note.
INT_NOTES_BY_HAND = """
CREATE UNLOGGED TABLE int_notes_by_hand AS
WITH notes AS (
    SELECT c.task_id, c.sale_id, c.credit_note_number, c.total, c.currency, c.credit_note_date
    FROM staging.stg_cin7__credit_notes c
    WHERE coalesce(c.memo, '') NOT LIKE 'reveni:%%' AND c.status = 'AUTHORISED'
),
refunded AS (
    -- the refunded returns of those notes' sales
    SELECT r.return_id, r.sale_id, r.is_instant, r.refunded, r.refund_currency
    FROM int_returns r
    WHERE r.refunded > 0 AND r.sale_id IN (SELECT sale_id FROM notes)
),
note_sig AS (
    SELECT task_id, string_agg(sku || '*' || trim_scale(quantity)::text, ',' ORDER BY sku) AS sig
    FROM (SELECT l.task_id, l.sku, sum(l.quantity) AS quantity
          FROM staging.stg_cin7__credit_note_lines l JOIN notes n USING (task_id)
          WHERE n.sale_id IN (SELECT sale_id FROM refunded)
          GROUP BY l.task_id, l.sku) l
    GROUP BY task_id
),
return_sig AS (
    -- the refunded items: accepted ones, or all of an instant return; exchanged items are not refunded
    SELECT return_id, string_agg(sku || '*' || trim_scale(quantity)::text, ',' ORDER BY sku) AS sig
    FROM (SELECT i.return_id, i.sku, sum(i.quantity)::numeric AS quantity
          FROM staging.stg_reveni__return_items i JOIN refunded r USING (return_id)
          WHERE i.exchange_sku IS NULL AND (r.is_instant OR i.validation_status = 'accepted')
          GROUP BY i.return_id, i.sku) i
    GROUP BY return_id
),
candidates AS (
    -- each note against each refunded return of its sale
    SELECT n.task_id, r.return_id,
           (g.sig = w.sig AND abs(n.total - r.refunded) <= %(tolerance)s AND n.currency = r.refund_currency) AS matches
    FROM notes n
    JOIN refunded r USING (sale_id)
    LEFT JOIN note_sig g USING (task_id)
    LEFT JOIN return_sig w ON w.return_id = r.return_id
)
SELECT n.task_id, n.sale_id, n.credit_note_number, n.total, n.currency, n.credit_note_date,
       CASE WHEN m.returns_matched = 1 THEN m.matched[1] END AS return_id,
       m.returns_matched, m.matched AS matched_returns, m.sale_returns
FROM notes n
JOIN (SELECT task_id, count(*) FILTER (WHERE matches) AS returns_matched,
             coalesce(array_agg(return_id ORDER BY return_id) FILTER (WHERE matches), ARRAY[]::text[]) AS matched,
             array_agg(return_id ORDER BY return_id) AS sale_returns
      FROM candidates GROUP BY task_id) m USING (task_id);
ANALYZE int_notes_by_hand;
"""

# Credit notes attributed to a return: by our memo, or made by hand and matched (int_notes_by_hand).
INT_CREDIT_NOTES = """
CREATE UNLOGGED TABLE int_credit_notes AS
WITH attributed AS (
    SELECT task_id, substr(memo, 8) AS return_id, 'memo'::text AS matched_by
    FROM staging.stg_cin7__credit_notes WHERE memo LIKE 'reveni:%%'
    UNION ALL
    SELECT task_id, return_id, 'sale_sku_quantity_amount' FROM int_notes_by_hand WHERE return_id IS NOT NULL
)
SELECT c.task_id, a.return_id, a.matched_by, c.sale_id, c.credit_note_number, c.status,
       -- the restock state is the note's saleCreditNoteList row's (apib L20649), not a field of the note
       cl.restock_status, c.total, c.tax, c.total_before_tax, c.currency, c.credit_note_date
FROM attributed a
JOIN staging.stg_cin7__credit_notes c USING (task_id)
LEFT JOIN staging.stg_cin7__credit_note_list cl
       ON cl.sale_id = c.sale_id AND cl.credit_note_number = coalesce(c.credit_note_number, '');
CREATE INDEX ON int_credit_notes (return_id);
ANALYZE int_credit_notes;
"""


def tax_rate(tax: str, total: str) -> str:
    """SQL: the tax rate of a sale line, the simplest one (2, 3, else 4 decimals) that gives the line's tax from its
    total. The line's tax is rounded to the cent, so tax / total alone is off in the 4th decimal (10.97 / 52.22 =
    0.2101 for 21%), and that rate applied to part of the line's quantity gives a cent per line that the invoice
    never charged: a credit note that credits exactly what was charged was raised as credit_note_tax_mismatch
    (operating-model.md §2: "lines and tax taken from the original sale's invoice lines")."""
    exact = f"({tax} / nullif({total}, 0))"
    return (
        f"CASE WHEN round({total} * round({exact}, 2), 2) = {tax} THEN round({exact}, 2) "
        f"WHEN round({total} * round({exact}, 3), 2) = {tax} THEN round({exact}, 3) ELSE round({exact}, 4) END"
    )


# The tax the credit note should carry: each line's quantity at the original invoice line's price
# and tax rate (tax rounded per line, as on the invoice).
INT_CREDIT_NOTE_TAX = (
    """
CREATE UNLOGGED TABLE int_credit_note_tax AS
SELECT m.task_id, sum(round(round(m.quantity * m.price, 2) * m.rate, 2)) AS expected_tax
FROM (
    -- each credit note line against the first invoice line of its SKU on the sale
    SELECT DISTINCT ON (l.task_id, l.line_no) l.task_id, l.quantity, s.price,
           """
    + tax_rate("s.tax", "s.total")
    + """ AS rate
    FROM int_credit_notes c
    JOIN staging.stg_cin7__credit_note_lines l USING (task_id)
    JOIN staging.stg_cin7__sale_lines s ON s.sale_id = c.sale_id AND s.sku = l.sku AND s.document <> 'order'
    WHERE c.status = 'AUTHORISED'
    ORDER BY l.task_id, l.line_no, s.document, s.line_no
) m
GROUP BY m.task_id;
"""
)

# The stock legs of the items, each aggregated from its own side against the returns: restocks
# riding on the return's credit notes (by return and SKU); transfers and Sitoo transactions
# referencing the item ('reveni:<return>:<item>', a transfer's reference may carry a suffix after a
# space). Kept as tables of their own so the items join them in one parallel pass.
INT_ITEM_RESTOCKS = """
CREATE UNLOGGED TABLE int_item_restocks AS
SELECT c.return_id, l.sku,
       sum(l.quantity) FILTER (WHERE l.restock_location = r.holding) AS to_holding,
       sum(l.quantity) FILTER (WHERE l.restock_location = r.sellable) AS to_sellable,
       sum(l.quantity) FILTER (WHERE l.restock_location NOT IN (r.holding, r.sellable)) AS elsewhere
FROM int_credit_notes c
JOIN staging.stg_cin7__restocks l ON l.task_id = c.task_id AND c.restock_status = 'AUTHORISED'
JOIN int_returns r ON r.return_id = c.return_id
GROUP BY c.return_id, l.sku;
ANALYZE int_item_restocks;
"""

INT_ITEM_REFERENCES = """
CREATE UNLOGGED TABLE int_item_references AS
SELECT split_part(m.reference, ':', 2) AS return_id,
       -- the rest of the reference, whole: 'reveni:<return>:<item>'
       substr(m.reference, length(split_part(m.reference, ':', 2)) + 9) AS item_id,
       count(*) FILTER (WHERE m.leg = 'transfer' AND m.to_location = r.sellable) AS into_sellable,
       count(*) FILTER (WHERE m.leg = 'transfer' AND m.from_location = r.sellable) AS out_of_sellable,
       min(m.at) FILTER (WHERE m.leg = 'transfer' AND m.to_location = r.sellable) AS first_release_at,
       count(*) FILTER (WHERE m.leg = 'sitoo') AS sitoo_transactions,
       bool_or(m.warehouse_id = r.sitoo_warehouse_id) FILTER (WHERE m.leg = 'sitoo') AS sitoo_at_mapped,
       bool_or(m.warehouse_id IS DISTINCT FROM r.sitoo_warehouse_id) FILTER (WHERE m.leg = 'sitoo')
           AS sitoo_elsewhere,
       min(m.at) FILTER (WHERE m.leg = 'sitoo' AND m.warehouse_id = r.sitoo_warehouse_id) AS sitoo_first_at
FROM (SELECT 'transfer' AS leg, split_part(reference, ' ', 1) AS reference, to_location, from_location,
             completion_date AS at, NULL::integer AS warehouse_id
      FROM staging.stg_cin7__stock_transfers
      WHERE status = 'COMPLETED' AND reference LIKE 'reveni:%%'
      UNION ALL
      SELECT 'sitoo', external_id, NULL, NULL, date_created, warehouse_id
      FROM staging.stg_sitoo__warehouse_transactions
      WHERE external_id LIKE 'reveni:%%') m
JOIN int_returns r ON r.return_id = split_part(m.reference, ':', 2)
GROUP BY m.reference;
ANALYZE int_item_references;
"""

# Every item of the window with its return's attributes and its stock legs.
INT_ITEMS = """
CREATE UNLOGGED TABLE int_items AS
SELECT i.item_id, i.return_id, i.sku, i.quantity, i.exchange_sku, i.validation_status, i.restock, i.validated_at,
       pc.sku IS NULL AS unknown_cin7, ps.sku IS NULL AS unknown_sitoo,
       r.kind, r.map_ok, r.sale_id, r.received_at, r.holding, r.sellable, r.sitoo_warehouse_id,
       coalesce(rs.to_holding, 0) AS restocked_to_holding,
       coalesce(rs.to_sellable, 0) AS restocked_to_sellable,
       coalesce(rs.elsewhere, 0) AS restocked_elsewhere,
       coalesce(x.into_sellable, 0) AS transfers_into_sellable,
       coalesce(x.out_of_sellable, 0) AS transfers_out_of_sellable,
       x.first_release_at, coalesce(x.sitoo_transactions, 0) AS sitoo_transactions, x.sitoo_at_mapped,
       x.sitoo_elsewhere, x.sitoo_first_at
FROM staging.stg_reveni__return_items i
JOIN int_returns r USING (return_id)
LEFT JOIN int_item_restocks rs ON rs.return_id = i.return_id AND rs.sku = i.sku
LEFT JOIN int_item_references x ON x.return_id = i.return_id AND x.item_id = i.item_id
LEFT JOIN (SELECT DISTINCT sku FROM staging.stg_cin7__products) pc ON pc.sku = i.sku
LEFT JOIN (SELECT DISTINCT sku FROM staging.stg_sitoo__products) ps ON ps.sku = i.sku;
ANALYZE int_items;
"""

# Every return with its finance, store and exchange legs.
INT_RETURN_LEGS = """
CREATE UNLOGGED TABLE int_return_legs AS
WITH credits AS (
    SELECT c.return_id,
           count(*) FILTER (WHERE c.status = 'AUTHORISED') AS authorised_notes,
           sum(c.total) FILTER (WHERE c.status = 'AUTHORISED') AS credited,
           sum(c.tax) FILTER (WHERE c.status = 'AUTHORISED') AS credited_tax,
           sum(t.expected_tax) AS expected_tax,
           min(c.currency) FILTER (WHERE c.status = 'AUTHORISED') AS credit_currency
    FROM int_credit_notes c
    LEFT JOIN int_credit_note_tax t USING (task_id)
    GROUP BY c.return_id
),
sitoo AS (
    SELECT external_id AS return_id, count(*) AS return_records, sum(payments_total) AS pos_paid,
           sum(total_gross) AS record_total, min(order_date) AS recorded_at
    FROM staging.stg_sitoo__orders GROUP BY external_id
),
unattributed AS (
    -- AUTHORISED notes made by hand on the return's sale that no return can be attributed (few)
    SELECT sale_id, count(*) AS unattributed_notes, sum(total) AS unattributed_credited
    FROM int_notes_by_hand WHERE return_id IS NULL GROUP BY sale_id
),
exchange_wanted AS (
    SELECT DISTINCT return_id FROM int_items WHERE exchange_sku IS NOT NULL
),
exchange_orders AS (
    SELECT DISTINCT ON (external_id) substr(external_id, 17) AS return_id, sale_id, order_status
    FROM staging.stg_cin7__sales WHERE external_id LIKE 'reveni-exchange:%%'
    ORDER BY external_id, sale_id
)
SELECT r.*,
       coalesce(c.authorised_notes, 0) AS authorised_notes, c.credited, c.credited_tax, c.expected_tax,
       c.credit_currency, coalesce(u.unattributed_notes, 0) AS unattributed_notes, u.unattributed_credited,
       coalesce(x.return_records, 0) AS return_records, x.pos_paid, x.record_total, x.recorded_at,
       (w.return_id IS NOT NULL AND r.status NOT IN ('cancelled', 'incomplete')) AS exchange_requested,
       e.sale_id AS exchange_sale_id, e.order_status AS exchange_order_status
FROM int_returns r
LEFT JOIN credits c USING (return_id)
LEFT JOIN unattributed u ON u.sale_id = r.sale_id
LEFT JOIN sitoo x USING (return_id)
LEFT JOIN exchange_wanted w USING (return_id)
LEFT JOIN exchange_orders e USING (return_id);
ANALYZE int_return_legs;
"""

MODELS = (
    INT_RETURNS,
    INT_NOTES_BY_HAND,
    INT_CREDIT_NOTES,
    INT_CREDIT_NOTE_TAX,
    INT_ITEM_RESTOCKS,
    INT_ITEM_REFERENCES,
    INT_ITEMS,
    INT_RETURN_LEGS,
)
