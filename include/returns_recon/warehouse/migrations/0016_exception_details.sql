-- Every exception with what a person needs to act on it without a lookup (issue 18, item 3): the shop's order
-- number and Cin7 Core's, the documents involved (credit notes, transfers, Sitoo orders and warehouse
-- transactions), the money gap with its currency, the return's own event time and age, and where misplaced Sitoo
-- stock went. The exception mails (notify/digest.py) read it; finance reads it as recon_reader (a view runs with
-- its owner's rights, so it reads staging for them). Each exception's facts are index lookups by its return or
-- its item reference: cheap for the open queue.

-- the sale by its Cin7 Core order number (the third field a shop's order number may be kept in)
CREATE INDEX IF NOT EXISTS stg_cin7__sales_order_number ON staging.stg_cin7__sales (order_number);

CREATE VIEW recon.exception_details AS
SELECT e.exception_key, e.exception_type, e.owner, e.severity, e.state, e.return_id, e.item_id, e.sku,
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
       floor(extract(epoch FROM now() - event.at) / 86400)::int AS age_days,
       place.expected AS expected_warehouse, place.found AS stock_found_at,
       coalesce(e.evidence ->> 'return_point_id', r.return_point_id) AS return_point_id,
       coalesce(e.evidence ->> 'steps', e.evidence ->> 'hint') AS detail
FROM recon.exceptions e
LEFT JOIN staging.stg_reveni__returns r ON r.return_id = e.return_id
LEFT JOIN staging.stg_reveni__return_items i ON i.item_id = e.item_id
LEFT JOIN staging.dim_location_map m ON m.return_point_id = r.return_point_id
-- a Reveni return that failed validation (invalid_record) is not staged: its order number is in the quarantine
LEFT JOIN LATERAL (
    SELECT q.payload FROM raw.quarantine q
    WHERE e.exception_type = 'invalid_record' AND r.return_id IS NULL
      AND q.source = 'reveni' AND q.entity = 'returns' AND q.natural_key = e.return_id
    ORDER BY q.last_seen_at DESC
    LIMIT 1
) quarantined ON true
-- the return's paid refunds
CROSS JOIN LATERAL (
    SELECT sum(f.amount) AS paid, min(f.currency) AS currency, count(DISTINCT f.currency) AS currencies,
           min(f.refunded_at) AS first_at
    FROM staging.stg_reveni__refunds f WHERE f.return_id = e.return_id AND f.status = 'paid'
) refund
-- the credit notes the reconciliation attributed to the return (listed in the evidence), as staged
CROSS JOIN LATERAL (
    SELECT sum(c.total) FILTER (WHERE c.status = 'AUTHORISED') AS authorised,
           min(c.currency) FILTER (WHERE c.status = 'AUTHORISED') AS currency,
           count(DISTINCT c.currency) FILTER (WHERE c.status = 'AUTHORISED') AS currencies
    FROM jsonb_array_elements(CASE WHEN jsonb_typeof(e.evidence -> 'credit_notes') = 'array'
                                   THEN e.evidence -> 'credit_notes' ELSE '[]' END) n
    JOIN staging.stg_cin7__credit_notes c ON c.task_id = n ->> 'task_id'
    WHERE n ? 'matched_by'  -- an unattributed note (unattributed_credit_note) lists no matched_by
) attributed
-- the Sitoo return records (orders) of the return, and their currency
CROSS JOIN LATERAL (
    SELECT string_agg(x.id, ', ' ORDER BY x.id) AS ids, min(x.currency) AS currency
    FROM (SELECT o.order_id::text AS id, o.currency FROM staging.stg_sitoo__orders o WHERE o.external_id = e.return_id
          UNION
          SELECT p.target_ref, NULL FROM recon.postings p
          WHERE p.return_id = e.return_id AND p.action = 'sitoo_return_record' AND p.status IN ('done', 'adopted')
            AND p.target_ref IS NOT NULL
            AND NOT EXISTS (SELECT 1 FROM staging.stg_sitoo__orders o WHERE o.order_id::text = p.target_ref)) x
) records
-- refunded and credited, as the exception's type reads them (NULL where the type is not about money)
CROSS JOIN LATERAL (
    SELECT CASE WHEN t.money THEN coalesce(refund.paid, 0) END AS refunded,
           CASE WHEN t.money AND refund.currencies = 1 THEN refund.currency END AS refund_currency,
           CASE WHEN NOT t.money THEN NULL
                WHEN e.exception_type IN ('credit_note_without_refund', 'credit_note_amount_mismatch',
                                          'unattributed_credit_note')
                     THEN coalesce((e.evidence ->> 'credited')::numeric, 0)
                WHEN e.exception_type IN ('duplicate_credit_note', 'credit_note_tax_mismatch')
                     THEN coalesce(attributed.authorised, 0)
                ELSE 0 END AS credited,  -- the other money types have no AUTHORISED note of the return
           CASE WHEN NOT t.money THEN NULL
                WHEN e.exception_type IN ('credit_note_without_refund', 'credit_note_amount_mismatch',
                                          'unattributed_credit_note')
                     THEN coalesce(e.evidence ->> 'credit_currency', e.evidence ->> 'currency')
                WHEN attributed.currencies = 1 THEN attributed.currency END AS credit_currency
    FROM (SELECT e.exception_type IN ('refund_without_credit_note', 'credit_note_without_refund',
                                      'duplicate_credit_note', 'credit_note_amount_mismatch',
                                      'credit_note_tax_mismatch', 'unattributed_credit_note', 'sale_not_found',
                                      'credit_note_awaiting_approval')
                 OR (e.exception_type = 'posting_refused' AND e.evidence ->> 'action' = 'create_credit_note')
                 AS money) t
) money
-- the gap and its one currency: credited - refunded (no number when the two sides are in different currencies);
-- a tax mismatch's gap is its tax (credited - expected), a double refund's the amount paid out again at the till
CROSS JOIN LATERAL (
    SELECT CASE WHEN e.exception_type = 'credit_note_tax_mismatch' THEN (e.evidence ->> 'difference')::numeric
                WHEN e.exception_type = 'double_refund' THEN -abs((e.evidence ->> 'pos_paid')::numeric)
                ELSE money.credited - money.refunded END AS amount,
           CASE WHEN e.exception_type = 'credit_note_tax_mismatch' THEN money.credit_currency
                WHEN e.exception_type = 'double_refund' THEN records.currency
                WHEN money.credited = 0 AND money.refunded = 0 THEN coalesce(money.refund_currency, r.currency)
                WHEN money.credited = 0 THEN money.refund_currency
                WHEN money.refunded = 0 THEN money.credit_currency
                WHEN money.refund_currency = money.credit_currency THEN money.refund_currency END AS currency
) gap
-- the sale the reconciliation matched (evidence), else the sale of our credit note, else the first sale carrying
-- the order number in CustomerReference, ExternalID or OrderNumber (the field RECON_SALE_MATCH_FIELD names);
-- none for sale_not_found
LEFT JOIN LATERAL (
    SELECT s.sale_id, s.order_number
    FROM (SELECT e.evidence ->> 'sale_id' AS sale_id, 1 AS rank
          UNION ALL
          SELECT c.sale_id, 2 FROM staging.stg_cin7__credit_notes c WHERE c.memo = 'reveni:' || e.return_id
          UNION ALL
          SELECT x.sale_id, 3 FROM staging.stg_cin7__sales x WHERE x.customer_reference = r.order_external_id
          UNION ALL
          SELECT x.sale_id, 4 FROM staging.stg_cin7__sales x WHERE x.external_id = r.order_external_id
          UNION ALL
          SELECT x.sale_id, 5 FROM staging.stg_cin7__sales x WHERE x.order_number = r.order_external_id) k
    JOIN staging.stg_cin7__sales s USING (sale_id)
    WHERE e.exception_type <> 'sale_not_found' AND coalesce(s.external_id, '') NOT LIKE 'reveni-exchange:%'
    ORDER BY k.rank, s.sale_id
    LIMIT 1
) sale ON true
LEFT JOIN LATERAL (
    SELECT x.order_number FROM staging.stg_cin7__sales x
    WHERE x.external_id = 'reveni-exchange:' || e.return_id ORDER BY x.sale_id LIMIT 1
) exchange ON true
-- the return's credit notes: ours (memo reveni:<return>), those the evidence names, and the ones we created
CROSS JOIN LATERAL (
    SELECT string_agg(DISTINCT x.number, ', ') AS numbers
    FROM (SELECT c.credit_note_number AS number FROM staging.stg_cin7__credit_notes c
          WHERE c.memo = 'reveni:' || e.return_id
          UNION ALL
          SELECT n ->> 'number' FROM jsonb_array_elements(CASE WHEN jsonb_typeof(e.evidence -> 'credit_notes') = 'array'
                                                               THEN e.evidence -> 'credit_notes' ELSE '[]' END) n
          UNION ALL
          SELECT p.target_number FROM recon.postings p
          WHERE p.return_id = e.return_id AND p.action = 'create_credit_note' AND p.status IN ('done', 'adopted')) x
    WHERE x.number <> ''
) notes
-- the item's stock transfers in Cin7 Core (reference 'reveni:<return>:<item> ...'), staged or created by us
CROSS JOIN LATERAL (
    SELECT string_agg(DISTINCT x.number, ', ') AS numbers
    FROM (SELECT coalesce(t.number, t.task_id) AS number FROM staging.stg_cin7__stock_transfers t
          WHERE split_part(t.reference, ' ', 1) = 'reveni:' || e.return_id || ':' || e.item_id
          UNION ALL
          SELECT coalesce(p.target_number, p.target_ref) FROM recon.postings p
          WHERE p.item_id = e.item_id AND p.return_id = e.return_id AND p.action LIKE 'transfer_to_%'
            AND p.status IN ('done', 'adopted')
            AND NOT EXISTS (SELECT 1 FROM staging.stg_cin7__stock_transfers t WHERE t.task_id = p.target_ref)) x
) moves
-- the item's Sitoo warehouse transactions (externalid 'reveni:<return>:<item>'), staged or created by us
CROSS JOIN LATERAL (
    SELECT string_agg(x.id, ', ' ORDER BY x.id) AS ids
    FROM (SELECT t.transaction_id::text AS id FROM staging.stg_sitoo__warehouse_transactions t
          WHERE t.external_id = 'reveni:' || e.return_id || ':' || e.item_id
          UNION
          SELECT p.target_ref FROM recon.postings p
          WHERE p.item_id = e.item_id AND p.return_id = e.return_id AND p.action = 'sitoo_store_stock'
            AND p.status IN ('done', 'adopted') AND p.target_ref IS NOT NULL) x
) stock
-- the store's Sitoo warehouse, and for sitoo_stock_wrong_location the warehouses the stock went to
CROSS JOIN LATERAL (
    SELECT (SELECT coalesce(w.name || ' (#' || w.warehouse_id || ')', '#' || ev.id)
            FROM (SELECT coalesce((e.evidence ->> 'expected_warehouse_id')::bigint,
                                  (e.evidence ->> 'sitoo_warehouse_id')::bigint, m.sitoo_warehouse_id) AS id) ev
            LEFT JOIN staging.stg_sitoo__warehouses w ON w.warehouse_id = ev.id
            WHERE e.exception_type IN ('sitoo_stock_missing', 'sitoo_stock_wrong_location',
                                       'sitoo_return_record_missing')) AS expected,
           (SELECT string_agg(DISTINCT coalesce(w.name || ' (#' || t.warehouse_id || ')', '#' || t.warehouse_id), ', ')
            FROM staging.stg_sitoo__warehouse_transactions t
            LEFT JOIN staging.stg_sitoo__warehouses w ON w.warehouse_id = t.warehouse_id
            WHERE e.exception_type = 'sitoo_stock_wrong_location'
              AND t.external_id = 'reveni:' || e.return_id || ':' || e.item_id) AS found
) place
-- the return's own event that started the exception's clock; the pipeline's first sight only without a return
CROSS JOIN LATERAL (
    SELECT k.name, k.at
    FROM (VALUES
        (1, 'validated', CASE WHEN e.exception_type IN ('inspected_not_released', 'rejected_item_in_sellable_stock',
                                                        'restock_latency_breach', 'sitoo_stock_missing',
                                                        'sitoo_stock_wrong_location') THEN i.validated_at END),
        (2, 'received', CASE WHEN e.exception_type IN ('missing_restock', 'premature_restock') THEN r.received_at END),
        (3, 'refunded', CASE WHEN e.exception_type IN ('refund_without_credit_note', 'duplicate_credit_note',
                                                       'credit_note_amount_mismatch', 'credit_note_tax_mismatch',
                                                       'unattributed_credit_note', 'double_refund',
                                                       'sitoo_return_record_missing', 'credit_note_awaiting_approval',
                                                       'posting_refused') THEN refund.first_at END),
        (4, 'created', r.created_at),
        (5, 'first_seen', e.first_seen_at)) k (rank, name, at)
    WHERE k.at IS NOT NULL
    ORDER BY k.rank
    LIMIT 1
) event;

COMMENT ON VIEW recon.exception_details IS
    'One row per exception (recon.exceptions, every state) with what a person needs to act on it without a lookup: '
    'order and document numbers, the money gap with its currency, the return''s own event time and age, where '
    'misplaced Sitoo stock went. The exception mails show these columns. See docs/notifications.md.';
COMMENT ON COLUMN recon.exception_details.exception_key IS 'the exception''s stable key: type:return[:item]';
COMMENT ON COLUMN recon.exception_details.exception_type IS 'the exception type (recon.dim_exception_types)';
COMMENT ON COLUMN recon.exception_details.owner IS 'who acts on it: finance, operations, customer service or data';
COMMENT ON COLUMN recon.exception_details.severity IS 'critical, high, medium or info';
COMMENT ON COLUMN recon.exception_details.state IS 'open, acknowledged, resolved or auto_resolved';
COMMENT ON COLUMN recon.exception_details.return_id IS 'the Reveni return';
COMMENT ON COLUMN recon.exception_details.item_id IS 'the Reveni return item (item-level types), else NULL';
COMMENT ON COLUMN recon.exception_details.sku IS 'the item''s SKU (item-level types), else NULL';
COMMENT ON COLUMN recon.exception_details.first_seen_at IS 'when the pipeline first found it (not the return''s age)';
COMMENT ON COLUMN recon.exception_details.last_seen_at IS 'when the pipeline last found it';
COMMENT ON COLUMN recon.exception_details.occurrences IS 'in how many runs it was found';
COMMENT ON COLUMN recon.exception_details.resolved_at IS 'when it was resolved (by a person or automatically)';
COMMENT ON COLUMN recon.exception_details.fixed_by_posting IS
    'the recon.postings key of our corrective posting that fixed it, if one did';
COMMENT ON COLUMN recon.exception_details.order_number IS
    'the shop''s order number of the return (Reveni order external id; for a quarantined return, from its payload)';
COMMENT ON COLUMN recon.exception_details.cin7_sale_id IS
    'the Cin7 Core sale of the return: the one the reconciliation matched, else the sale of our credit note, else '
    'the first sale carrying the order number in CustomerReference, ExternalID or OrderNumber; NULL for sale_not_found';
COMMENT ON COLUMN recon.exception_details.cin7_sale_order_number IS 'that sale''s Cin7 Core order number (SO-...)';
COMMENT ON COLUMN recon.exception_details.cin7_exchange_order_number IS
    'the Cin7 Core order number of the return''s exchange order (ExternalID reveni-exchange:<return>), if any';
COMMENT ON COLUMN recon.exception_details.credit_note_numbers IS
    'the return''s Cin7 Core credit note numbers (CR-...), comma-separated: ours (memo reveni:<return>), those the '
    'evidence names (matched or unattributed notes made by hand), and those our postings created';
COMMENT ON COLUMN recon.exception_details.transfer_numbers IS
    'the item''s Cin7 Core stock transfer numbers (TR-..., else the task id), comma-separated: referencing '
    'reveni:<return>:<item>, or created by our postings';
COMMENT ON COLUMN recon.exception_details.sitoo_order_ids IS
    'the return''s Sitoo return records (order ids with externalid = the return), comma-separated';
COMMENT ON COLUMN recon.exception_details.sitoo_transaction_ids IS
    'the item''s Sitoo warehouse transaction ids (externalid reveni:<return>:<item>), comma-separated';
COMMENT ON COLUMN recon.exception_details.refunded IS
    'money types only: the return''s paid Reveni refunds, in refund_currency';
COMMENT ON COLUMN recon.exception_details.refund_currency IS
    'the currency of refunded (NULL when nothing was refunded or the refunds mix currencies)';
COMMENT ON COLUMN recon.exception_details.credited IS
    'money types only: the AUTHORISED Cin7 Core credit notes attributed to the return, in credit_currency';
COMMENT ON COLUMN recon.exception_details.credit_currency IS 'the currency of credited (NULL when nothing was credited)';
COMMENT ON COLUMN recon.exception_details.money_at_risk IS
    'the gap, always with currency: credited - refunded (negative = refunded but not credited) for '
    'refund_without_credit_note, credit_note_without_refund, duplicate_credit_note, credit_note_amount_mismatch, '
    'unattributed_credit_note, sale_not_found, credit_note_awaiting_approval and a refused create_credit_note; the tax '
    'credited - the tax expected for credit_note_tax_mismatch; minus the amount paid out again at the till for '
    'double_refund. NULL for the other types, and when refund and credit are in different currencies (never summed)';
COMMENT ON COLUMN recon.exception_details.currency IS
    'the currency of money_at_risk; NULL exactly when money_at_risk is NULL';
COMMENT ON COLUMN recon.exception_details.return_event IS
    'the return''s own event that started the clock: validated (release, Sitoo stock and rejected-stock types), '
    'received (missing_restock, premature_restock), refunded (first paid refund, for the refund types), else created; '
    'first_seen only when the return is not in the warehouse (e.g. a quarantined record)';
COMMENT ON COLUMN recon.exception_details.return_event_at IS 'when that event happened';
COMMENT ON COLUMN recon.exception_details.age_days IS 'whole days since return_event_at (the age the mails show)';
COMMENT ON COLUMN recon.exception_details.expected_warehouse IS
    'Sitoo stock and record types: the store''s mapped Sitoo warehouse, as name (#id)';
COMMENT ON COLUMN recon.exception_details.stock_found_at IS
    'sitoo_stock_wrong_location: the Sitoo warehouses the item''s stock went to, as name (#id), comma-separated';
COMMENT ON COLUMN recon.exception_details.return_point_id IS
    'the return''s Reveni return point (for unmapped_location, the one to add to the location map)';
COMMENT ON COLUMN recon.exception_details.detail IS 'what to do: the evidence''s steps or hint, if any';

GRANT SELECT ON recon.exception_details TO recon_reader;

-- what each mail reported as fixed by the pipeline since the owner's previous mail
ALTER TABLE recon.email_log ADD COLUMN fixed_count integer NOT NULL DEFAULT 0;
COMMENT ON COLUMN recon.email_log.fixed_count IS
    'how many documents the pipeline created (corrective postings done) since the owner''s previous mail, listed in '
    'this mail''s section "Fixed by the pipeline since the last mail"';
