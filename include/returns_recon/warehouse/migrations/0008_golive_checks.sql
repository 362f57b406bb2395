-- The go-live check (docs/golive.md): one row per check per run, read-only questions asked of the
-- real accounts about what the vendors do not document. Postings to a system stay held until the
-- latest run of its checks has no failed blocking check (or the merchant overrides: RECON_GOLIVE_OVERRIDE).
CREATE TABLE recon.golive_checks (
    run_id          text NOT NULL,
    checked_at      timestamptz NOT NULL,
    system          text NOT NULL CHECK (system IN ('reveni', 'cin7', 'sitoo')),
    check_id        text NOT NULL,
    assumption      text NOT NULL,
    source          text NOT NULL,
    setting         text NOT NULL,
    blocking        boolean NOT NULL,
    expected        text NOT NULL CHECK (expected IN ('confirmed', 'refuted')),
    outcome         text NOT NULL CHECK (outcome IN ('confirmed', 'refuted', 'unverified', 'error')),
    passed          boolean,                   -- NULL: unverified (nothing on the account to ask about)
    evidence        jsonb NOT NULL DEFAULT '{}',
    account         text NOT NULL,             -- which account was asked: a hash of its base URL and login
    PRIMARY KEY (run_id, check_id)
);
CREATE INDEX golive_checks_latest ON recon.golive_checks (system, checked_at DESC);

COMMENT ON TABLE recon.golive_checks IS
    'Go-live check results: one row per assumption checked per run (python -m returns_recon.cli golive-check, '
    'DAG returns_recon_golive_check). See docs/golive.md.';
COMMENT ON COLUMN recon.golive_checks.run_id IS 'the go-live run (all checks of one run share it)';
COMMENT ON COLUMN recon.golive_checks.checked_at IS 'when the run started';
COMMENT ON COLUMN recon.golive_checks.system IS 'the system asked: reveni, cin7 or sitoo';
COMMENT ON COLUMN recon.golive_checks.check_id IS 'the check (a row of the Assumptions table in docs/golive.md)';
COMMENT ON COLUMN recon.golive_checks.assumption IS 'the assumption, in one sentence';
COMMENT ON COLUMN recon.golive_checks.source IS 'where it comes from: vendor file and line, or vendor silent';
COMMENT ON COLUMN recon.golive_checks.setting IS 'the setting that governs it (RECON_ variable or connection extra)';
COMMENT ON COLUMN recon.golive_checks.blocking IS 'whether a failure holds the postings to this system';
COMMENT ON COLUMN recon.golive_checks.expected IS 'the answer the pipeline is configured for: confirmed or refuted';
COMMENT ON COLUMN recon.golive_checks.outcome IS 'what the account answered: confirmed, refuted, unverified, error';
COMMENT ON COLUMN recon.golive_checks.passed IS 'outcome = expected; NULL when unverified; false on error';
COMMENT ON COLUMN recon.golive_checks.account IS
    'the account asked (sha256 of the connection''s base URL and login, no secret): a pass releases that account only';
COMMENT ON COLUMN recon.golive_checks.evidence IS 'what was asked and seen (no credentials, no personal data)';

-- a posting to a system whose go-live check has not passed is held (sent by a later run once it passes)
ALTER TABLE recon.postings DROP CONSTRAINT postings_status_check;
ALTER TABLE recon.postings ADD CONSTRAINT postings_status_check
    CHECK (status IN ('planned', 'sending', 'done', 'adopted', 'ambiguous', 'refused', 'dry_run', 'skipped', 'held'));

GRANT SELECT ON recon.golive_checks TO recon_reader;
