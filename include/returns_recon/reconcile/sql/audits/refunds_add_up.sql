-- Audit: the refunds add up across the published tables. One row: (ok, detail).
-- parameters:
SELECT
    coalesce((SELECT sum(refunded) FROM recon_build.daily_summary), 0)
    = coalesce((SELECT sum(reveni_refunded) FROM recon_build.refund_journal), 0)
    AND coalesce((SELECT sum(refunded) FROM recon_build.daily_summary), 0)
    = coalesce((SELECT sum(refunded) FROM recon_build.fct_returns), 0) AS ok,
    'daily_summary.refunded = refund_journal.reveni_refunded = fct_returns.refunded' AS detail
