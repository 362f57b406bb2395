-- View, grain: one row per owner, exception type and age of the return (from its creation in Reveni, at the moment of
-- the query): the open and acknowledged exceptions.
-- parameters:
WITH aged AS (
    SELECT
        e.owner, e.exception_type, e.severity, e.state, e.return_id, f.created_at,
        floor(date_part('epoch', now() - f.created_at) / 86400)::int AS age
    FROM recon.exceptions AS e
    LEFT JOIN recon_build.fct_returns AS f USING (return_id)
    WHERE recon.is_open(e.state)
),

bucketed AS (
    SELECT
        a.*,
        CASE
            WHEN a.created_at IS NOT NULL THEN
                CASE
                    WHEN a.age < 7 THEN 0
                    WHEN a.age < 14 THEN 7
                    WHEN a.age < 30 THEN 14
                    WHEN a.age < 60 THEN 30
                    ELSE 60
                END
        END AS bucket
    FROM aged AS a
)

SELECT
    owner, exception_type, severity,
    CASE bucket
        WHEN 0 THEN '0-6 days'
        WHEN 7 THEN '7-13 days'
        WHEN 14 THEN '14-29 days'
        WHEN 30 THEN '30-59 days'
        WHEN 60 THEN '60+ days'
        ELSE CASE WHEN return_id IS NULL THEN 'no return' ELSE 'older than the window' END
    END AS return_age,
    bucket AS return_age_from_days,
    count(*) AS exceptions, count(*) FILTER (WHERE state = 'acknowledged') AS acknowledged,
    count(DISTINCT return_id) AS returns, min(created_at) AS oldest_return_created_at
FROM bucketed
GROUP BY 1, 2, 3, 4, 5
