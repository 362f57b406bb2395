"""The intermediate models (int_...), as SQL over staging, built into temporary tables of the
reconciliation transaction. Each is one statement; together they state what every leg of every
return item should show and what it does show. Parameters: %(window_days)s, %(tolerance)s,
%(release_sla)s, %(restock_sla)s (hours); {match_column} is the configured sale field.

Set-based throughout: every source table is aggregated once by its join key and hash-joined; no
per-row subqueries. The two last models are wide (one row per return, one per item, with every
leg), so detection and publication each read them once without joining again."""

from __future__ import annotations

INT_RETURNS = """
CREATE TEMP TABLE int_returns ON COMMIT DROP AS
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

# Credit notes attributed to a return: by our memo, or (made by hand, no memo) on the matched sale
# with the same SKUs and quantities as the refunded items and the refunded total.
INT_CREDIT_NOTES = """
CREATE TEMP TABLE int_credit_notes ON COMMIT DROP AS
WITH memo AS (
    SELECT c.task_id, substr(c.memo, 8) AS return_id, 'memo'::text AS matched_by
    FROM staging.stg_cin7__credit_notes c
    WHERE c.memo LIKE 'reveni:%%'
),
signature AS (
    SELECT c.task_id, string_agg(l.sku || '*' || trim_scale(l.quantity)::text, ',' ORDER BY l.sku, l.quantity) AS sig
    FROM staging.stg_cin7__credit_notes c
    JOIN staging.stg_cin7__credit_note_lines l USING (task_id)
    WHERE coalesce(c.memo, '') NOT LIKE 'reveni:%%' AND c.status = 'AUTHORISED'
    GROUP BY c.task_id
),
wanted AS (
    SELECT r.return_id, r.sale_id, r.refunded,
           string_agg(i.sku || '*' || i.quantity::text, ',' ORDER BY i.sku, i.quantity) AS sig
    FROM int_returns r JOIN staging.stg_reveni__return_items i USING (return_id)
    WHERE i.exchange_sku IS NULL AND r.refunded > 0 AND (r.is_instant OR i.validation_status = 'accepted')
      AND r.sale_id IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM memo WHERE memo.return_id = r.return_id)
      -- only where a note made by hand exists on the sale: the others cannot match
      AND r.sale_id IN (SELECT c.sale_id FROM staging.stg_cin7__credit_notes c JOIN signature g USING (task_id))
    GROUP BY r.return_id, r.sale_id, r.refunded
),
by_hand AS (
    SELECT DISTINCT ON (w.return_id) c.task_id, w.return_id, 'sale_sku_quantity_amount'::text AS matched_by
    FROM wanted w
    JOIN staging.stg_cin7__credit_notes c ON c.sale_id = w.sale_id
    JOIN signature g ON g.task_id = c.task_id AND g.sig = w.sig
    WHERE abs(c.total - w.refunded) <= %(tolerance)s
    ORDER BY w.return_id, c.task_id
)
SELECT c.task_id, a.return_id, a.matched_by, c.sale_id, c.credit_note_number, c.status, c.restock_status,
       c.total, c.tax, c.total_before_tax, c.currency, c.credit_note_date
FROM (SELECT * FROM memo UNION ALL SELECT * FROM by_hand) a
JOIN staging.stg_cin7__credit_notes c USING (task_id);
CREATE INDEX ON int_credit_notes (return_id);
ANALYZE int_credit_notes;
"""

# The tax the credit note should carry: each line's quantity at the original invoice line's price
# and tax rate (tax rounded per line, as on the invoice).
INT_CREDIT_NOTE_TAX = """
CREATE TEMP TABLE int_credit_note_tax ON COMMIT DROP AS
SELECT m.task_id, sum(round(round(m.quantity * m.price, 2) * m.rate, 2)) AS expected_tax
FROM (
    -- each credit note line against the first invoice line of its SKU on the sale
    SELECT DISTINCT ON (l.task_id, l.line_no) l.task_id, l.quantity, s.price,
           round(s.tax / nullif(s.total, 0), 4) AS rate
    FROM int_credit_notes c
    JOIN staging.stg_cin7__credit_note_lines l USING (task_id)
    JOIN staging.stg_cin7__sale_lines s ON s.sale_id = c.sale_id AND s.sku = l.sku AND s.document <> 'order'
    WHERE c.status = 'AUTHORISED'
    ORDER BY l.task_id, l.line_no, s.document, s.line_no
) m
GROUP BY m.task_id;
"""

# Every item of the window with its stock legs: restocks riding on the return's credit notes (by
# return and SKU), transfers and Sitoo transactions referencing the item ('reveni:<return>:<item>',
# parsed once and checked whole). Each leg is aggregated from its own side against the returns
# (not the items), so the items are read and written once.
INT_ITEMS = """
CREATE TEMP TABLE int_items ON COMMIT DROP AS
WITH restocked AS (
    SELECT c.return_id, l.sku,
           sum(l.quantity) FILTER (WHERE l.restock_location = r.holding) AS to_holding,
           sum(l.quantity) FILTER (WHERE l.restock_location = r.sellable) AS to_sellable,
           sum(l.quantity) FILTER (WHERE l.restock_location NOT IN (r.holding, r.sellable)) AS elsewhere
    FROM int_credit_notes c
    JOIN staging.stg_cin7__restocks l ON l.task_id = c.task_id AND l.restock_status = 'AUTHORISED'
    JOIN int_returns r ON r.return_id = c.return_id
    GROUP BY c.return_id, l.sku
),
-- transfers and Sitoo transactions share the item reference: stacked, then aggregated once
referenced AS (
    SELECT m.reference,
           count(*) FILTER (WHERE m.leg = 'transfer' AND m.to_location = r.sellable) AS into_sellable,
           count(*) FILTER (WHERE m.leg = 'transfer' AND m.from_location = r.sellable) AS out_of_sellable,
           min(m.at) FILTER (WHERE m.leg = 'transfer' AND m.to_location = r.sellable) AS first_release_at,
           bool_or(m.warehouse_id = r.sitoo_warehouse_id) FILTER (WHERE m.leg = 'sitoo') AS sitoo_at_mapped,
           bool_or(m.warehouse_id IS DISTINCT FROM r.sitoo_warehouse_id) FILTER (WHERE m.leg = 'sitoo')
               AS sitoo_elsewhere,
           min(m.at) FILTER (WHERE m.leg = 'sitoo' AND m.warehouse_id = r.sitoo_warehouse_id) AS sitoo_first_at,
           array_agg(DISTINCT m.warehouse_id) FILTER (WHERE m.leg = 'sitoo') AS sitoo_warehouses
    FROM (SELECT 'transfer' AS leg, split_part(reference, ' ', 1) AS reference, to_location, from_location,
                 completion_date AS at, NULL::integer AS warehouse_id
          FROM staging.stg_cin7__stock_transfers
          WHERE status = 'COMPLETED' AND reference LIKE 'reveni:%%'
          UNION ALL
          SELECT 'sitoo', external_id, NULL, NULL, date_created, warehouse_id
          FROM staging.stg_sitoo__warehouse_transactions
          WHERE external_id LIKE 'reveni:%%') m
    JOIN int_returns r ON r.return_id = split_part(m.reference, ':', 2)
    GROUP BY m.reference
)
SELECT i.item_id, i.return_id, i.sku, i.quantity, i.unit_price, i.exchange_sku, i.validation_status, i.restock,
       i.validated_at,
       NOT EXISTS (SELECT 1 FROM staging.stg_cin7__products p WHERE p.sku = i.sku) AS unknown_cin7,
       NOT EXISTS (SELECT 1 FROM staging.stg_sitoo__products p WHERE p.sku = i.sku) AS unknown_sitoo,
       (i.exchange_sku IS NULL AND r.refunded > 0 AND (r.is_instant OR i.validation_status = 'accepted'))
           AS refunded_item,
       r.kind, r.map_ok, r.sale_id, r.received_at, r.holding, r.sellable, r.sitoo_warehouse_id,
       coalesce(rs.to_holding, 0) AS restocked_to_holding,
       coalesce(rs.to_sellable, 0) AS restocked_to_sellable,
       coalesce(rs.elsewhere, 0) AS restocked_elsewhere,
       coalesce(x.into_sellable, 0) AS transfers_into_sellable,
       coalesce(x.out_of_sellable, 0) AS transfers_out_of_sellable,
       x.first_release_at, x.sitoo_at_mapped, x.sitoo_elsewhere, x.sitoo_first_at, x.sitoo_warehouses
FROM staging.stg_reveni__return_items i
JOIN int_returns r USING (return_id)
LEFT JOIN restocked rs ON rs.return_id = i.return_id AND rs.sku = i.sku
LEFT JOIN referenced x ON x.reference = 'reveni:' || i.return_id || ':' || i.item_id;
ANALYZE int_items;
"""

# Every return with its finance, store and exchange legs.
INT_RETURN_LEGS = """
CREATE TEMP TABLE int_return_legs ON COMMIT DROP AS
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
       c.credit_currency,
       coalesce(x.return_records, 0) AS return_records, x.pos_paid, x.record_total, x.recorded_at,
       (w.return_id IS NOT NULL AND r.status NOT IN ('cancelled', 'incomplete')) AS exchange_requested,
       e.sale_id AS exchange_sale_id, e.order_status AS exchange_order_status
FROM int_returns r
LEFT JOIN credits c USING (return_id)
LEFT JOIN sitoo x USING (return_id)
LEFT JOIN exchange_wanted w USING (return_id)
LEFT JOIN exchange_orders e USING (return_id);
ANALYZE int_return_legs;
"""

MODELS = (INT_RETURNS, INT_CREDIT_NOTES, INT_CREDIT_NOTE_TAX, INT_ITEMS, INT_RETURN_LEGS)
