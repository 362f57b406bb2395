-- The open (or acknowledged) exceptions per owner, for the run's summary.
-- parameters:
SELECT owner, count(*) AS exceptions
FROM recon.exceptions
WHERE state IN ('open', 'acknowledged')
GROUP BY 1
