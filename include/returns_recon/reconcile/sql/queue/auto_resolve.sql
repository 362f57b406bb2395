-- The open exceptions not found this run are auto-resolved, unless the return lies outside this run's window (not
-- looked at). Fixed by one of our postings, the row keeps which one, when and with which document (one incident, one
-- row: no restock_latency_breach is raised for that late release, operating-model.md §3): the posting with the
-- exception's key, or for a missing_restock the credit note of ours that carried the item's restock line in the same
-- POST (one coherent change per document). Index lookups by key and by return. A targeted run (scope: its return
-- ids) resolves only exceptions of those returns, never one without a return (the batch runs pass a NULL scope).
-- parameters: run_id, scope
WITH gone AS (
    SELECT e.exception_key, fix.posting_key, fix.evidence
    FROM recon.exceptions AS e
    LEFT JOIN LATERAL (
        SELECT
            p.posting_key,
            jsonb_strip_nulls(jsonb_build_object(
                'fixed_at', p.updated_at, 'fixed_by_action', p.action, 'fixed_by_document', p.target_ref
            )) AS evidence
        FROM (
            SELECT q.*, 1 AS rank FROM recon.postings AS q
            WHERE q.exception_key = e.exception_key AND q.status IN ('done', 'adopted')
            UNION ALL
            SELECT q.*, 2 FROM recon.postings AS q
            WHERE
                e.exception_type = 'missing_restock' AND q.return_id = e.return_id
                AND q.action = 'create_credit_note' AND q.status IN ('done', 'adopted') AND q.payload ? 'Restock'
        ) AS p
        ORDER BY p.rank ASC, p.updated_at DESC
        LIMIT 1
    ) AS fix ON TRUE
    WHERE
        recon.is_open(e.state)
        AND NOT EXISTS (
            SELECT 1 FROM found AS f
            WHERE f.exception_key = e.exception_key
        )
        AND (
            e.return_id IS NULL
            OR EXISTS (
                SELECT 1 FROM int_returns AS r
                WHERE r.return_id = e.return_id
            )
            OR NOT EXISTS (
                SELECT 1 FROM staging.stg_reveni__returns AS s
                WHERE s.return_id = e.return_id
            )
        )
        AND (%(scope)s::text[] IS NULL OR e.return_id = any(%(scope)s::text[]))
)

UPDATE recon.exceptions AS e
SET
    state = 'auto_resolved',
    resolved_at = now(),
    last_run_id = %(run_id)s,
    fixed_by_posting = gone.posting_key,
    evidence = e.evidence || coalesce(gone.evidence, '{}')
FROM gone
WHERE e.exception_key = gone.exception_key
