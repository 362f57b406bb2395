-- Readers never freeze publishing (docs/reconciliation.md, "Readers and locks").
--
-- A recon_reader session left idle in a transaction keeps its ACCESS SHARE locks on the published
-- tables, and the swap that publishes them (ACCESS EXCLUSIVE) cannot go through until it ends. In this
-- database such a session is ended after 5 minutes idle in a transaction (300 s, the default of
-- RECON_READER_IDLE_TIMEOUT_SECONDS; the migration runner applies that setting after the migrations,
-- so a deployment may choose another value). It applies to sessions that start afterwards.
--
-- The pipeline's login is also made a member of recon_reader that inherits its privileges (SELECT on
-- the published tables, which it owns anyway) but cannot SET ROLE to it: that lets it see its readers'
-- state in pg_stat_activity, so a publish that gives up can name the sessions that blocked it.
--
-- Both need the ADMIN option on recon_reader, which the login has when it created the role (migration
-- 0001). When recon_reader was created by someone else, this warns and changes nothing; a superuser
-- can then run the two statements below by hand (with the login and database named).
DO $$
BEGIN
    EXECUTE format('ALTER ROLE recon_reader IN DATABASE %I SET idle_in_transaction_session_timeout = %L',
                   current_database(), '300s');
    IF current_setting('server_version_num')::int >= 160000 THEN
        EXECUTE 'GRANT recon_reader TO CURRENT_USER WITH INHERIT TRUE, SET FALSE';
    ELSE
        EXECUTE 'GRANT recon_reader TO CURRENT_USER';
    END IF;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE WARNING 'recon_reader''s idle timeout not set: % lacks the ADMIN option on recon_reader', current_user;
END
$$;
