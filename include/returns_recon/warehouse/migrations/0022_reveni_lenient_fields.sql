-- Reveni read leniently (issue 20, item 3; operating-model.md §2, last paragraph): a field no public source shows
-- may be missing from a return (models/reveni.py), and a return is quarantined only when its id, its money or its
-- order number is unusable. The columns of those fields accept NULL; status and validation_status take any text
-- (no CHECK ever restricted them): a value outside the documented sets is kept and raised as a data-quality
-- warning (quality/sql/reveni_unknown_statuses.sql). What the reconciliation does with each NULL:
-- docs/extraction.md, "Reveni read leniently".
ALTER TABLE staging.stg_reveni__returns
ALTER COLUMN return_type DROP NOT NULL,
ALTER COLUMN is_instant DROP NOT NULL,
ALTER COLUMN status DROP NOT NULL,
ALTER COLUMN return_point_id DROP NOT NULL,
ALTER COLUMN created_at DROP NOT NULL,
ALTER COLUMN updated_at DROP NOT NULL,
-- when the pipeline first staged the return (the loader never writes it: set on insert, kept on update)
ADD COLUMN first_seen_at timestamptz NOT NULL DEFAULT now();

ALTER TABLE staging.stg_reveni__return_items
ALTER COLUMN validation_status DROP NOT NULL;

COMMENT ON COLUMN staging.stg_reveni__returns.status IS
'Reveni''s status as served, any text; NULL when the return carries none. Outside the documented set: a warning.';
COMMENT ON COLUMN staging.stg_reveni__returns.created_at IS
'When Reveni created the return; NULL when it does not show it (the reconciliation then dates the return by '
'updated_at, else by when the pipeline first read it).';
COMMENT ON COLUMN staging.stg_reveni__returns.first_seen_at IS
'When the pipeline first staged the return (set on insert, never updated): dates a return that shows neither '
'created_at nor updated_at.';
