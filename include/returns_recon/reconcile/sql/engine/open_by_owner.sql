-- The open (or acknowledged) exceptions per owner, for the run's summary.
-- parameters:
SELECT owner, count(*) AS exceptions
FROM recon.exceptions
WHERE recon.is_open(state)
GROUP BY 1
