-- View, grain: one row per document the pipeline created in Cin7 Core or Sitoo. A document counts as posted when
-- its posting ended done (sent) or adopted (found on the target after an unanswered send), at the first such step
-- of its log; days in UTC like every other table.
-- parameters:
SELECT
    p.posting_key, l.posted_at, (l.posted_at AT TIME ZONE 'UTC')::date AS posted_on, p.system, p.action,
    p.status, coalesce(p.target_number, p.target_ref) AS document, p.target_ref, p.return_id, p.item_id,
    p.exception_key,
    -- authorising our DRAFT credits nothing new: its money is counted once, on the create_credit_note row
    CASE WHEN p.action <> 'authorise_credit_note' THEN p.amount END AS amount,
    CASE
        WHEN p.amount IS NULL OR p.action = 'authorise_credit_note' THEN NULL
        WHEN p.system = 'sitoo' THEN p.payload ->> 'currencycode'
        ELSE f.sale_currency
    END AS currency
FROM recon.postings AS p
INNER JOIN (
    SELECT posting_key, min(at) AS posted_at FROM recon.posting_log
    WHERE outcome IN ('done', 'adopted')
    GROUP BY posting_key
) AS l USING (posting_key)
LEFT JOIN recon_build.fct_returns AS f USING (return_id)
WHERE p.status IN ('done', 'adopted')
