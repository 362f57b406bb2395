-- raw: every record as fetched, once per (source, entity, natural key); rewritten only when its
-- content hash changes. quarantine: payloads that failed validation, with the reason.
CREATE TABLE raw.api_records (
    source          text        NOT NULL,
    entity          text        NOT NULL,
    natural_key     text        NOT NULL,
    content_hash    text        NOT NULL,
    payload         jsonb       NOT NULL,
    first_fetched_at timestamptz NOT NULL DEFAULT now(),
    fetched_at      timestamptz NOT NULL DEFAULT now(),
    run_id          text        NOT NULL,
    PRIMARY KEY (source, entity, natural_key)
);

CREATE TABLE raw.quarantine (
    source          text        NOT NULL,
    entity          text        NOT NULL,
    natural_key     text,
    payload_hash    text        NOT NULL,
    payload         jsonb       NOT NULL,
    error           text        NOT NULL,
    first_seen_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at    timestamptz NOT NULL DEFAULT now(),
    occurrences     integer     NOT NULL DEFAULT 1,
    run_id          text        NOT NULL,
    superseded_at   timestamptz,           -- a valid version of the same record arrived later
    PRIMARY KEY (source, entity, payload_hash)
);
CREATE INDEX quarantine_key ON raw.quarantine (source, entity, natural_key);

CREATE TABLE raw.extract_watermarks (
    source      text        NOT NULL,
    entity      text        NOT NULL,
    watermark   text        NOT NULL,      -- a timestamp or a monotonic id, as the source pages
    updated_at  timestamptz NOT NULL DEFAULT now(),
    run_id      text        NOT NULL,
    PRIMARY KEY (source, entity)
);

CREATE TABLE raw.extract_runs (
    run_id      text        NOT NULL,
    source      text        NOT NULL,
    entity      text        NOT NULL,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz NOT NULL DEFAULT now(),
    window_from text,
    fetched     integer     NOT NULL,
    changed     integer     NOT NULL,
    quarantined integer     NOT NULL,
    api_calls   integer     NOT NULL,
    PRIMARY KEY (run_id, source, entity)
);

-- staging: typed, one-to-one with source entities (dbt style stg_<source>__<entity>).
CREATE TABLE staging.stg_reveni__returns (
    return_id           text PRIMARY KEY,
    order_id            text,
    order_external_id   text NOT NULL,
    return_type         text NOT NULL,
    is_instant          boolean NOT NULL,
    status              text NOT NULL,
    amount              numeric(18, 4) NOT NULL,
    currency            char(3) NOT NULL,
    refund_method       text,
    return_point_id     text NOT NULL,
    return_point_type   text,
    return_point_name   text,
    received_at         timestamptz,
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    _run_id             text NOT NULL
);
CREATE INDEX stg_reveni__returns_order ON staging.stg_reveni__returns (order_external_id);
CREATE INDEX stg_reveni__returns_updated ON staging.stg_reveni__returns (updated_at);

CREATE TABLE staging.stg_reveni__return_items (
    item_id             text PRIMARY KEY,
    return_id           text NOT NULL,
    line_no             integer NOT NULL,
    sku                 text NOT NULL,
    name                text,
    quantity            integer NOT NULL,
    unit_price          numeric(18, 4),
    return_reason       text,
    exchange_sku        text,
    validation_status   text NOT NULL,
    restock             boolean,
    validated_at        timestamptz
);
CREATE INDEX stg_reveni__return_items_return ON staging.stg_reveni__return_items (return_id);

CREATE TABLE staging.stg_reveni__refunds (
    refund_id           text PRIMARY KEY,
    return_id           text NOT NULL,
    amount              numeric(18, 4) NOT NULL,
    currency            char(3) NOT NULL,
    status              text NOT NULL,
    method              text,
    refunded_at         timestamptz
);
CREATE INDEX stg_reveni__refunds_return ON staging.stg_reveni__refunds (return_id);

CREATE TABLE staging.stg_cin7__sales (
    sale_id             text PRIMARY KEY,
    customer_reference  text,
    external_id         text,
    order_number        text,
    status              text,
    sale_type           text,
    order_status        text,
    location            text,
    tax_calculation     text,
    base_currency       char(3),
    customer_currency   char(3) NOT NULL,
    source_channel      text,
    sale_order_date     timestamptz,
    updated_at          timestamptz NOT NULL,
    _run_id             text NOT NULL
);
CREATE INDEX stg_cin7__sales_customer_reference ON staging.stg_cin7__sales (customer_reference);
CREATE INDEX stg_cin7__sales_external_id ON staging.stg_cin7__sales (external_id);

CREATE TABLE staging.stg_cin7__sale_lines (
    sale_id             text NOT NULL,
    document            text NOT NULL,      -- 'order' or the invoice number
    line_no             integer NOT NULL,
    invoice_status      text,
    product_id          text,
    sku                 text NOT NULL,
    name                text,
    quantity            numeric(18, 4) NOT NULL,
    price               numeric(18, 4) NOT NULL,
    discount            numeric(9, 4) NOT NULL,
    tax                 numeric(18, 2) NOT NULL,
    total               numeric(18, 2) NOT NULL,
    tax_rule            text,
    PRIMARY KEY (sale_id, document, line_no)
);

CREATE TABLE staging.stg_cin7__credit_notes (
    task_id             text PRIMARY KEY,
    sale_id             text NOT NULL,
    credit_note_number  text,
    invoice_number      text,
    memo                text,
    status              text NOT NULL,
    restock_status      text,
    credit_note_date    timestamptz,
    total_before_tax    numeric(18, 2) NOT NULL,
    tax                 numeric(18, 2) NOT NULL,
    total               numeric(18, 2) NOT NULL,
    currency            char(3) NOT NULL
);
CREATE INDEX stg_cin7__credit_notes_sale ON staging.stg_cin7__credit_notes (sale_id);
CREATE INDEX stg_cin7__credit_notes_memo ON staging.stg_cin7__credit_notes (memo);

CREATE TABLE staging.stg_cin7__credit_note_lines (
    task_id             text NOT NULL,
    line_no             integer NOT NULL,
    sale_id             text NOT NULL,
    product_id          text,
    sku                 text NOT NULL,
    quantity            numeric(18, 4) NOT NULL,
    price               numeric(18, 4) NOT NULL,
    discount            numeric(9, 4) NOT NULL,
    tax                 numeric(18, 2) NOT NULL,
    total               numeric(18, 2) NOT NULL,
    tax_rule            text,
    PRIMARY KEY (task_id, line_no)
);

CREATE TABLE staging.stg_cin7__restocks (
    task_id             text NOT NULL,
    line_no             integer NOT NULL,
    sale_id             text NOT NULL,
    product_id          text,
    sku                 text NOT NULL,
    quantity            numeric(18, 4) NOT NULL,
    location            text,
    restock_location    text NOT NULL,
    restock_status      text,
    restock_date        timestamptz,
    PRIMARY KEY (task_id, line_no)
);

CREATE TABLE staging.stg_cin7__stock_transfers (
    task_id             text PRIMARY KEY,
    number              text,
    status              text NOT NULL,
    from_location       text,
    to_location         text,
    reference           text,
    completion_date     timestamptz,
    updated_at          timestamptz,
    _run_id             text NOT NULL
);
CREATE INDEX stg_cin7__stock_transfers_reference ON staging.stg_cin7__stock_transfers (reference);

CREATE TABLE staging.stg_cin7__products (
    product_id          text PRIMARY KEY,
    sku                 text NOT NULL,
    name                text,
    status              text,
    product_type        text,
    _run_id             text NOT NULL
);
CREATE INDEX stg_cin7__products_sku ON staging.stg_cin7__products (sku);

CREATE TABLE staging.stg_cin7__locations (
    location_id         text PRIMARY KEY,
    name                text NOT NULL,
    is_deprecated       boolean NOT NULL DEFAULT false,
    _run_id             text NOT NULL
);

CREATE TABLE staging.stg_cin7__availability (
    product_id          text NOT NULL,
    location            text NOT NULL,
    sku                 text NOT NULL,
    on_hand             numeric(18, 4) NOT NULL,
    allocated           numeric(18, 4) NOT NULL,
    available           numeric(18, 4) NOT NULL,
    _run_id             text NOT NULL,
    PRIMARY KEY (product_id, location)
);

CREATE TABLE staging.stg_sitoo__products (
    product_id          bigint PRIMARY KEY,
    sku                 text NOT NULL,
    title               text,
    active_pos          boolean,
    _run_id             text NOT NULL
);
CREATE INDEX stg_sitoo__products_sku ON staging.stg_sitoo__products (sku);

CREATE TABLE staging.stg_sitoo__warehouses (
    warehouse_id        bigint PRIMARY KEY,
    warehouse_type      integer NOT NULL,
    use_type            integer,
    store_id            bigint,
    sellable            boolean,
    name                text,
    external_id         text,
    _run_id             text NOT NULL
);

CREATE TABLE staging.stg_sitoo__stores (
    store_id            bigint PRIMARY KEY,
    name                text,
    external_id         text,
    _run_id             text NOT NULL
);

CREATE TABLE staging.stg_sitoo__warehouse_items (
    warehouse_id        bigint NOT NULL,
    sku                 text NOT NULL,
    decimal_total       numeric(18, 3) NOT NULL,
    decimal_available   numeric(18, 3),
    date_last_modified  timestamptz,
    _run_id             text NOT NULL,
    PRIMARY KEY (warehouse_id, sku)
);

CREATE TABLE staging.stg_sitoo__warehouse_transactions (
    transaction_id      bigint PRIMARY KEY,
    warehouse_id        bigint NOT NULL,
    transaction_type    integer NOT NULL,
    external_id         text,
    description         text,
    reason_code         text,
    date_created        timestamptz NOT NULL,
    _run_id             text NOT NULL
);
CREATE INDEX stg_sitoo__warehouse_transactions_external ON staging.stg_sitoo__warehouse_transactions (external_id);

CREATE TABLE staging.stg_sitoo__warehouse_transaction_items (
    transaction_id      bigint NOT NULL,
    line_no             integer NOT NULL,
    sku                 text NOT NULL,
    quantity            numeric(18, 3) NOT NULL,
    PRIMARY KEY (transaction_id, line_no)
);

CREATE TABLE staging.stg_sitoo__orders (
    order_id            bigint PRIMARY KEY,
    external_id         text,
    credit_order_id     bigint,
    order_date          timestamptz NOT NULL,
    order_state         integer,
    payment_state       integer,
    order_type          integer,
    warehouse_id        bigint,
    currency            char(3),
    total_gross         numeric(18, 2) NOT NULL,
    payments_total      numeric(18, 2) NOT NULL,
    _run_id             text NOT NULL
);
CREATE INDEX stg_sitoo__orders_external ON staging.stg_sitoo__orders (external_id);

CREATE TABLE staging.stg_sitoo__order_items (
    order_id            bigint NOT NULL,
    line_no             integer NOT NULL,
    sku                 text,
    product_name        text,
    quantity            integer NOT NULL,
    total_net           numeric(18, 2),
    total_vat           numeric(18, 2),
    PRIMARY KEY (order_id, line_no)
);

CREATE TABLE staging.dim_location_map (
    return_point_id         text PRIMARY KEY,
    return_point_name       text,
    kind                    text NOT NULL CHECK (kind IN ('store', 'warehouse')),
    sitoo_warehouse_id      bigint,
    cin7_holding_location   text,
    cin7_sellable_location  text,
    map_version             text NOT NULL,
    loaded_at               timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX stg_cin7__credit_note_lines_sale ON staging.stg_cin7__credit_note_lines (sale_id);
CREATE INDEX stg_cin7__restocks_sale ON staging.stg_cin7__restocks (sale_id);
ALTER TABLE staging.stg_cin7__sales ADD COLUMN credit_note_number text;
ALTER TABLE staging.stg_cin7__sales ADD COLUMN detail_updated_at timestamptz;  -- LastModifiedOn of the detail we hold
