-- The run's counts in recon.recon_runs (a re-run of the same run id updates its row).
-- parameters: run_id, mode, started_at, returns_in_scope, exceptions_found, opened, auto_resolved
INSERT INTO recon.recon_runs (
    run_id, mode, started_at, returns_in_scope, exceptions_found, opened, auto_resolved
)
VALUES (
    %(run_id)s, %(mode)s, %(started_at)s, %(returns_in_scope)s, %(exceptions_found)s, %(opened)s, %(auto_resolved)s
)
ON CONFLICT (run_id) DO UPDATE SET
    finished_at = now(),
    returns_in_scope = excluded.returns_in_scope,
    exceptions_found = excluded.exceptions_found,
    opened = excluded.opened,
    auto_resolved = excluded.auto_resolved
