-- operating-model.md §3 (amended): one incident, one row. A release or store restock after its SLA is a
-- restock_latency_breach only when someone else made it; our own corrective posting of an SLA exception already
-- raised for the item is kept on that exception's row (auto_resolved, fixed_by_posting, evidence.fixed_at).
UPDATE recon.dim_exception_types
SET description = 'The release or store restock happened, but later than its SLA, and not by our own corrective '
                  'posting of an SLA exception already raised for the item (that row keeps the times: one '
                  'incident, one row).'
WHERE exception_type = 'restock_latency_breach';

-- the credit note of ours that fixed a return's missing restocks is found by its return
CREATE INDEX IF NOT EXISTS postings_return ON recon.postings (return_id);
