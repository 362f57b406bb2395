-- The scan bound: one pass that reads every table the reconciliation reads, once, each grouped on
-- its join key and joined once. No reconciliation over the same data can do less.
SELECT count(*), sum(coalesce(f.refunded, 0)), sum(coalesce(c.total, 0)), sum(coalesce(cl.quantity, 0)),
       sum(coalesce(rs.quantity, 0)), sum(coalesce(sl.price, 0)), sum(coalesce(t.n, 0)), sum(coalesce(x.n, 0)),
       sum(coalesce(o.total_gross, 0)), count(p.sku), count(sp.sku), count(m.kind)
FROM staging.stg_reveni__return_items i
JOIN staging.stg_reveni__returns r USING (return_id)
LEFT JOIN (SELECT return_id, sum(amount) AS refunded FROM staging.stg_reveni__refunds GROUP BY 1) f USING (return_id)
LEFT JOIN staging.dim_location_map m USING (return_point_id)
LEFT JOIN staging.stg_cin7__sales s ON s.customer_reference = r.order_external_id
LEFT JOIN (SELECT sale_id, sum(price) AS price FROM staging.stg_cin7__sale_lines GROUP BY 1) sl ON sl.sale_id = s.sale_id
LEFT JOIN (SELECT memo, sum(total) AS total, min(task_id) AS task_id FROM staging.stg_cin7__credit_notes GROUP BY 1) c
       ON c.memo = 'reveni:' || r.return_id
LEFT JOIN (SELECT task_id, sum(quantity) AS quantity FROM staging.stg_cin7__credit_note_lines GROUP BY 1) cl
       ON cl.task_id = c.task_id
LEFT JOIN (SELECT task_id, sum(quantity) AS quantity FROM staging.stg_cin7__restocks GROUP BY 1) rs ON rs.task_id = c.task_id
LEFT JOIN (SELECT split_part(reference, ' ', 1) AS ref, count(*) AS n FROM staging.stg_cin7__stock_transfers GROUP BY 1) t
       ON t.ref = 'reveni:' || i.return_id || ':' || i.item_id
LEFT JOIN (SELECT external_id, count(*) AS n FROM staging.stg_sitoo__warehouse_transactions GROUP BY 1) x
       ON x.external_id = 'reveni:' || i.return_id || ':' || i.item_id
LEFT JOIN (SELECT external_id, sum(total_gross) AS total_gross FROM staging.stg_sitoo__orders GROUP BY 1) o
       ON o.external_id = r.return_id
LEFT JOIN (SELECT DISTINCT sku FROM staging.stg_cin7__products) p ON p.sku = i.sku
LEFT JOIN (SELECT DISTINCT sku FROM staging.stg_sitoo__products) sp ON sp.sku = i.sku
