-- The sessions holding, or queued for, a lock on a published table: no query text (it may carry data).
-- parameters: tables
SELECT a.pid, a.usename, a.state, a.state_change, a.xact_start, a.application_name, l.granted, l.mode, c.relname
FROM pg_locks AS l
INNER JOIN pg_class AS c ON l.relation = c.oid
INNER JOIN pg_stat_activity AS a ON l.pid = a.pid
WHERE
    l.locktype = 'relation'
    AND l.database = (
        SELECT oid FROM pg_database
        WHERE datname = current_database()
    )
    AND c.relnamespace = 'recon'::regnamespace
    AND c.relname = any(%(tables)s)
    AND l.pid <> pg_backend_pid()
ORDER BY a.xact_start NULLS LAST, a.pid, c.relname
