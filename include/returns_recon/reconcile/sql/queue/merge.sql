-- The exception queue takes this run's findings: one row per stable key; re-runs update, never duplicate. A mismatch
-- that comes back re-opens; a person's acknowledgement or resolution stands.
-- parameters: run_id
INSERT INTO recon.exceptions AS e (
    exception_key, exception_type, owner, severity, return_id, item_id, sku, state, first_seen_at, last_seen_at,
    occurrences, evidence, last_run_id
)
SELECT
    f.exception_key, f.exception_type, t.owner, t.severity, f.return_id, f.item_id, f.sku, 'open', now(), now(),
    1, f.evidence, %(run_id)s
FROM found AS f INNER JOIN recon.dim_exception_types AS t USING (exception_type)
ON CONFLICT (exception_key) DO UPDATE
    SET
        last_seen_at = now(),
        occurrences = e.occurrences + CASE WHEN e.last_run_id = excluded.last_run_id THEN 0 ELSE 1 END,
        evidence = excluded.evidence,
        sku = excluded.sku,
        last_run_id = excluded.last_run_id,
        state = CASE WHEN e.state = 'auto_resolved' THEN 'open' ELSE e.state END,
        reopened_count = e.reopened_count + CASE WHEN e.state = 'auto_resolved' THEN 1 ELSE 0 END,
        resolved_at = CASE WHEN e.state = 'auto_resolved' THEN NULL ELSE e.resolved_at END,
        fixed_by_posting = CASE WHEN e.state = 'auto_resolved' THEN NULL ELSE e.fixed_by_posting END
RETURNING (xmax = 0) AS inserted, (e.reopened_count > 0 AND e.last_seen_at = now()) AS touched
