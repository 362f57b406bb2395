-- The exception workbench in the Airflow UI (issue 21): a person assigns an exception, approves a DRAFT credit
-- note held above the approval threshold, or asks for a refused posting to be sent again; each action, like the
-- state changes before it, is one more row of recon.exception_events (append-only), with who and when.

-- who works an exception now (its history is in recon.exception_events); the pipeline never writes it
ALTER TABLE recon.exceptions ADD COLUMN assignee text;
COMMENT ON COLUMN recon.exceptions.assignee IS
'The person the exception is assigned to (the workbench''s assign action); empty when nobody is.';

-- what a person did: acknowledge, assign, resolve, reopen, replay or approve; empty for the pipeline's changes
ALTER TABLE recon.exception_events ADD COLUMN action text;
ALTER TABLE recon.exception_events ADD COLUMN detail jsonb;
COMMENT ON COLUMN recon.exception_events.action IS
'A person''s action (acknowledge, assign, resolve, reopen, replay, approve); empty for the pipeline''s changes '
'and for the events written before the workbench.';
COMMENT ON COLUMN recon.exception_events.detail IS
'What the action named: the assignee, the posting replayed or the credit note approved.';

-- the person, the action and its detail come from the transaction's settings (recon.changed_by,
-- recon.change_note, recon.change_action, recon.change_detail); every other change is the pipeline's
CREATE OR REPLACE FUNCTION recon.record_exception_changes() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    actor  text := nullif(btrim(current_setting('recon.changed_by', true)), '');
    why    text := nullif(current_setting('recon.change_note', true), '');
    act    text := nullif(current_setting('recon.change_action', true), '');
    detail jsonb := nullif(current_setting('recon.change_detail', true), '')::jsonb;
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO recon.exception_events (exception_key, from_state, to_state, changed_by, run_id, note, action,
                                            detail)
        SELECT n.exception_key, NULL, n.state, coalesce(actor, 'pipeline'),
               CASE WHEN actor IS NULL THEN n.last_run_id END, CASE WHEN actor IS NOT NULL THEN why END,
               CASE WHEN actor IS NOT NULL THEN act END, CASE WHEN actor IS NOT NULL THEN detail END
        FROM new_rows AS n ORDER BY n.exception_key;
    ELSE
        INSERT INTO recon.exception_events (exception_key, from_state, to_state, changed_by, run_id, note, action,
                                            detail)
        SELECT n.exception_key, o.state, n.state, coalesce(actor, 'pipeline'),
               CASE WHEN actor IS NULL THEN n.last_run_id END, CASE WHEN actor IS NOT NULL THEN why END,
               CASE WHEN actor IS NOT NULL THEN act END, CASE WHEN actor IS NOT NULL THEN detail END
        FROM new_rows AS n INNER JOIN old_rows AS o USING (exception_key)
        WHERE n.state IS DISTINCT FROM o.state OR actor IS NOT NULL
        ORDER BY n.exception_key;
    END IF;
    RETURN NULL;
END
$$;

-- a DRAFT credit note of ours approved by a person: the next run authorises it in Cin7 Core
-- (action authorise_credit_note); one approval per note, never changed
CREATE TABLE recon.credit_note_approvals (
    posting_key text PRIMARY KEY,
    exception_key text NOT NULL,
    approved_by text NOT NULL,
    note text,
    approved_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE recon.credit_note_approvals IS
'DRAFT credit notes of ours (above the approval threshold) approved in the workbench; the next run authorises '
'each in Cin7 Core. Append-only: one row per note.';
COMMENT ON COLUMN recon.credit_note_approvals.posting_key IS 'The create_credit_note posting that left it DRAFT.';
COMMENT ON COLUMN recon.credit_note_approvals.exception_key IS 'Its credit_note_awaiting_approval exception.';
COMMENT ON COLUMN recon.credit_note_approvals.approved_by IS 'The Airflow user who approved it.';
COMMENT ON COLUMN recon.credit_note_approvals.note IS 'The approver''s note, if any.';
COMMENT ON COLUMN recon.credit_note_approvals.approved_at IS 'When it was approved.';
CREATE FUNCTION recon.refuse_approval_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'recon.credit_note_approvals is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege', HINT = 'an approval is given once and kept';
END
$$;
CREATE TRIGGER credit_note_approvals_append_only BEFORE UPDATE OR DELETE ON recon.credit_note_approvals
FOR EACH ROW EXECUTE FUNCTION recon.refuse_approval_change();
CREATE TRIGGER credit_note_approvals_no_truncate BEFORE TRUNCATE ON recon.credit_note_approvals
FOR EACH STATEMENT EXECUTE FUNCTION recon.refuse_approval_change();

GRANT SELECT ON recon.credit_note_approvals TO recon_reader;

-- a DRAFT credit note is approved in the workbench now (docs/workbench.md); the next run authorises it
UPDATE recon.dim_exception_types
SET
    auto_fix = 'authorise our DRAFT credit note once a person approves it in the workbench',
    description = 'A corrective credit note above the approval threshold was posted as DRAFT: approve it in the '
    || 'workbench (the next run authorises it in Cin7 Core) or authorise it in Cin7 Core.'
WHERE exception_type = 'credit_note_awaiting_approval';
