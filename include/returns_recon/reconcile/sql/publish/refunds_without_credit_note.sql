-- View, grain: one row per currency: returns refunded in Reveni with no AUTHORISED credit note attributed in Cin7 Core.
-- parameters:
SELECT
    currency,
    count(*) AS returns,
    sum(refunded) AS refunded,
    min(last_refund_at) AS oldest_refund_at,
    count(*) FILTER (WHERE sale_id IS NULL) AS returns_without_sale,
    count(*) FILTER (WHERE unattributed_notes > 0) AS returns_with_unattributed_note
FROM recon_build.fct_returns
WHERE refunded > 0 AND credit_notes = 0
GROUP BY currency
