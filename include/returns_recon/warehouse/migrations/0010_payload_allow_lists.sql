-- Stored payloads keep only the fields allowed for their entity (returns_recon/privacy.py, ALLOWED), no
-- longer the whole record with personal fields redacted by name. Per entity, the allow-list (its digest)
-- the payloads already in raw.api_records and raw.quarantine were minimised under: when a list changes,
-- and once after upgrading from the redaction, the loader minimises that entity's stored payloads again
-- (in batches, with their content hashes) before it loads anything new of it.
CREATE TABLE raw.payload_minimisation (
    source      text        NOT NULL,
    entity      text        NOT NULL,
    allow_list  text        NOT NULL,          -- privacy.digest(ALLOWED[(source, entity)])
    records     bigint      NOT NULL,          -- raw.api_records payloads rewritten
    quarantined bigint      NOT NULL,          -- raw.quarantine payloads rewritten
    applied_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, entity, allow_list)
);
