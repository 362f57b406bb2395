-- A posting whose reason is gone before it is sent (the exception was resolved another way, or a person's
-- document appeared on the target since the plan) is closed as superseded, never sent.
ALTER TABLE recon.postings DROP CONSTRAINT postings_status_check;
ALTER TABLE recon.postings ADD CONSTRAINT postings_status_check
    CHECK (status IN ('planned', 'sending', 'done', 'adopted', 'ambiguous', 'refused', 'dry_run', 'skipped', 'held',
                      'superseded'));
