-- Audit: every item in scope is published once. One row: (ok, detail).
-- parameters:
SELECT
    (SELECT count(*) FROM recon_build.fct_return_reconciliation) = (SELECT count(*) FROM int_items) AS ok,
    format(
        '%%s published, %%s in scope',
        (SELECT count(*) FROM recon_build.fct_return_reconciliation),
        (SELECT count(*) FROM int_items)
    ) AS detail
