-- Webhook events (issue 20): every verified delivery from Reveni or Cin7 Core lands here once (a replayed
-- delivery only counts), with personal data redacted as for polled records; the events DAG processes each row
-- once (processed_at) and the batch runs stay the source of truth. Deliveries that fail verification are never
-- stored as data: they are counted per day, source and reason in ops.webhook_rejections. A new row notifies the
-- channel returns_recon_inbox (the events DAG's watcher listens, and polls as a fallback).
CREATE TABLE raw.webhook_inbox (
    inbox_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source text NOT NULL CHECK (source IN ('reveni', 'cin7')),
    event_id text NOT NULL,
    event_type text NOT NULL,
    resource_ids text[] NOT NULL DEFAULT '{}',
    signed_at timestamptz,
    received_at timestamptz NOT NULL DEFAULT now(),
    deliveries integer NOT NULL DEFAULT 1,
    last_delivered_at timestamptz NOT NULL DEFAULT now(),
    payload jsonb NOT NULL,
    processed_at timestamptz,
    processed_by_run text,
    UNIQUE (source, event_id)
);
CREATE INDEX webhook_inbox_pending ON raw.webhook_inbox (inbox_id) WHERE processed_at IS NULL;

COMMENT ON TABLE raw.webhook_inbox IS
'One row per webhook event received and verified (Reveni return.created/return.updated, Cin7 Core webhooks); '
'a replayed delivery of the same event updates deliveries and last_delivered_at, never adds a row.';
COMMENT ON COLUMN raw.webhook_inbox.event_id IS
'Reveni: the envelope id. Cin7 Core sends none: the SHA-256 of the body, so its retries of one delivery are one '
'event.';
COMMENT ON COLUMN raw.webhook_inbox.resource_ids IS
'What the event is about: the Reveni return id (data.resource_id), or the Cin7 Core sale ids (SaleID).';
COMMENT ON COLUMN raw.webhook_inbox.signed_at IS 'Reveni: the t= of X-REVENI-SIGNATURE; empty for Cin7 Core.';
COMMENT ON COLUMN raw.webhook_inbox.payload IS 'The event as received, personal data redacted.';
COMMENT ON COLUMN raw.webhook_inbox.processed_at IS 'When the events DAG processed it; empty while pending.';
COMMENT ON COLUMN raw.webhook_inbox.processed_by_run IS 'The Airflow run of the events DAG that processed it.';

CREATE TABLE ops.webhook_rejections (
    day date NOT NULL,
    source text NOT NULL,
    reason text NOT NULL,
    rejected bigint NOT NULL DEFAULT 0,
    last_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (day, source, reason)
);
COMMENT ON TABLE ops.webhook_rejections IS
'Deliveries refused by the webhook receiver (bad or missing signature or token, stale timestamp, body too large, '
'unreadable body), counted per day, source and reason; their bodies are never stored.';

CREATE FUNCTION raw.notify_webhook_inbox() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('returns_recon_inbox', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER webhook_inbox_notify AFTER INSERT ON raw.webhook_inbox
FOR EACH STATEMENT EXECUTE FUNCTION raw.notify_webhook_inbox();
