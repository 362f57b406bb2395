-- Grain: one row per return in the window (its money at its own grain; COMMENTS in reconcile/publish.py). Its legs'
-- states come from int_return_legs.
-- parameters:
SELECT
    r.return_id, r.order_external_id, r.sale_id, r.status AS return_status, r.return_type, r.is_instant,
    r.kind AS return_point_kind, r.return_point_id, r.created_at, r.received_at, r.last_refund_at,
    coalesce(n.items, 0) AS items, r.currency AS return_currency, r.money_currency AS currency,
    coalesce(r.refund_count, 0) AS refunds, r.refunded,
    r.authorised_notes AS credit_notes, coalesce(r.credited, 0) AS credited, r.credit_currency,
    s.customer_currency AS sale_currency, r.currencies_differ,
    CASE WHEN NOT r.currencies_differ THEN coalesce(r.credited, 0) - r.refunded END AS credited_minus_refunded,
    r.unattributed_notes, coalesce(r.unattributed_credited, 0) AS unattributed_credited,
    r.return_records AS sitoo_return_records,
    r.credit_note_leg,
    r.sitoo_record_leg,
    coalesce(o.types, '{}'::text[]) AS open_exception_types,
    CASE
        WHEN o.types IS NOT NULL THEN 'exception'
        WHEN r.status IN ('accepted', 'partly_accepted', 'rejected', 'cancelled') THEN 'reconciled'
        ELSE 'in_progress'
    END AS overall_status,
    floor(date_part('epoch', now() - r.created_at) / 86400)::int AS age_days
FROM int_return_legs AS r
LEFT JOIN (
    SELECT return_id, count(*) AS items FROM int_items
    GROUP BY return_id
) AS n
    USING (return_id)
LEFT JOIN staging.stg_cin7__sales AS s ON r.sale_id = s.sale_id
-- open exceptions of the return and of its items
LEFT JOIN (
    SELECT return_id, array_agg(DISTINCT exception_type ORDER BY exception_type) AS types
    FROM recon.exceptions
    WHERE recon.is_open(state) AND return_id IS NOT NULL
    GROUP BY return_id
) AS o USING (return_id)
