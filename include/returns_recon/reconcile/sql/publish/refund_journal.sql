-- Grain: one row per day (UTC) and currency: Reveni refunds against Cin7 Core credit notes and Sitoo return records,
-- each by its own date.
-- parameters:
WITH refunds AS (
    SELECT
        (coalesce(f.refunded_at, r.created_at) AT TIME ZONE 'UTC')::date AS day,
        f.currency,
        count(*) AS refunds,
        sum(f.amount) AS refunded
    FROM staging.stg_reveni__refunds AS f INNER JOIN int_returns AS r USING (return_id)
    WHERE f.status = 'paid'
    GROUP BY 1, 2
),

credits AS (
    SELECT
        (coalesce(c.credit_note_date, now()) AT TIME ZONE 'UTC')::date AS day,
        c.currency,
        count(*) AS credit_notes,
        sum(c.total) AS credited
    FROM int_credit_notes AS c
    WHERE c.status = 'AUTHORISED'
    GROUP BY 1, 2
),

unattributed AS (
    -- AUTHORISED notes made by hand on the sales of refunded returns that no return can be attributed
    SELECT
        (coalesce(u.credit_note_date, now()) AT TIME ZONE 'UTC')::date AS day,
        u.currency,
        count(*) AS unattributed_notes,
        sum(u.total) AS unattributed_credited
    FROM int_notes_by_hand AS u
    WHERE u.return_id IS NULL
    GROUP BY 1, 2
),

records AS (
    SELECT
        (x.recorded_at AT TIME ZONE 'UTC')::date AS day,
        x.currency,
        sum(x.return_records) AS sitoo_records,
        -sum(x.record_total) AS sitoo_recorded
    FROM int_return_legs AS x
    WHERE x.return_records > 0
    GROUP BY 1, 2
)

SELECT
    day, currency,
    coalesce(refunds, 0) AS reveni_refunds, coalesce(refunded, 0) AS reveni_refunded,
    coalesce(credit_notes, 0) AS cin7_credit_notes, coalesce(credited, 0) AS cin7_credited,
    coalesce(sitoo_records, 0) AS sitoo_return_records, coalesce(sitoo_recorded, 0) AS sitoo_recorded,
    coalesce(credited, 0) - coalesce(refunded, 0) AS credited_minus_refunded,
    coalesce(unattributed_notes, 0) AS cin7_unattributed_notes,
    coalesce(unattributed_credited, 0) AS cin7_unattributed_credited
FROM refunds
FULL JOIN credits USING (day, currency)
FULL JOIN unattributed USING (day, currency)
FULL JOIN records USING (day, currency)
