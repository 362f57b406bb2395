-- The open (or acknowledged) exceptions per type, for the run's summary.
-- parameters:
SELECT exception_type, count(*) AS exceptions
FROM recon.exceptions
WHERE state IN ('open', 'acknowledged')
GROUP BY 1
