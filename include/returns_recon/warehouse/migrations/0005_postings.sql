-- Corrective postings: one row per idempotency key (the outbox), and an append-only log of every
-- step (planned, read-back, request, response, outcome) with its run id.
CREATE TABLE recon.postings (
    posting_key     text PRIMARY KEY,          -- sha256(action|return|item|target), never time or randomness
    action          text NOT NULL,
    system          text NOT NULL CHECK (system IN ('cin7', 'sitoo')),
    exception_key   text NOT NULL,
    return_id       text NOT NULL,
    item_id         text,
    reference       text NOT NULL,             -- what we look the document up by in the target system
    payload         jsonb NOT NULL,
    amount          numeric(18, 2),
    status          text NOT NULL CHECK (status IN ('planned', 'sending', 'done', 'adopted', 'ambiguous',
                                                    'refused', 'dry_run', 'skipped')),
    target_ref      text,                      -- TaskID, transaction id or order id once known
    attempts        integer NOT NULL DEFAULT 0,
    planned_run_id  text NOT NULL,
    last_run_id     text NOT NULL,
    planned_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    last_error      text
);
CREATE INDEX postings_status ON recon.postings (status);
CREATE INDEX postings_exception ON recon.postings (exception_key);

CREATE TABLE recon.posting_log (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    posting_key     text NOT NULL,
    run_id          text NOT NULL,
    at              timestamptz NOT NULL DEFAULT clock_timestamp(),
    step            text NOT NULL,             -- planned, read_back, request, response, outcome
    outcome         text,
    request         jsonb,
    response        jsonb
);
CREATE INDEX posting_log_key ON recon.posting_log (posting_key);
REVOKE UPDATE, DELETE, TRUNCATE ON recon.posting_log FROM PUBLIC;

INSERT INTO recon.dim_exception_types VALUES
 ('credit_note_awaiting_approval', 'finance', 'medium', NULL, 'return',
  'A corrective credit note above the approval threshold was posted as DRAFT: approve it in Cin7 Core.'),
 ('posting_refused', 'finance', 'high', NULL, 'return',
  'A corrective posting was refused by the target system (for example a second credit note on a Simple Sale).');

CREATE INDEX stg_cin7__stock_transfers_item_reference
    ON staging.stg_cin7__stock_transfers (split_part(reference, ' ', 1));

GRANT SELECT ON recon.postings, recon.posting_log TO recon_reader;
