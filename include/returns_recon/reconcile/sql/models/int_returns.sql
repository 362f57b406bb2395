-- Every Reveni return created in the window, with its return point's mapping, its Cin7 Core sale (matched on the
-- configured sale field, our exchange orders left out), its paid refunds and its exchange order, if any.
-- parameters: window_days, match_field
SELECT
    r.return_id, r.order_external_id, r.return_type, r.is_instant, r.status, r.amount, r.currency,
    r.return_point_id, r.return_point_name, r.received_at, r.created_at, r.updated_at,
    m.kind, m.problem AS map_problem, (m.return_point_id IS NOT NULL AND m.problem IS NULL) AS map_ok,
    m.cin7_holding_location AS holding, m.cin7_sellable_location AS sellable, m.sitoo_warehouse_id,
    s.sale_id, s.sales_matched,
    coalesce(f.refunded, 0) AS refunded, f.refund_currency, f.refund_count, f.last_refund_at,
    e.sale_id AS exchange_sale_id, e.order_status AS exchange_order_status
FROM staging.stg_reveni__returns AS r
LEFT JOIN staging.int_location_map__checked AS m USING (return_point_id)
LEFT JOIN (
    SELECT
        staging.sale_match_value(s, %(match_field)s::text) AS order_ref,
        min(s.sale_id) AS sale_id,
        count(*) AS sales_matched
    FROM staging.stg_cin7__sales AS s
    WHERE staging.return_of_exchange_reference(s.external_id) IS NULL
    GROUP BY order_ref
) AS s ON r.order_external_id = s.order_ref
LEFT JOIN (
    SELECT
        return_id,
        sum(amount) FILTER (WHERE status = 'paid') AS refunded,
        min(currency) AS refund_currency,
        count(*) FILTER (WHERE status = 'paid') AS refund_count,
        max(refunded_at) AS last_refund_at
    FROM staging.stg_reveni__refunds
    GROUP BY return_id
) AS f USING (return_id)
LEFT JOIN (
    -- the return's exchange order (the first, should there be several)
    SELECT DISTINCT ON (x.return_id) x.return_id, x.sale_id, x.order_status
    FROM (
        SELECT staging.return_of_exchange_reference(external_id) AS return_id, sale_id, order_status
        FROM staging.stg_cin7__sales
    ) AS x
    WHERE x.return_id IS NOT NULL
    ORDER BY x.return_id, x.sale_id
) AS e USING (return_id)
WHERE r.created_at >= now() - make_interval(days => %(window_days)s)
