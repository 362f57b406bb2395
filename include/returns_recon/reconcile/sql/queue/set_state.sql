-- A person acknowledges, resolves or re-opens an exception (engine.set_state; the queue's trigger keeps the event).
-- parameters: state, by, note, key
UPDATE recon.exceptions
SET
    state = %(state)s,
    acknowledged_by = %(by)s,
    note = coalesce(%(note)s, note),
    resolved_at = CASE WHEN %(state)s = 'resolved' THEN now() ELSE resolved_at END
WHERE exception_key = %(key)s
RETURNING exception_key
