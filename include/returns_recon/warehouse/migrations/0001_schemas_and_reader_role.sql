-- Layers of the warehouse: raw (records as fetched), staging (typed, dbt-style stg_ tables),
-- recon (published tables that finance reads). recon_reader may read recon and nothing else.
CREATE SCHEMA IF NOT EXISTS raw;
CREATE SCHEMA IF NOT EXISTS staging;
CREATE SCHEMA IF NOT EXISTS recon;

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'recon_reader') THEN
        CREATE ROLE recon_reader NOLOGIN;
    END IF;
END
$$;

REVOKE ALL ON SCHEMA raw, staging FROM PUBLIC;
REVOKE ALL ON SCHEMA raw, staging FROM recon_reader;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA recon TO recon_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA recon TO recon_reader;
ALTER DEFAULT PRIVILEGES IN SCHEMA recon GRANT SELECT ON TABLES TO recon_reader;
