-- Grain: one row per return item in the window, with the state of each leg (int_items, int_return_legs); no money.
-- parameters:
SELECT
    i.item_id, i.return_id, r.order_external_id, r.sale_id, i.sku, i.quantity, r.currency,
    r.status AS return_status, i.validation_status, i.restock, r.kind AS return_point_kind, r.return_point_id,
    r.is_instant, r.created_at, r.received_at, i.validated_at,
    r.credit_note_leg,
    i.restock_leg,
    i.release_leg,
    r.sitoo_record_leg,
    i.sitoo_stock_leg,
    i.exchange_leg,
    CASE
        WHEN o.types IS NULL AND ro.types IS NULL THEN '{}'::text[]
        WHEN ro.types IS NULL THEN o.types
        WHEN o.types IS NULL THEN ro.types
        ELSE array(
                SELECT DISTINCT t FROM unnest(o.types || ro.types) AS t
                ORDER BY t
            )
    END AS open_exception_types,
    CASE
        WHEN o.types IS NOT NULL OR ro.types IS NOT NULL THEN 'exception'
        WHEN r.status IN ('accepted', 'partly_accepted', 'rejected', 'cancelled') THEN 'reconciled'
        ELSE 'in_progress'
    END AS overall_status,
    floor(date_part('epoch', now() - r.created_at) / 86400)::int AS age_days
FROM int_items AS i
INNER JOIN int_return_legs AS r USING (return_id)
-- open exceptions of the item, and of its return as a whole
LEFT JOIN (
    SELECT return_id, item_id, array_agg(DISTINCT exception_type ORDER BY exception_type) AS types
    FROM recon.exceptions
    WHERE recon.is_open(state) AND item_id IS NOT NULL
    GROUP BY return_id, item_id
) AS o ON i.return_id = o.return_id AND i.item_id = o.item_id
LEFT JOIN (
    SELECT return_id, array_agg(DISTINCT exception_type ORDER BY exception_type) AS types
    FROM recon.exceptions
    WHERE recon.is_open(state) AND item_id IS NULL
    GROUP BY return_id
) AS ro ON i.return_id = ro.return_id
