-- Every Reveni return created in the window, with its return point's mapping, its Cin7 Core sale (matched on the
-- configured sale field, our exchange orders left out), its paid refunds and its exchange order, if any. A targeted
-- run (the events DAG) takes only the returns of its scope; the batch runs pass no scope (NULL), a condition the
-- planner folds away, so their plans are the ones without it.
-- A return whose creation time Reveni does not show (read leniently, models/reveni.py) is dated by its last update,
-- else by when the pipeline first staged it (first_seen_at): created_at below, which the window, the ages and the days
-- read.
-- parameters: window_days, match_field, scope
SELECT
    r.return_id, r.order_external_id, r.return_type, r.is_instant, r.status, r.amount, r.currency,
    r.return_point_id, r.return_point_name, r.received_at,
    coalesce(r.created_at, r.updated_at, r.first_seen_at) AS created_at, r.updated_at,
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
-- the window on created_at as it stands where Reveni shows it (the planner's estimate of the batch plans), else on
-- the date the return is given above
WHERE
    (
        r.created_at >= now() - make_interval(days => %(window_days)s)
        OR (
            r.created_at IS NULL
            AND coalesce(r.updated_at, r.first_seen_at) >= now() - make_interval(days => %(window_days)s)
        )
    )
    AND (%(scope)s::text[] IS NULL OR r.return_id = any(%(scope)s::text[]))
