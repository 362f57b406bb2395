-- Grain: one row per day the returns were created (UTC) and currency: those returns, their money and their open
-- exceptions.
-- parameters:
WITH per_day AS (
    SELECT
        (r.created_at AT TIME ZONE 'UTC')::date AS day,
        r.currency,
        count(*) AS returns,
        sum(r.refunded) AS refunded,
        sum(coalesce(r.credited, 0)) AS credited
    FROM int_return_legs AS r
    GROUP BY 1, 2
),

open_exceptions AS (
    SELECT
        (r.created_at AT TIME ZONE 'UTC')::date AS day,
        r.currency,
        sum(t.n) AS open_exceptions,
        jsonb_object_agg(t.exception_type, t.n) AS by_type
    FROM (
        SELECT q.return_id, q.exception_type, count(*) AS n
        FROM recon.exceptions AS q
        WHERE recon.is_open(q.state)
        GROUP BY 1, 2
    ) AS t
    INNER JOIN int_returns AS r USING (return_id)
    GROUP BY 1, 2
)

SELECT
    p.day, p.currency, p.returns, p.refunded, p.credited, p.credited - p.refunded AS difference,
    coalesce(o.open_exceptions, 0)::bigint AS open_exceptions, coalesce(o.by_type, '{}'::jsonb) AS open_by_type
FROM per_day AS p
LEFT JOIN open_exceptions AS o USING (day, currency)
