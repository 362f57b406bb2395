-- Finance reads schema recon as recon_reader (docs/reconciliation.md, "What finance reads"): every table, view and
-- column there carries a comment (shown by \d+) stating its grain and meaning. The tables rebuilt at every publish
-- (fct_returns, fct_return_reconciliation, refund_journal, daily_summary) and the views over them get theirs in the
-- build (returns_recon/reconcile/publish.py, COMMENTS); the tables below are the ones the migrations create.
--
-- Internal state stays out of what finance reads: the API rate-limit buckets (pyrate-limiter's tables, shared by
-- every worker) live in schema ops, which recon_reader cannot use; they were in public.

CREATE SCHEMA IF NOT EXISTS ops;
REVOKE ALL ON SCHEMA ops FROM PUBLIC;
COMMENT ON SCHEMA ops IS 'Internal state of the pipeline (API rate-limit buckets); not readable by recon_reader';

DO $$
DECLARE
    bucket text;
BEGIN
    FOR bucket IN SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE 'ratelimit\_\_\_%'
    LOOP
        EXECUTE format('ALTER TABLE public.%I SET SCHEMA ops', bucket);
    END LOOP;
END
$$;

COMMENT ON SCHEMA recon IS
    'Published reconciliation results, readable by recon_reader. Each table states its grain in its comment (\d+).';

-- the exception taxonomy
COMMENT ON TABLE recon.dim_exception_types IS
    'Grain: one row per exception type of the taxonomy (operating-model.md §3): who owns it, how severe, what fixes it.';
COMMENT ON COLUMN recon.dim_exception_types.exception_type IS 'the exception type (primary key)';
COMMENT ON COLUMN recon.dim_exception_types.owner IS 'who acts on it: finance, operations, data or customer service';
COMMENT ON COLUMN recon.dim_exception_types.severity IS 'critical, high, medium or info';
COMMENT ON COLUMN recon.dim_exception_types.auto_fix IS 'the corrective posting the pipeline makes; NULL: a person fixes it';
COMMENT ON COLUMN recon.dim_exception_types.level IS 'return (one per return) or item (one per return item)';
COMMENT ON COLUMN recon.dim_exception_types.description IS 'what it means, in one sentence';

-- the exception queue
COMMENT ON TABLE recon.exceptions IS
    'Grain: one row per exception key (type:return[:item]), kept across runs: the exception queue. Money is in '
    'evidence, per exception; a return with several exceptions repeats it, so sum money from fct_returns instead.';
COMMENT ON COLUMN recon.exceptions.exception_key IS 'type:return[:item], stable across runs (primary key)';
COMMENT ON COLUMN recon.exceptions.exception_type IS 'the exception type (dim_exception_types)';
COMMENT ON COLUMN recon.exceptions.owner IS 'who acts on it: finance, operations, data or customer service';
COMMENT ON COLUMN recon.exceptions.severity IS 'critical, high, medium or info';
COMMENT ON COLUMN recon.exceptions.return_id IS 'the Reveni return; NULL for a quarantined record of another entity';
COMMENT ON COLUMN recon.exceptions.item_id IS 'the return item for item-level types (or the quarantined record)';
COMMENT ON COLUMN recon.exceptions.sku IS 'the item''s SKU, for item-level types';
COMMENT ON COLUMN recon.exceptions.state IS
    'open, acknowledged (a person is on it), resolved (by a person) or auto_resolved (no longer seen)';
COMMENT ON COLUMN recon.exceptions.first_seen_at IS 'when the pipeline first saw it (not the age of the return)';
COMMENT ON COLUMN recon.exceptions.last_seen_at IS 'when a run last saw it';
COMMENT ON COLUMN recon.exceptions.occurrences IS 'how many runs saw it';
COMMENT ON COLUMN recon.exceptions.evidence IS 'JSON: the ids and amounts on each side, as the last run saw them';
COMMENT ON COLUMN recon.exceptions.fixed_by_posting IS 'the posting (postings.posting_key) that fixed it, if ours did';
COMMENT ON COLUMN recon.exceptions.resolved_at IS 'when it was resolved or auto-resolved';
COMMENT ON COLUMN recon.exceptions.acknowledged_by IS 'who acknowledged or resolved it (CLI --by)';
COMMENT ON COLUMN recon.exceptions.note IS 'that person''s note';
COMMENT ON COLUMN recon.exceptions.reopened_count IS 'how often it came back after being auto-resolved';
COMMENT ON COLUMN recon.exceptions.last_run_id IS 'the run that last saw or changed it (recon_runs.run_id)';

-- the runs
COMMENT ON TABLE recon.recon_runs IS
    'Grain: one row per reconciliation run that published: when, and what it found (how fresh the tables are).';
COMMENT ON COLUMN recon.recon_runs.run_id IS 'the Airflow run (primary key)';
COMMENT ON COLUMN recon.recon_runs.mode IS 'hourly or daily';
COMMENT ON COLUMN recon.recon_runs.started_at IS 'when the reconciliation started';
COMMENT ON COLUMN recon.recon_runs.finished_at IS 'when it published';
COMMENT ON COLUMN recon.recon_runs.returns_in_scope IS 'returns in the window (rows of fct_returns)';
COMMENT ON COLUMN recon.recon_runs.exceptions_found IS 'exceptions the run saw';
COMMENT ON COLUMN recon.recon_runs.opened IS 'of which new';
COMMENT ON COLUMN recon.recon_runs.auto_resolved IS 'exceptions no longer seen, closed by the run';

-- corrective postings
COMMENT ON TABLE recon.postings IS
    'Grain: one row per corrective posting (one document the pipeline plans to create), by idempotency key. amount '
    'is safe to SUM per action and currency (posted_documents has the currency).';
COMMENT ON COLUMN recon.postings.posting_key IS 'sha256 of action, return, item and target: the idempotency key';
COMMENT ON COLUMN recon.postings.action IS
    'create_credit_note, transfer_to_sellable, transfer_to_holding, sitoo_store_stock or sitoo_return_record';
COMMENT ON COLUMN recon.postings.system IS 'cin7 or sitoo';
COMMENT ON COLUMN recon.postings.exception_key IS 'the exception it fixes (exceptions.exception_key)';
COMMENT ON COLUMN recon.postings.return_id IS 'the Reveni return';
COMMENT ON COLUMN recon.postings.item_id IS 'the return item, for stock postings';
COMMENT ON COLUMN recon.postings.reference IS 'what the document is looked up by in the target system';
COMMENT ON COLUMN recon.postings.payload IS 'the request body as planned (JSON)';
COMMENT ON COLUMN recon.postings.amount IS
    'the document''s money (credit note: the sale''s currency; Sitoo return record: the return''s); NULL for stock';
COMMENT ON COLUMN recon.postings.status IS
    'planned, sending, done, adopted, ambiguous, refused, dry_run, skipped, held or superseded (docs/postings.md)';
COMMENT ON COLUMN recon.postings.target_ref IS 'the document''s id in the target system once known';
COMMENT ON COLUMN recon.postings.target_number IS 'the document''s number (credit note CR-..., transfer TR-...)';
COMMENT ON COLUMN recon.postings.attempts IS 'sends attempted';
COMMENT ON COLUMN recon.postings.planned_run_id IS 'the run that planned it';
COMMENT ON COLUMN recon.postings.last_run_id IS 'the run that last changed it';
COMMENT ON COLUMN recon.postings.planned_at IS 'when it was planned';
COMMENT ON COLUMN recon.postings.updated_at IS 'when its status last changed';
COMMENT ON COLUMN recon.postings.last_error IS 'why it is held, refused, skipped or superseded';

COMMENT ON TABLE recon.posting_log IS
    'Grain: one row per step of a posting (planned, read_back, request, response, outcome), append-only.';
COMMENT ON COLUMN recon.posting_log.id IS 'row number (primary key)';
COMMENT ON COLUMN recon.posting_log.posting_key IS 'the posting (postings.posting_key)';
COMMENT ON COLUMN recon.posting_log.run_id IS 'the run that took the step';
COMMENT ON COLUMN recon.posting_log.at IS 'when';
COMMENT ON COLUMN recon.posting_log.step IS 'planned, read_back, request, response or outcome';
COMMENT ON COLUMN recon.posting_log.outcome IS 'the step''s result (done, adopted, ambiguous, refused, held, ...)';
COMMENT ON COLUMN recon.posting_log.request IS 'what was sent (JSON, no credentials)';
COMMENT ON COLUMN recon.posting_log.response IS 'what came back, or the reason (JSON)';

-- the exception mails
COMMENT ON TABLE recon.email_log IS
    'Grain: one row per owner and day: the exception mail of that day (a re-run sends nothing new).';
COMMENT ON COLUMN recon.email_log.owner IS 'the owner the mail is for';
COMMENT ON COLUMN recon.email_log.mail_date IS 'the day of the mail';
COMMENT ON COLUMN recon.email_log.status IS 'sending, sent or nothing_to_send';
COMMENT ON COLUMN recon.email_log.recipients IS 'the addresses it went to';
COMMENT ON COLUMN recon.email_log.open_count IS 'open exceptions in the mail';
COMMENT ON COLUMN recon.email_log.new_count IS 'of which new since the previous mail';
COMMENT ON COLUMN recon.email_log.subject IS 'the subject line';
COMMENT ON COLUMN recon.email_log.run_id IS 'the run that sent it';
COMMENT ON COLUMN recon.email_log.sent_at IS 'when it was sent';

-- data quality
COMMENT ON TABLE recon.dq_results IS
    'Grain: one row per run, suite and expectation: the data-quality checks on staging (docs/data-quality.md).';
COMMENT ON COLUMN recon.dq_results.run_id IS 'the Airflow run';
COMMENT ON COLUMN recon.dq_results.suite IS 'the expectation suite (a staging table or the location map)';
COMMENT ON COLUMN recon.dq_results.expectation IS 'the expectation, its type and arguments';
COMMENT ON COLUMN recon.dq_results.severity IS 'critical (a failure holds the postings) or warning';
COMMENT ON COLUMN recon.dq_results.success IS 'whether it held';
COMMENT ON COLUMN recon.dq_results.observed_value IS 'what was observed';
COMMENT ON COLUMN recon.dq_results.element_count IS 'rows checked';
COMMENT ON COLUMN recon.dq_results.unexpected_count IS 'rows that failed it';
COMMENT ON COLUMN recon.dq_results.unexpected_sample IS 'a sample of the failing values (JSON)';
COMMENT ON COLUMN recon.dq_results.checked_at IS 'when it was checked';

-- the go-live check (0008 commented its table and columns): the grain first
COMMENT ON TABLE recon.golive_checks IS
    'Grain: one row per go-live run and check: the assumptions checked on the real accounts '
    '(python -m returns_recon.cli golive-check, DAG returns_recon_golive_check). See docs/golive.md.';
