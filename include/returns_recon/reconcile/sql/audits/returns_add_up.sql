-- Audit: daily_summary counts every return in scope. One row: (ok, detail).
-- parameters:
SELECT
    coalesce((SELECT sum(returns) FROM recon_build.daily_summary), 0) = (SELECT count(*) FROM int_returns) AS ok,
    'daily_summary.returns = returns in scope' AS detail
