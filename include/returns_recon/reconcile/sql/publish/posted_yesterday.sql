-- View, grain: one row per system, action and currency: the documents the pipeline posted yesterday (UTC).
-- parameters:
SELECT posted_on AS day, system, action, currency, count(*) AS documents, sum(amount) AS amount
FROM recon_build.posted_documents
WHERE posted_on = (now() AT TIME ZONE 'UTC')::date - 1
GROUP BY 1, 2, 3, 4
