-- The open (or acknowledged) exceptions per type, for the run's summary.
-- parameters:
SELECT exception_type, count(*) AS exceptions
FROM recon.exceptions
WHERE recon.is_open(state)
GROUP BY 1
