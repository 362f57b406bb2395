-- Every change of an exception's state, kept for good (issue 18, item 10): who acknowledged, resolved or re-opened
-- it, when and why, and what the pipeline did (opened it, auto-resolved it, re-opened it when it came back).
-- recon.exceptions keeps the current state; this table only grows. Rows are written by triggers on
-- recon.exceptions in the same transaction as the change, set-based (statement triggers over the changed rows);
-- a person's change (python -m returns_recon.cli exceptions ack|resolve|reopen) names itself through the
-- transaction settings recon.changed_by and recon.change_note, every other change is the pipeline's.
CREATE TABLE recon.exception_events (
    event_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    exception_key   text NOT NULL,
    from_state      text,
    to_state        text NOT NULL,
    changed_by      text NOT NULL,
    run_id          text,
    note            text,
    changed_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX exception_events_key ON recon.exception_events (exception_key, event_id);

COMMENT ON TABLE recon.exception_events IS
    'Every change of an exception''s state, one row per change, oldest first by event_id; append-only (updates and '
    'deletes are refused). The current state is in recon.exceptions.';
COMMENT ON COLUMN recon.exception_events.event_id IS 'Order of the changes (increasing).';
COMMENT ON COLUMN recon.exception_events.exception_key IS 'The exception (recon.exceptions.exception_key).';
COMMENT ON COLUMN recon.exception_events.from_state IS 'State before the change; empty when the pipeline opened it.';
COMMENT ON COLUMN recon.exception_events.to_state IS
    'State after the change: open, acknowledged, resolved or auto_resolved.';
COMMENT ON COLUMN recon.exception_events.changed_by IS
    'The person who changed it (--by of the CLI), or pipeline for a reconciliation run.';
COMMENT ON COLUMN recon.exception_events.run_id IS
    'The Airflow run of a pipeline change; empty for a person''s, and for the history written before this table.';
COMMENT ON COLUMN recon.exception_events.note IS 'The person''s note (--note), if any.';
COMMENT ON COLUMN recon.exception_events.changed_at IS 'When the change was committed (its transaction''s start).';

CREATE FUNCTION recon.refuse_history_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'recon.exception_events is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'a change of an exception is a new event (python -m returns_recon.cli exceptions ...)';
END
$$;
CREATE TRIGGER exception_events_append_only BEFORE UPDATE OR DELETE ON recon.exception_events
    FOR EACH ROW EXECUTE FUNCTION recon.refuse_history_change();
CREATE TRIGGER exception_events_no_truncate BEFORE TRUNCATE ON recon.exception_events
    FOR EACH STATEMENT EXECUTE FUNCTION recon.refuse_history_change();

-- a person's change is recorded even when the state stays (a second acknowledgement with a new note)
CREATE FUNCTION recon.record_exception_changes() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    actor text := nullif(btrim(current_setting('recon.changed_by', true)), '');
    why   text := nullif(current_setting('recon.change_note', true), '');
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO recon.exception_events (exception_key, from_state, to_state, changed_by, run_id, note)
        SELECT n.exception_key, NULL, n.state, coalesce(actor, 'pipeline'),
               CASE WHEN actor IS NULL THEN n.last_run_id END, CASE WHEN actor IS NOT NULL THEN why END
        FROM new_rows n ORDER BY n.exception_key;
    ELSE
        INSERT INTO recon.exception_events (exception_key, from_state, to_state, changed_by, run_id, note)
        SELECT n.exception_key, o.state, n.state, coalesce(actor, 'pipeline'),
               CASE WHEN actor IS NULL THEN n.last_run_id END, CASE WHEN actor IS NOT NULL THEN why END
        FROM new_rows n JOIN old_rows o USING (exception_key)
        WHERE n.state IS DISTINCT FROM o.state OR actor IS NOT NULL
        ORDER BY n.exception_key;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER exceptions_history_insert AFTER INSERT ON recon.exceptions
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION recon.record_exception_changes();
CREATE TRIGGER exceptions_history_update AFTER UPDATE ON recon.exceptions
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION recon.record_exception_changes();

-- the history before this table: each exception's opening, and its current state if it moved since (run_id empty)
INSERT INTO recon.exception_events (exception_key, from_state, to_state, changed_by, note, changed_at)
SELECT e.exception_key, NULL, 'open', 'pipeline', NULL, e.first_seen_at FROM recon.exceptions e
UNION ALL
SELECT e.exception_key, 'open', e.state,
       CASE WHEN e.state = 'auto_resolved' THEN 'pipeline' ELSE coalesce(e.acknowledged_by, 'unknown') END,
       CASE WHEN e.state <> 'auto_resolved' THEN e.note END, coalesce(e.resolved_at, e.last_seen_at)
FROM recon.exceptions e WHERE e.state <> 'open'
ORDER BY 6, 1;

GRANT SELECT ON recon.exception_events TO recon_reader;
