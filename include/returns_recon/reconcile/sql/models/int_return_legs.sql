-- Every return with its finance, store and exchange legs, and the state of each leg of the return as a whole.
-- The states are stated here and only here: detection (detect/found.sql) and publication (publish/fct_returns.sql,
-- publish/fct_return_reconciliation.sql) read them.
-- parameters: tolerance
WITH credits AS (
    SELECT
        c.return_id,
        count(*) FILTER (WHERE c.status = 'AUTHORISED') AS authorised_notes,
        sum(c.total) FILTER (WHERE c.status = 'AUTHORISED') AS credited,
        sum(c.tax) FILTER (WHERE c.status = 'AUTHORISED') AS credited_tax,
        sum(t.expected_tax) AS expected_tax,
        min(c.currency) FILTER (WHERE c.status = 'AUTHORISED') AS credit_currency
    FROM int_credit_notes AS c
    LEFT JOIN int_credit_note_tax AS t USING (task_id)
    GROUP BY c.return_id
),

sitoo AS (
    SELECT
        external_id AS return_id,
        count(*) AS return_records,
        sum(payments_total) AS pos_paid,
        sum(total_gross) AS record_total,
        min(order_date) AS recorded_at
    FROM staging.stg_sitoo__orders
    GROUP BY external_id
),

unattributed AS (
    -- AUTHORISED notes made by hand on the return's sale that no return can be attributed (few)
    SELECT sale_id, count(*) AS unattributed_notes, sum(total) AS unattributed_credited
    FROM int_notes_by_hand
    WHERE return_id IS NULL
    GROUP BY sale_id
),

exchange_wanted AS (
    SELECT DISTINCT return_id FROM int_items
    WHERE exchange_sku IS NOT NULL
),

legs AS (
    SELECT
        r.*,
        coalesce(c.authorised_notes, 0) AS authorised_notes, c.credited, c.credited_tax, c.expected_tax,
        c.credit_currency, coalesce(u.unattributed_notes, 0) AS unattributed_notes, u.unattributed_credited,
        coalesce(x.return_records, 0) AS return_records, x.pos_paid, x.record_total, x.recorded_at,
        (w.return_id IS NOT NULL AND r.status NOT IN ('cancelled', 'incomplete')) AS exchange_requested
    FROM int_returns AS r
    LEFT JOIN credits AS c USING (return_id)
    LEFT JOIN unattributed AS u ON r.sale_id = u.sale_id
    LEFT JOIN sitoo AS x USING (return_id)
    LEFT JOIN exchange_wanted AS w USING (return_id)
),

measured AS (
    SELECT
        legs.*,
        -- the credit differs from the refund by more than the tolerance (NULL without a credit)
        abs(legs.credited - legs.refunded) > %(tolerance)s AS credit_differs,
        -- refunded in one currency and credited in another: no gap can be computed
        (legs.refunded > 0 AND legs.authorised_notes > 0 AND legs.credit_currency IS DISTINCT FROM legs.refund_currency)
            AS currencies_differ,
        -- the currency of the return's money: the refund's when refunded, else the credit note's, else the return's
        CASE
            WHEN legs.refunded > 0 THEN legs.refund_currency
            ELSE coalesce(legs.credit_currency, legs.refund_currency, legs.currency)
        END AS money_currency
    FROM legs
)

SELECT
    m.*,
    CASE
        WHEN m.sale_id IS NULL THEN 'blocked'
        WHEN m.authorised_notes > 1 THEN 'duplicate'
        -- a note by hand on the sale that no return can be attributed: the credit may be twice
        WHEN m.refunded > 0 AND m.unattributed_notes > 0 THEN 'unattributed'
        WHEN m.refunded > 0 AND m.authorised_notes = 0 THEN 'missing'
        WHEN m.refunded = 0 AND m.authorised_notes > 0 THEN 'unexpected'
        WHEN m.refunded > 0 AND m.credit_differs THEN 'mismatch'
        WHEN m.refunded > 0 THEN 'ok'
        ELSE 'not_due'
    END AS credit_note_leg,
    CASE
        WHEN (m.kind IS DISTINCT FROM 'store') THEN 'not_applicable'
        WHEN NOT m.map_ok THEN 'blocked'
        WHEN m.refunded = 0 THEN 'not_due'
        WHEN m.return_records > 0 THEN 'ok'
        ELSE 'missing'
    END AS sitoo_record_leg
FROM measured AS m
