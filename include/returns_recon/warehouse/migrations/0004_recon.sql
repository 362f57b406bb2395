-- The exception taxonomy (operating-model.md §3) and the exception queue.
CREATE TABLE recon.dim_exception_types (
    exception_type  text PRIMARY KEY,
    owner           text NOT NULL,
    severity        text NOT NULL,
    auto_fix        text,
    level           text NOT NULL CHECK (level IN ('return', 'item')),
    description     text NOT NULL
);

INSERT INTO recon.dim_exception_types VALUES
 ('refund_without_credit_note', 'finance', 'high', 'create the credit note from the original sale''s invoice lines', 'return', 'A Reveni refund was paid but Cin7 Core has no AUTHORISED credit note for the return.'),
 ('credit_note_amount_mismatch', 'finance', 'high', NULL, 'return', 'The credit note total differs from the refunded amount.'),
 ('credit_note_tax_mismatch', 'finance', 'medium', NULL, 'return', 'The credit note tax differs from the tax of the original invoice lines.'),
 ('credit_note_without_refund', 'finance', 'critical', NULL, 'return', 'An AUTHORISED credit note is attributed to a return with no refund paid.'),
 ('duplicate_credit_note', 'finance', 'critical', NULL, 'return', 'More than one AUTHORISED credit note is attributed to the return.'),
 ('double_refund', 'finance', 'critical', NULL, 'return', 'Reveni refunded the return and a paid POS refund exists for the same items.'),
 ('sale_not_found', 'finance', 'high', NULL, 'return', 'No Cin7 Core sale carries the shop order number; postings for the return are blocked.'),
 ('missing_restock', 'operations', 'medium', 'restock into the holding location', 'item', 'Goods received at a warehouse were not restocked into the holding location.'),
 ('premature_restock', 'operations', 'high', 'transfer sellable to holding', 'item', 'Units reached sellable stock before the item was accepted.'),
 ('inspected_not_released', 'operations', 'medium', 'transfer holding to sellable', 'item', 'An accepted, restockable item is still in holding past the release SLA.'),
 ('rejected_item_in_sellable_stock', 'operations', 'high', 'transfer sellable to holding', 'item', 'A rejected (or not restockable) item is in sellable stock.'),
 ('sitoo_stock_missing', 'operations', 'medium', 'warehouse transaction at the mapped store warehouse', 'item', 'An accepted store return was not added to the store''s Sitoo stock within the SLA.'),
 ('sitoo_stock_wrong_location', 'operations', 'high', NULL, 'item', 'The Sitoo stock for the item was added at another warehouse than the mapped one.'),
 ('sitoo_return_record_missing', 'finance', 'medium', 'create the linked return record', 'return', 'A refunded store return has no Sitoo return record.'),
 ('restock_latency_breach', 'operations', 'info', NULL, 'item', 'The release or store restock happened, but later than its SLA.'),
 ('unknown_sku_cin7', 'data', 'high', NULL, 'item', 'The Reveni SKU does not exist exactly in Cin7 Core; postings for the item are blocked.'),
 ('unknown_sku_sitoo', 'data', 'high', NULL, 'item', 'The store return''s SKU does not exist exactly in Sitoo; Sitoo postings for the item are blocked.'),
 ('unmapped_location', 'data', 'high', NULL, 'return', 'The return point is not (validly) in the location map; stock postings are blocked.'),
 ('exchange_order_missing', 'customer service', 'high', NULL, 'return', 'An exchange was requested but no exchange order exists.'),
 ('exchange_order_held', 'customer service', 'medium', NULL, 'return', 'The exchange order exists but is not released for dispatch.'),
 ('invalid_record', 'data', 'medium', NULL, 'return', 'A payload failed validation and was quarantined with its reason.');

CREATE TABLE recon.exceptions (
    exception_key       text PRIMARY KEY,       -- type:return[:item], stable across runs
    exception_type      text NOT NULL REFERENCES recon.dim_exception_types,
    owner               text NOT NULL,
    severity            text NOT NULL,
    return_id           text,
    item_id             text,
    sku                 text,
    state               text NOT NULL CHECK (state IN ('open', 'acknowledged', 'resolved', 'auto_resolved')),
    first_seen_at       timestamptz NOT NULL,
    last_seen_at        timestamptz NOT NULL,
    occurrences         integer NOT NULL DEFAULT 1,
    evidence            jsonb NOT NULL DEFAULT '{}',
    fixed_by_posting    text,
    resolved_at         timestamptz,
    acknowledged_by     text,
    note                text,
    reopened_count      integer NOT NULL DEFAULT 0,
    last_run_id         text NOT NULL
);
CREATE INDEX exceptions_state ON recon.exceptions (state, owner);
CREATE INDEX exceptions_return ON recon.exceptions (return_id);

CREATE TABLE recon.recon_runs (
    run_id          text PRIMARY KEY,
    mode            text NOT NULL,
    started_at      timestamptz NOT NULL,
    finished_at     timestamptz NOT NULL DEFAULT now(),
    returns_in_scope integer NOT NULL,
    exceptions_found integer NOT NULL,
    opened          integer NOT NULL,
    auto_resolved   integer NOT NULL
);

GRANT SELECT ON recon.dim_exception_types, recon.exceptions, recon.recon_runs TO recon_reader;
