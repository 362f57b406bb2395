-- Data quality, reveni_structure: each Reveni return item with its validation status as served, '(none)' when it
-- carries none. Read leniently (models/reveni.py): a value outside the documented set is kept and raised (a warning).
-- parameters:
SELECT i.item_id, i.return_id, coalesce(i.validation_status, '(none)') AS validation_status
FROM staging.stg_reveni__return_items AS i
