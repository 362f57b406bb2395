-- Data quality, reveni_structure: each Reveni return with its status as served, '(none)' when it carries none. Read
-- leniently (models/reveni.py): a status outside the documented set is kept in staging and raised by a warning.
-- parameters:
SELECT r.return_id, coalesce(r.status, '(none)') AS status
FROM staging.stg_reveni__returns AS r
