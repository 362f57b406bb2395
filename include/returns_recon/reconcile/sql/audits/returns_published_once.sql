-- Audit: every return in scope is published once. One row: (ok, detail).
-- parameters:
SELECT
    (SELECT count(*) FROM recon_build.fct_returns) = (SELECT count(*) FROM int_returns) AS ok,
    format(
        '%%s published, %%s in scope',
        (SELECT count(*) FROM recon_build.fct_returns),
        (SELECT count(*) FROM int_returns)
    ) AS detail
