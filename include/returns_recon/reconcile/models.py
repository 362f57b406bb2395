"""The intermediate models (int_...), as SQL over staging, built into temporary tables of the
reconciliation transaction. Each is one statement; together they state what every leg of every
return item should show and what it does show. Parameters: %(window_days)s, %(tolerance)s,
%(release_sla)s, %(restock_sla)s (hours); {match_column} is the configured sale field."""

from __future__ import annotations

INT_RETURNS = """
CREATE TEMP TABLE int_returns ON COMMIT DROP AS
SELECT r.return_id, r.order_external_id, r.return_type, r.is_instant, r.status, r.amount, r.currency,
       r.return_point_id, r.received_at, r.created_at, r.updated_at,
       m.kind, m.problem AS map_problem, (m.return_point_id IS NOT NULL AND m.problem IS NULL) AS map_ok,
       m.cin7_holding_location AS holding, m.cin7_sellable_location AS sellable, m.sitoo_warehouse_id,
       s.sale_id, s.sales_matched,
       coalesce(f.refunded, 0) AS refunded, f.refund_currency, f.refund_count, f.last_refund_at
FROM staging.stg_reveni__returns r
LEFT JOIN staging.int_location_map__checked m USING (return_point_id)
LEFT JOIN LATERAL (
    SELECT min(s.sale_id) AS sale_id, count(*) AS sales_matched
    FROM staging.stg_cin7__sales s
    WHERE s.{match_column} = r.order_external_id AND coalesce(s.external_id, '') NOT LIKE 'reveni-exchange:%%'
) s ON true
LEFT JOIN (
    SELECT return_id, sum(amount) FILTER (WHERE status = 'paid') AS refunded, min(currency) AS refund_currency,
           count(*) FILTER (WHERE status = 'paid') AS refund_count, max(refunded_at) AS last_refund_at
    FROM staging.stg_reveni__refunds GROUP BY return_id
) f USING (return_id)
WHERE r.created_at >= now() - make_interval(days => %(window_days)s);
CREATE UNIQUE INDEX ON int_returns (return_id);
ANALYZE int_returns;
"""

INT_ITEMS = """
CREATE TEMP TABLE int_items ON COMMIT DROP AS
SELECT i.item_id, i.return_id, i.sku, i.quantity, i.unit_price, i.exchange_sku, i.validation_status, i.restock,
       i.validated_at,
       EXISTS (SELECT 1 FROM staging.int_master_data__mismatches x
               WHERE x.exception_type = 'unknown_sku_cin7' AND x.item_id = i.item_id) AS unknown_cin7,
       EXISTS (SELECT 1 FROM staging.int_master_data__mismatches x
               WHERE x.exception_type = 'unknown_sku_sitoo' AND x.item_id = i.item_id) AS unknown_sitoo,
       (i.exchange_sku IS NULL AND r.refunded > 0 AND (r.is_instant OR i.validation_status = 'accepted'))
           AS refunded_item
FROM staging.stg_reveni__return_items i
JOIN int_returns r USING (return_id);
CREATE UNIQUE INDEX ON int_items (item_id);
CREATE INDEX ON int_items (return_id, sku);
ANALYZE int_items;
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
    FROM int_returns r JOIN int_items i USING (return_id)
    WHERE i.refunded_item AND r.sale_id IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM memo WHERE memo.return_id = r.return_id)
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
SELECT c.task_id,
       sum(round(round(l.quantity * inv.price, 2) * inv.rate, 2)) AS expected_tax,
       count(*) FILTER (WHERE inv.sku IS NULL) AS lines_without_invoice_line
FROM int_credit_notes c
JOIN staging.stg_cin7__credit_note_lines l USING (task_id)
LEFT JOIN LATERAL (
    SELECT s.sku, s.price, round(s.tax / nullif(s.total, 0), 4) AS rate
    FROM staging.stg_cin7__sale_lines s
    WHERE s.sale_id = c.sale_id AND s.document <> 'order' AND s.sku = l.sku
    ORDER BY s.document, s.line_no LIMIT 1
) inv ON true
WHERE c.status = 'AUTHORISED'
GROUP BY c.task_id;
"""

INT_RETURN_CREDITS = """
CREATE TEMP TABLE int_return_credits ON COMMIT DROP AS
SELECT r.return_id,
       count(c.task_id) FILTER (WHERE c.status = 'AUTHORISED') AS authorised_notes,
       sum(c.total) FILTER (WHERE c.status = 'AUTHORISED') AS credited,
       sum(c.tax) FILTER (WHERE c.status = 'AUTHORISED') AS credited_tax,
       sum(t.expected_tax) AS expected_tax,
       min(c.currency) FILTER (WHERE c.status = 'AUTHORISED') AS credit_currency,
       jsonb_agg(jsonb_build_object('task_id', c.task_id, 'number', c.credit_note_number, 'status', c.status,
                                    'total', c.total, 'tax', c.tax, 'matched_by', c.matched_by)
                 ORDER BY c.task_id) FILTER (WHERE c.task_id IS NOT NULL) AS notes
FROM int_returns r
LEFT JOIN int_credit_notes c USING (return_id)
LEFT JOIN int_credit_note_tax t ON t.task_id = c.task_id
GROUP BY r.return_id;
CREATE UNIQUE INDEX ON int_return_credits (return_id);
"""

# Stock legs per item: restocks riding on the return's credit notes, transfers referencing the item,
# Sitoo transactions referencing the item.
INT_ITEM_STOCK = """
CREATE TEMP TABLE int_item_stock ON COMMIT DROP AS
SELECT i.item_id,
       coalesce(rs.to_holding, 0) AS restocked_to_holding,
       coalesce(rs.to_sellable, 0) AS restocked_to_sellable,
       coalesce(rs.elsewhere, 0) AS restocked_elsewhere,
       coalesce(tr.into_sellable, 0) AS transfers_into_sellable,
       coalesce(tr.out_of_sellable, 0) AS transfers_out_of_sellable,
       tr.first_release_at,
       st.at_mapped AS sitoo_at_mapped, st.elsewhere AS sitoo_elsewhere, st.first_at_mapped AS sitoo_first_at,
       st.warehouses AS sitoo_warehouses
FROM int_items i
JOIN int_returns r USING (return_id)
LEFT JOIN LATERAL (
    SELECT sum(l.quantity) FILTER (WHERE l.restock_location = r.holding) AS to_holding,
           sum(l.quantity) FILTER (WHERE l.restock_location = r.sellable) AS to_sellable,
           sum(l.quantity) FILTER (WHERE l.restock_location NOT IN (r.holding, r.sellable)) AS elsewhere
    FROM int_credit_notes c
    JOIN staging.stg_cin7__restocks l ON l.task_id = c.task_id
    WHERE c.return_id = i.return_id AND l.sku = i.sku AND l.restock_status = 'AUTHORISED'
) rs ON true
LEFT JOIN LATERAL (
    SELECT count(*) FILTER (WHERE t.to_location = r.sellable) AS into_sellable,
           count(*) FILTER (WHERE t.from_location = r.sellable) AS out_of_sellable,
           min(t.completion_date) FILTER (WHERE t.to_location = r.sellable) AS first_release_at
    FROM staging.stg_cin7__stock_transfers t
    WHERE split_part(t.reference, ' ', 1) = 'reveni:' || i.return_id || ':' || i.item_id AND t.status = 'COMPLETED'
) tr ON true
LEFT JOIN LATERAL (
    SELECT bool_or(x.warehouse_id = r.sitoo_warehouse_id) AS at_mapped,
           bool_or(x.warehouse_id IS DISTINCT FROM r.sitoo_warehouse_id) AS elsewhere,
           min(x.date_created) FILTER (WHERE x.warehouse_id = r.sitoo_warehouse_id) AS first_at_mapped,
           array_agg(DISTINCT x.warehouse_id) AS warehouses
    FROM staging.stg_sitoo__warehouse_transactions x
    WHERE x.external_id = 'reveni:' || i.return_id || ':' || i.item_id
) st ON true;
CREATE UNIQUE INDEX ON int_item_stock (item_id);
"""

INT_RETURN_SITOO = """
CREATE TEMP TABLE int_return_sitoo ON COMMIT DROP AS
SELECT r.return_id, count(o.order_id) AS return_records, sum(o.payments_total) AS pos_paid,
       sum(o.total_gross) AS record_total, min(o.order_date) AS recorded_at
FROM int_returns r
LEFT JOIN staging.stg_sitoo__orders o ON o.external_id = r.return_id
GROUP BY r.return_id;
CREATE UNIQUE INDEX ON int_return_sitoo (return_id);
"""

INT_EXCHANGES = """
CREATE TEMP TABLE int_exchanges ON COMMIT DROP AS
SELECT r.return_id,
       EXISTS (SELECT 1 FROM int_items i WHERE i.return_id = r.return_id AND i.exchange_sku IS NOT NULL)
           AND r.status NOT IN ('cancelled', 'incomplete') AS requested,
       s.sale_id AS exchange_sale_id, s.order_status AS exchange_order_status
FROM int_returns r
LEFT JOIN LATERAL (
    SELECT sale_id, order_status FROM staging.stg_cin7__sales
    WHERE external_id = 'reveni-exchange:' || r.return_id ORDER BY sale_id LIMIT 1
) s ON true;
CREATE UNIQUE INDEX ON int_exchanges (return_id);
"""

MODELS = (INT_RETURNS, INT_ITEMS, INT_CREDIT_NOTES, INT_CREDIT_NOTE_TAX, INT_RETURN_CREDITS, INT_ITEM_STOCK,
          INT_RETURN_SITOO, INT_EXCHANGES)  # fmt: skip
