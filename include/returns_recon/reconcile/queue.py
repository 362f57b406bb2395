"""The exception queue: one row per stable key; re-runs update, never duplicate."""

from __future__ import annotations

MERGE = """
INSERT INTO recon.exceptions AS e
    (exception_key, exception_type, owner, severity, return_id, item_id, sku, state, first_seen_at, last_seen_at,
     occurrences, evidence, last_run_id)
SELECT f.exception_key, f.exception_type, t.owner, t.severity, f.return_id, f.item_id, f.sku, 'open', now(), now(),
       1, f.evidence, %(run_id)s
FROM found f JOIN recon.dim_exception_types t USING (exception_type)
ON CONFLICT (exception_key) DO UPDATE SET
    last_seen_at = now(),
    occurrences = e.occurrences + CASE WHEN e.last_run_id = EXCLUDED.last_run_id THEN 0 ELSE 1 END,
    evidence = EXCLUDED.evidence,
    sku = EXCLUDED.sku,
    last_run_id = EXCLUDED.last_run_id,
    -- a mismatch that comes back re-opens; a human's acknowledgement or resolution stands
    state = CASE WHEN e.state = 'auto_resolved' THEN 'open' ELSE e.state END,
    reopened_count = e.reopened_count + CASE WHEN e.state = 'auto_resolved' THEN 1 ELSE 0 END,
    resolved_at = CASE WHEN e.state = 'auto_resolved' THEN NULL ELSE e.resolved_at END,
    fixed_by_posting = CASE WHEN e.state = 'auto_resolved' THEN NULL ELSE e.fixed_by_posting END
RETURNING (xmax = 0) AS inserted, (e.reopened_count > 0 AND e.last_seen_at = now()) AS touched
"""

# The posting that fixed an exception: its own, or for a missing_restock the credit note of ours that carried the
# item's restock line in the same POST (one coherent change per document). Index lookups by key and by return.
FIX = """(SELECT {column} FROM (
        SELECT q.*, 1 AS rank FROM recon.postings q
        WHERE q.exception_key = e.exception_key AND q.status IN ('done', 'adopted')
        UNION ALL
        SELECT q.*, 2 FROM recon.postings q
        WHERE e.exception_type = 'missing_restock' AND q.return_id = e.return_id AND q.action = 'create_credit_note'
          AND q.status IN ('done', 'adopted') AND q.payload ? 'Restock') p
    ORDER BY p.rank, p.updated_at DESC LIMIT 1)"""

# Gone this run: auto-resolved, unless the return lies outside this run's window (not looked at). Fixed by
# one of our postings, the row keeps when and with which document (one incident, one row: no
# restock_latency_breach is raised for that late release, operating-model.md §3).
FIXED_BY = FIX.format(column="p.posting_key")
FIX_EVIDENCE = FIX.format(
    column="jsonb_strip_nulls(jsonb_build_object('fixed_at', p.updated_at, "
    "'fixed_by_action', p.action, 'fixed_by_document', p.target_ref))"
)
AUTO_RESOLVE = f"""
UPDATE recon.exceptions e
SET state = 'auto_resolved', resolved_at = now(), last_run_id = %(run_id)s,
    fixed_by_posting = {FIXED_BY},
    evidence = e.evidence || coalesce({FIX_EVIDENCE}, '{{}}')
WHERE e.state IN ('open', 'acknowledged')
  AND NOT EXISTS (SELECT 1 FROM found f WHERE f.exception_key = e.exception_key)
  AND (e.return_id IS NULL
       OR EXISTS (SELECT 1 FROM int_returns r WHERE r.return_id = e.return_id)
       OR NOT EXISTS (SELECT 1 FROM staging.stg_reveni__returns s WHERE s.return_id = e.return_id))
"""

SET_STATE = """
UPDATE recon.exceptions
SET state = %(state)s, acknowledged_by = %(by)s, note = coalesce(%(note)s, note),
    resolved_at = CASE WHEN %(state)s = 'resolved' THEN now() ELSE resolved_at END
WHERE exception_key = %(key)s
RETURNING exception_key
"""
