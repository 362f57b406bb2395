-- One home per fact (issue 19, item 4).
--
-- Which states of an exception count as open (still to act on: the mails, the run's summary, the published tables,
-- the postings): stated once, as recon.is_open. The pipeline's SQL asks it; its Python reads returns_recon.states,
-- which a test holds to this function for every state of recon.exceptions' CHECK (migration 0004).
--
-- recon.exception_details (migration 0016) and recon.money_at_risk_by_return (0018) no longer spell the reference
-- formats, the sale-match fields or the open states: they read the functions of migration 0019 (and the exchange
-- order's external id below) and recon.is_open. Same columns in the same order, same rows: CREATE OR REPLACE keeps
-- each view's comments, its grant to recon_reader and the views over it (recon.money_at_risk), so none is
-- restated here. Every function is plain SQL, immutable, inlined by the planner into the expression it stood for
-- (a sale-match field given as a constant folds to its column), so the views are planned as before: credit notes by
-- memo, sales by customer_reference, external_id or order_number, exchange orders by external_id, transfers by
-- their item reference (migration 0005), Sitoo transactions by external id, the queue by (state, owner).

CREATE FUNCTION recon.is_open(state text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT state IN ('open', 'acknowledged')
$$;

COMMENT ON FUNCTION recon.is_open(text) IS
'Whether an exception in this state is open: open, or acknowledged (a person is on it); resolved and '
'auto_resolved are not. Example: SELECT * FROM recon.exceptions WHERE recon.is_open(state)';

-- the external id of a return's exchange order (Reveni's: the pipeline only reads it, staging.
-- return_of_exchange_reference reads it back): to look the order up by its index, and, given '%', the LIKE pattern
-- of every exchange order (a constant, estimated by the planner as the pattern it stood for)
CREATE FUNCTION staging.exchange_reference(return_id text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT 'reveni-exchange:' || return_id
$$;

CREATE OR REPLACE VIEW recon.exception_details AS
SELECT
    e.exception_key, e.exception_type, e.owner, e.severity, e.state, e.return_id, e.item_id, e.sku,
    e.first_seen_at, e.last_seen_at, e.occurrences, e.resolved_at, e.fixed_by_posting,
    coalesce(r.order_external_id, quarantined.payload -> 'order' ->> 'external_id') AS order_number,
    sale.sale_id AS cin7_sale_id, sale.order_number AS cin7_sale_order_number,
    exchange.order_number AS cin7_exchange_order_number,
    notes.numbers AS credit_note_numbers, moves.numbers AS transfer_numbers,
    records.ids AS sitoo_order_ids, stock.ids AS sitoo_transaction_ids,
    trim_scale(money.refunded) AS refunded, money.refund_currency, trim_scale(money.credited) AS credited,
    money.credit_currency, CASE WHEN gap.currency IS NOT NULL THEN trim_scale(gap.amount) END AS money_at_risk,
    CASE WHEN gap.amount IS NOT NULL THEN gap.currency END AS currency,
    event.name AS return_event, event.at AS return_event_at,
    floor(extract(EPOCH FROM now() - event.at) / 86400)::int AS age_days,
    place.expected AS expected_warehouse, place.found AS stock_found_at,
    coalesce(e.evidence ->> 'return_point_id', r.return_point_id) AS return_point_id,
    coalesce(e.evidence ->> 'steps', e.evidence ->> 'hint') AS detail
FROM recon.exceptions AS e
LEFT JOIN staging.stg_reveni__returns AS r ON e.return_id = r.return_id
LEFT JOIN staging.stg_reveni__return_items AS i ON e.item_id = i.item_id
LEFT JOIN staging.dim_location_map AS m ON r.return_point_id = m.return_point_id
-- a Reveni return that failed validation (invalid_record) is not staged: its order number is in the quarantine
LEFT JOIN LATERAL (
    SELECT q.payload FROM raw.quarantine AS q
    WHERE e.exception_type = 'invalid_record' AND r.return_id IS NULL
        AND q.source = 'reveni' AND q.entity = 'returns' AND q.natural_key = e.return_id
    ORDER BY q.last_seen_at DESC
    LIMIT 1
) AS quarantined ON TRUE
-- the return's paid refunds
CROSS JOIN
    LATERAL (
        SELECT
            sum(f.amount) AS paid, min(f.currency) AS currency, count(DISTINCT f.currency) AS currencies,
            min(f.refunded_at) AS first_at
        FROM staging.stg_reveni__refunds AS f
        WHERE f.return_id = e.return_id AND f.status = 'paid'
    ) AS refund
-- the credit notes the reconciliation attributed to the return (listed in the evidence), as staged
CROSS JOIN
    LATERAL (
        SELECT
            sum(c.total) FILTER (WHERE c.status = 'AUTHORISED') AS authorised,
            min(c.currency) FILTER (WHERE c.status = 'AUTHORISED') AS currency,
            count(DISTINCT c.currency) FILTER (WHERE c.status = 'AUTHORISED') AS currencies
        FROM jsonb_array_elements(
                CASE
                    WHEN jsonb_typeof(e.evidence -> 'credit_notes') = 'array' THEN e.evidence -> 'credit_notes'
                    ELSE '[]'
                END
            ) AS n
        INNER JOIN staging.stg_cin7__credit_notes AS c ON c.task_id = n ->> 'task_id'
        WHERE n ? 'matched_by'  -- an unattributed note (unattributed_credit_note) lists no matched_by
    ) AS attributed
-- the Sitoo return records (orders) of the return, and their currency
CROSS JOIN
    LATERAL (
        SELECT string_agg(x.id, ', ' ORDER BY x.id) AS ids, min(x.currency) AS currency
        FROM (
            SELECT o.order_id::text AS id, o.currency FROM staging.stg_sitoo__orders AS o
            WHERE o.external_id = e.return_id
            UNION
            SELECT p.target_ref, NULL FROM recon.postings AS p
            WHERE p.return_id = e.return_id AND p.action = 'sitoo_return_record' AND p.status IN ('done', 'adopted')
                AND p.target_ref IS NOT NULL
                AND NOT EXISTS (
                    SELECT 1 FROM staging.stg_sitoo__orders AS o
                    WHERE o.order_id::text = p.target_ref
                )
        ) AS x
    ) AS records
-- refunded and credited, as the exception's type reads them (NULL where the type is not about money)
CROSS JOIN
    LATERAL (
        SELECT
            CASE WHEN t.money THEN coalesce(refund.paid, 0) END AS refunded,
            CASE WHEN t.money AND refund.currencies = 1 THEN refund.currency END AS refund_currency,
            CASE WHEN NOT t.money THEN NULL
                WHEN e.exception_type IN (
                        'credit_note_without_refund', 'credit_note_amount_mismatch',
                        'unattributed_credit_note'
                    )
                    THEN coalesce((e.evidence ->> 'credited')::numeric, 0)
                WHEN e.exception_type IN ('duplicate_credit_note', 'credit_note_tax_mismatch')
                    THEN coalesce(attributed.authorised, 0)
                ELSE 0
            END AS credited,  -- the other money types have no AUTHORISED note of the return
            CASE WHEN NOT t.money THEN NULL
                WHEN e.exception_type IN (
                        'credit_note_without_refund', 'credit_note_amount_mismatch',
                        'unattributed_credit_note'
                    )
                    THEN coalesce(e.evidence ->> 'credit_currency', e.evidence ->> 'currency')
                WHEN attributed.currencies = 1 THEN attributed.currency
            END AS credit_currency
        FROM (
            SELECT
                e.exception_type IN (
                    'refund_without_credit_note', 'credit_note_without_refund',
                    'duplicate_credit_note', 'credit_note_amount_mismatch',
                    'credit_note_tax_mismatch', 'unattributed_credit_note', 'sale_not_found',
                    'credit_note_awaiting_approval'
                )
                OR (e.exception_type = 'posting_refused' AND e.evidence ->> 'action' = 'create_credit_note')
                    AS money
        ) AS t
    ) AS money
-- the gap and its one currency: credited - refunded (no number when the two sides are in different currencies);
-- a tax mismatch's gap is its tax (credited - expected), a double refund's the amount paid out again at the till
CROSS JOIN
    LATERAL (
        SELECT
            CASE
                WHEN e.exception_type = 'credit_note_tax_mismatch' THEN (e.evidence ->> 'difference')::numeric
                WHEN e.exception_type = 'double_refund' THEN -abs((e.evidence ->> 'pos_paid')::numeric)
                ELSE money.credited - money.refunded
            END AS amount,
            CASE
                WHEN e.exception_type = 'credit_note_tax_mismatch' THEN money.credit_currency
                WHEN e.exception_type = 'double_refund' THEN records.currency
                WHEN money.credited = 0 AND money.refunded = 0 THEN coalesce(money.refund_currency, r.currency)
                WHEN money.credited = 0 THEN money.refund_currency
                WHEN money.refunded = 0 THEN money.credit_currency
                WHEN money.refund_currency = money.credit_currency THEN money.refund_currency
            END AS currency
    ) AS gap
-- the sale the reconciliation matched (evidence), else the sale of our credit note, else the first sale carrying
-- the order number in CustomerReference, ExternalID or OrderNumber (the field RECON_SALE_MATCH_FIELD names);
-- none for sale_not_found
LEFT JOIN LATERAL (
    SELECT s.sale_id, s.order_number
    FROM (
        SELECT e.evidence ->> 'sale_id' AS sale_id, 1 AS rank
        UNION ALL
        SELECT c.sale_id, 2
        FROM staging.stg_cin7__credit_notes AS c
        WHERE c.memo = staging.credit_note_memo(e.return_id)
        UNION ALL
        SELECT x.sale_id, 3
        FROM staging.stg_cin7__sales AS x
        WHERE staging.sale_match_value(x, 'CustomerReference') = r.order_external_id
        UNION ALL
        SELECT x.sale_id, 4
        FROM staging.stg_cin7__sales AS x
        WHERE staging.sale_match_value(x, 'ExternalID') = r.order_external_id
        UNION ALL
        SELECT x.sale_id, 5
        FROM staging.stg_cin7__sales AS x
        WHERE staging.sale_match_value(x, 'OrderNumber') = r.order_external_id
    ) AS k
    INNER JOIN staging.stg_cin7__sales AS s USING (sale_id)
    WHERE e.exception_type <> 'sale_not_found' AND coalesce(s.external_id, '') NOT LIKE staging.exchange_reference('%')
    ORDER BY k.rank, s.sale_id
    LIMIT 1
) AS sale ON TRUE
LEFT JOIN LATERAL (
    SELECT x.order_number FROM staging.stg_cin7__sales AS x
    WHERE x.external_id = staging.exchange_reference(e.return_id)
    ORDER BY x.sale_id LIMIT 1
) AS exchange ON TRUE
-- the return's credit notes: ours (memo staging.credit_note_memo), those the evidence names, and the ones we created
CROSS JOIN
    LATERAL (
        SELECT string_agg(DISTINCT x.number, ', ') AS numbers
        FROM (
            SELECT c.credit_note_number AS number FROM staging.stg_cin7__credit_notes AS c
            WHERE c.memo = staging.credit_note_memo(e.return_id)
            UNION ALL
            SELECT n ->> 'number'
            FROM jsonb_array_elements(
                    CASE
                        WHEN jsonb_typeof(e.evidence -> 'credit_notes') = 'array' THEN e.evidence -> 'credit_notes'
                        ELSE '[]'
                    END
                ) AS n
            UNION ALL
            SELECT p.target_number FROM recon.postings AS p
            WHERE p.return_id = e.return_id AND p.action = 'create_credit_note' AND p.status IN ('done', 'adopted')
        ) AS x
        WHERE x.number <> ''
    ) AS notes
-- the item's stock transfers in Cin7 Core (reference staging.item_reference, then a suffix), staged or created by us
CROSS JOIN
    LATERAL (
        SELECT string_agg(DISTINCT x.number, ', ') AS numbers
        FROM (
            SELECT coalesce(t.number, t.task_id) AS number FROM staging.stg_cin7__stock_transfers AS t
            WHERE split_part(t.reference, ' ', 1) = staging.item_reference(e.return_id, e.item_id)
            UNION ALL
            SELECT coalesce(p.target_number, p.target_ref) FROM recon.postings AS p
            WHERE p.item_id = e.item_id AND p.return_id = e.return_id AND p.action LIKE 'transfer_to_%'
                AND p.status IN ('done', 'adopted')
                AND NOT EXISTS (
                    SELECT 1 FROM staging.stg_cin7__stock_transfers AS t
                    WHERE t.task_id = p.target_ref
                )
        ) AS x
    ) AS moves
-- the item's Sitoo warehouse transactions (externalid staging.item_reference), staged or created by us
CROSS JOIN
    LATERAL (
        SELECT string_agg(x.id, ', ' ORDER BY x.id) AS ids
        FROM (
            SELECT t.transaction_id::text AS id FROM staging.stg_sitoo__warehouse_transactions AS t
            WHERE t.external_id = staging.item_reference(e.return_id, e.item_id)
            UNION
            SELECT p.target_ref FROM recon.postings AS p
            WHERE p.item_id = e.item_id AND p.return_id = e.return_id AND p.action = 'sitoo_store_stock'
                AND p.status IN ('done', 'adopted') AND p.target_ref IS NOT NULL
        ) AS x
    ) AS stock
-- the store's Sitoo warehouse, and for sitoo_stock_wrong_location the warehouses the stock went to
CROSS JOIN
    LATERAL (
        SELECT (
            SELECT coalesce(w.name || ' (#' || w.warehouse_id || ')', '#' || ev.id)
            FROM (
                SELECT
                    coalesce(
                        (e.evidence ->> 'expected_warehouse_id')::bigint,
                        (e.evidence ->> 'sitoo_warehouse_id')::bigint, m.sitoo_warehouse_id
                    ) AS id
            ) AS ev
            LEFT JOIN staging.stg_sitoo__warehouses AS w ON ev.id = w.warehouse_id
            WHERE e.exception_type IN (
                    'sitoo_stock_missing', 'sitoo_stock_wrong_location',
                    'sitoo_return_record_missing'
                )
        ) AS expected,
        (
            SELECT string_agg(DISTINCT coalesce(w.name || ' (#' || t.warehouse_id || ')', '#' || t.warehouse_id), ', ')
            FROM staging.stg_sitoo__warehouse_transactions AS t
            LEFT JOIN staging.stg_sitoo__warehouses AS w ON t.warehouse_id = w.warehouse_id
            WHERE e.exception_type = 'sitoo_stock_wrong_location'
                AND t.external_id = staging.item_reference(e.return_id, e.item_id)
        ) AS found
    ) AS place
-- the return's own event that started the exception's clock; the pipeline's first sight only without a return
CROSS JOIN LATERAL (
    SELECT k.name, k.at
    FROM (
        VALUES
        (1, 'validated', CASE WHEN e.exception_type IN (
                    'inspected_not_released', 'rejected_item_in_sellable_stock',
                    'restock_latency_breach', 'sitoo_stock_missing',
                    'sitoo_stock_wrong_location'
                ) THEN i.validated_at
        END),
        (2, 'received', CASE WHEN e.exception_type IN ('missing_restock', 'premature_restock') THEN r.received_at END),
        (3, 'refunded', CASE WHEN e.exception_type IN (
                    'refund_without_credit_note', 'duplicate_credit_note',
                    'credit_note_amount_mismatch', 'credit_note_tax_mismatch',
                    'unattributed_credit_note', 'double_refund',
                    'sitoo_return_record_missing', 'credit_note_awaiting_approval',
                    'posting_refused'
                ) THEN refund.first_at
        END),
        (4, 'created', r.created_at),
        (5, 'first_seen', e.first_seen_at)
    ) AS k (rank, name, at)
    WHERE k.at IS NOT NULL
    ORDER BY k.rank
    LIMIT 1
) AS event;

CREATE OR REPLACE VIEW recon.money_at_risk_by_return AS
SELECT DISTINCT ON (d.owner, d.return_id, d.currency)
    d.owner, d.currency, d.return_id, d.order_number, d.money_at_risk AS gap, d.exception_key, d.exception_type,
    count(*) OVER (PARTITION BY d.owner, d.return_id, d.currency) AS exceptions,
    d.return_event, d.return_event_at, d.age_days
FROM recon.exception_details AS d
WHERE recon.is_open(d.state) AND d.money_at_risk <> 0
ORDER BY d.owner ASC, d.return_id ASC, d.currency ASC, abs(d.money_at_risk) DESC, d.exception_key ASC;
