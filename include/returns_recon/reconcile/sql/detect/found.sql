-- Every exception of the taxonomy found this run, one row per key (type:return[:item]), with its evidence.
--
-- Each check is a condition over one row of int_return_legs (a return) or int_items (an item), named after the
-- exception type it raises and stated once, in the first two CTEs; the legs' states it reads are stated in those
-- models. Both models are read once: the rows failing any check are kept, then each check's branch picks its rows
-- among those few and builds the evidence.
--
-- Blocking rules (operating-model.md §3): sale_not_found blocks the Cin7 Core checks of the return;
-- unmapped_location blocks its stock checks and (not knowing whether it is a store) the Sitoo return record check;
-- unknown_sku_cin7 / unknown_sku_sitoo block the item's Cin7 Core / Sitoo checks. Time-based checks use now()
-- against the configured SLAs (int_items' due times).
-- A targeted run (scope: its return ids) raises invalid_record only for the quarantined returns of its scope: the
-- other quarantined payloads are no return's, or another return's, and stay the batch runs' (NULL scope).
-- parameters: tolerance, match_field, scope
WITH failing_returns AS MATERIALIZED (
    SELECT *
    FROM (
        SELECT
            r.*,
            -- finance: credit notes against refunds (needs the sale)
            r.credit_note_leg = 'blocked' AS sale_not_found,
            r.sale_id IS NOT NULL AND r.refunded > 0 AND r.authorised_notes = 0 AS refund_without_credit_note,
            r.sale_id IS NOT NULL AND r.refunded = 0 AND r.authorised_notes > 0 AS credit_note_without_refund,
            r.sale_id IS NOT NULL AND r.refunded > 0 AND r.authorised_notes > 1 AS duplicate_credit_note,
            r.sale_id IS NOT NULL AND r.refunded > 0 AND r.authorised_notes = 1
            AND (r.credit_differs OR r.currencies_differ) AS credit_note_amount_mismatch,
            r.sale_id IS NOT NULL AND r.refunded > 0 AND r.authorised_notes = 1
            AND NOT r.credit_differs AND r.credit_currency = r.refund_currency
            AND abs(r.credited_tax - r.expected_tax) > %(tolerance)s AS credit_note_tax_mismatch,
            -- an AUTHORISED note made by hand on the sale that no return can be attributed (int_notes_by_hand),
            -- even beside our own note: one row per refunded return of the sale (the key is type:return, as every
            -- return-level type); its credit note is not created while this is open (postings/plan.py)
            r.sale_id IS NOT NULL AND r.refunded > 0 AND r.unattributed_notes > 0 AS unattributed_credit_note,
            -- the same items refunded by Reveni and paid back at the till
            r.refunded > 0 AND coalesce(r.pos_paid, 0) <> 0 AS double_refund,
            r.sitoo_record_leg = 'missing' AS sitoo_return_record_missing,
            -- customer service: exchanges
            r.exchange_requested AND r.exchange_sale_id IS NULL AS exchange_order_missing,
            r.exchange_requested AND r.exchange_sale_id IS NOT NULL
            AND upper(coalesce(r.exchange_order_status, ''))
            NOT IN ('AUTHORISED', 'COMPLETED', 'SHIPPED', 'PACKED', 'PICKED') AS exchange_order_held,
            -- data: master data (the rules of staging.int_master_data__mismatches, for the returns in the window)
            NOT r.map_ok AS unmapped_location
        FROM int_return_legs AS r
    ) AS checked
    WHERE
        sale_not_found OR refund_without_credit_note OR credit_note_without_refund OR duplicate_credit_note
        OR credit_note_amount_mismatch OR credit_note_tax_mismatch OR unattributed_credit_note OR double_refund
        OR sitoo_return_record_missing OR exchange_order_missing OR exchange_order_held OR unmapped_location
),

failing_items AS MATERIALIZED (
    SELECT *
    FROM (
        SELECT
            i.*,
            -- operations: warehouse stock in Cin7 Core, checked for an item of a known SKU, mapped and with its sale;
            -- missing_restock is not auto-fixed: Cin7 Core takes restock lines only on a DRAFT credit note or one
            -- being created (apib L24689), which the credit note we create carries; anything else needs a person
            i.warehouse_checked AND i.restock_leg = 'missing' AS missing_restock,
            i.warehouse_checked AND i.validation_status = 'pending' AND i.in_sellable > 0 AS premature_restock,
            i.warehouse_checked AND i.in_sellable > 0
            AND (i.validation_status = 'rejected' OR (i.validation_status = 'accepted' AND i.restock IS NOT TRUE))
                AS rejected_item_in_sellable_stock,
            i.warehouse_checked AND i.release_leg = 'overdue' AND i.restocked > 0 AS inspected_not_released,
            -- One incident, one row (operating-model.md §3): a release or store restock after the SLA is no
            -- restock_latency_breach when it is our own corrective posting of the SLA exception already raised
            -- for the item (whose row keeps the times and the posting). A person's late release, or ours
            -- superseded by theirs, still is.
            i.warehouse_checked AND i.to_stock AND i.first_release_at > i.release_due_at
            AND NOT EXISTS (
                SELECT 1 FROM recon.postings AS p
                WHERE
                    p.exception_key = 'inspected_not_released:' || i.return_id || ':' || i.item_id
                    AND p.status IN ('done', 'adopted')
            ) AS release_latency_breach,
            -- operations: store stock in Sitoo
            i.store_checked AND i.sitoo_stock_leg = 'missing' AND i.sitoo_transactions = 0 AS sitoo_stock_missing,
            i.sitoo_stock_leg = 'wrong_location' AS sitoo_stock_wrong_location,
            i.store_checked AND i.to_stock AND i.sitoo_first_at > i.sitoo_stock_due_at
            AND NOT EXISTS (
                SELECT 1 FROM recon.postings AS p
                WHERE
                    p.exception_key = 'sitoo_stock_missing:' || i.return_id || ':' || i.item_id
                    AND p.status IN ('done', 'adopted')
            ) AS sitoo_stock_latency_breach,
            -- data: master data
            i.unknown_cin7 AS unknown_sku_cin7,
            i.kind = 'store' AND i.map_ok AND i.unknown_sitoo AS unknown_sku_sitoo
        FROM (
            SELECT
                items.*,
                -- the blocking rules of the item's stock checks
                items.kind = 'warehouse'
                AND items.map_ok
                AND items.sale_id IS NOT NULL
                AND NOT items.unknown_cin7 AS warehouse_checked,
                items.kind = 'store' AND items.map_ok AND NOT items.unknown_sitoo AS store_checked
            FROM int_items AS items
        ) AS i
    ) AS checked
    WHERE
        missing_restock OR premature_restock OR rejected_item_in_sellable_stock OR inspected_not_released
        OR release_latency_breach OR sitoo_stock_missing OR sitoo_stock_wrong_location OR sitoo_stock_latency_breach
        OR unknown_sku_cin7 OR unknown_sku_sitoo
),

checks (exception_type, return_id, item_id, sku, evidence) AS (
    SELECT
        'sale_not_found', return_id, NULL::text, NULL::text,
        jsonb_build_object('order_external_id', order_external_id, 'sale_field', %(match_field)s::text)
    FROM failing_returns
    WHERE sale_not_found
    UNION ALL
    SELECT
        'refund_without_credit_note', return_id, NULL, NULL,
        jsonb_build_object(
            'refunded', refunded, 'currency', refund_currency, 'sale_id', sale_id, 'refunded_at', last_refund_at
        )
    FROM failing_returns
    WHERE refund_without_credit_note
    UNION ALL
    SELECT
        'credit_note_without_refund', return_id, NULL, NULL,
        jsonb_build_object('credited', credited, 'currency', credit_currency, 'status', status)
    FROM failing_returns
    WHERE credit_note_without_refund
    UNION ALL
    SELECT
        'duplicate_credit_note', return_id, NULL, NULL,
        jsonb_build_object('authorised_notes', authorised_notes, 'refunded', refunded)
    FROM failing_returns
    WHERE duplicate_credit_note
    UNION ALL
    SELECT
        'credit_note_amount_mismatch', return_id, NULL, NULL,
        jsonb_build_object(
            'refunded', refunded, 'refund_currency', refund_currency, 'credited', credited,
            'credit_currency', credit_currency, 'difference', credited - refunded
        )
    FROM failing_returns
    WHERE credit_note_amount_mismatch
    UNION ALL
    SELECT
        'credit_note_tax_mismatch', return_id, NULL, NULL,
        jsonb_build_object(
            'credited_tax', credited_tax, 'expected_tax', expected_tax, 'difference', credited_tax - expected_tax
        )
    FROM failing_returns
    WHERE credit_note_tax_mismatch
    UNION ALL
    SELECT
        'unattributed_credit_note', r.return_id, NULL, NULL,
        jsonb_build_object(
            'order_external_id', r.order_external_id, 'sale_id', r.sale_id,
            'sale_order_number', (
                SELECT s.order_number FROM staging.stg_cin7__sales AS s
                WHERE s.sale_id = r.sale_id
            ),
            'refunded', r.refunded, 'refund_currency', r.refund_currency,
            'credited', coalesce(r.credited, 0), 'credit_currency', r.credit_currency,
            'unattributed_credited', r.unattributed_credited,
            'credit_notes', (
                SELECT
                    jsonb_agg(
                        jsonb_build_object(
                            'task_id', n.task_id, 'number', n.credit_note_number, 'total', n.total,
                            'currency', n.currency, 'date', n.credit_note_date,
                            'returns_matched', n.returns_matched, 'matched_returns', n.matched_returns
                        ) ORDER BY n.credit_note_number, n.task_id
                    )
                FROM int_notes_by_hand AS n
                WHERE n.sale_id = r.sale_id AND n.return_id IS NULL
            ),
            'refunded_returns_of_sale', (
                -- the same on every note of the sale
                SELECT n.sale_returns FROM int_notes_by_hand AS n
                WHERE n.sale_id = r.sale_id
                ORDER BY n.task_id LIMIT 1
            ),
            'steps', format(
                'In Cin7 Core open the sale %%s (order %%s): check whether the customer was credited twice. Void a '
                'note that repeats a credit already given; if a note is the credit of a return, resolve that '
                'return''s refund_without_credit_note too, or our credit note is created for it once this is '
                'resolved.',
                r.sale_id, r.order_external_id
            )
        )
    FROM failing_returns AS r
    WHERE r.unattributed_credit_note
    UNION ALL
    SELECT
        'double_refund', return_id, NULL, NULL,
        jsonb_build_object('reveni_refunded', refunded, 'pos_paid', pos_paid, 'sitoo_return_records', return_records)
    FROM failing_returns
    WHERE double_refund
    UNION ALL
    SELECT
        'sitoo_return_record_missing', return_id, NULL, NULL,
        jsonb_build_object('refunded', refunded, 'currency', refund_currency, 'sitoo_warehouse_id', sitoo_warehouse_id)
    FROM failing_returns
    WHERE sitoo_return_record_missing
    UNION ALL
    SELECT 'exchange_order_missing', return_id, NULL, NULL, jsonb_build_object('status', status)
    FROM failing_returns
    WHERE exchange_order_missing
    UNION ALL
    SELECT
        'exchange_order_held', return_id, NULL, NULL,
        jsonb_build_object('exchange_sale_id', exchange_sale_id, 'order_status', exchange_order_status)
    FROM failing_returns
    WHERE exchange_order_held
    UNION ALL
    SELECT
        'unmapped_location', return_id, NULL, NULL,
        jsonb_strip_nulls(jsonb_build_object(
            'hint', coalesce(
                map_problem, staging.return_point_hint(return_point_name),
                -- a return point is not public in Reveni's API (models/reveni.py): a return may come without one
                CASE WHEN return_point_id IS NULL THEN 'Reveni shows no return point for this return' END
            ),
            'return_point_id', return_point_id
        ))
    FROM failing_returns
    WHERE unmapped_location
    UNION ALL
    SELECT
        'missing_restock', return_id, item_id, sku,
        jsonb_build_object(
            'received_at', received_at, 'holding', holding, 'quantity', quantity,
            'steps', format(
                'In Cin7 Core open the sale %%s, tab Credit Note (memo %%s; create it as DRAFT if there is none), '
                'section Restock: add %%s x %%s into %%s, then authorise the restock. The API cannot add restock '
                'lines to an authorised credit note.',
                sale_id, staging.credit_note_memo(return_id), quantity, sku, holding
            )
        )
    FROM failing_items
    WHERE missing_restock
    UNION ALL
    SELECT
        'premature_restock', return_id, item_id, sku,
        jsonb_build_object(
            'validation_status', validation_status, 'restocked_to_sellable', restocked_to_sellable,
            'transfers_into_sellable', transfers_into_sellable, 'sellable', sellable
        )
    FROM failing_items
    WHERE premature_restock
    UNION ALL
    SELECT
        'rejected_item_in_sellable_stock', return_id, item_id, sku,
        jsonb_build_object(
            'validation_status', validation_status, 'restock', restock,
            'restocked_to_sellable', restocked_to_sellable, 'transfers_into_sellable', transfers_into_sellable
        )
    FROM failing_items
    WHERE rejected_item_in_sellable_stock
    UNION ALL
    SELECT
        'inspected_not_released', return_id, item_id, sku,
        jsonb_build_object(
            'validated_at', validated_at, 'release_due', release_due_at, 'holding', holding, 'sellable', sellable
        )
    FROM failing_items
    WHERE inspected_not_released
    UNION ALL
    SELECT
        'restock_latency_breach', return_id, item_id, sku,
        jsonb_build_object(
            'leg', 'release', 'validated_at', validated_at, 'released_at', first_release_at, 'due', release_due_at
        )
    FROM failing_items
    WHERE release_latency_breach
    UNION ALL
    SELECT
        'sitoo_stock_missing', return_id, item_id, sku,
        jsonb_build_object(
            'validated_at', validated_at, 'due', sitoo_stock_due_at, 'sitoo_warehouse_id', sitoo_warehouse_id
        )
    FROM failing_items
    WHERE sitoo_stock_missing
    UNION ALL
    SELECT
        'sitoo_stock_wrong_location', i.return_id, i.item_id, i.sku,
        jsonb_build_object('expected_warehouse_id', i.sitoo_warehouse_id, 'found_in_warehouses', (
            SELECT array_agg(DISTINCT t.warehouse_id) FROM staging.stg_sitoo__warehouse_transactions AS t
            WHERE t.external_id = staging.item_reference(i.return_id, i.item_id)
        ))
    FROM failing_items AS i
    WHERE i.sitoo_stock_wrong_location
    UNION ALL
    SELECT
        'restock_latency_breach', return_id, item_id, sku,
        jsonb_build_object(
            'leg', 'sitoo_stock', 'validated_at', validated_at, 'stocked_at', sitoo_first_at,
            'due', sitoo_stock_due_at
        )
    FROM failing_items
    WHERE sitoo_stock_latency_breach
    UNION ALL
    SELECT
        'unknown_sku_cin7', return_id, item_id, sku,
        jsonb_strip_nulls(jsonb_build_object('hint', staging.cin7_sku_hint(sku)))
    FROM failing_items
    WHERE unknown_sku_cin7
    UNION ALL
    SELECT
        'unknown_sku_sitoo', return_id, item_id, sku,
        jsonb_strip_nulls(jsonb_build_object('hint', staging.sitoo_sku_hint(sku)))
    FROM failing_items
    WHERE unknown_sku_sitoo
    UNION ALL
    -- our own corrective postings that need a person
    SELECT
        'credit_note_awaiting_approval', p.return_id, NULL, NULL,
        jsonb_build_object('posting_key', p.posting_key, 'task_id', p.target_ref, 'amount', p.amount)
    FROM recon.postings AS p INNER JOIN int_return_legs AS r USING (return_id)
    WHERE
        p.action = 'create_credit_note' AND p.payload ->> 'Status' = 'DRAFT' AND p.status IN ('done', 'adopted')
        AND r.authorised_notes = 0
    UNION ALL
    SELECT
        'posting_refused', p.return_id, NULL, NULL,
        jsonb_build_object('posting_key', p.posting_key, 'action', p.action, 'reason', p.last_error)
    FROM recon.postings AS p INNER JOIN int_return_legs USING (return_id)
    WHERE p.status = 'refused'
    UNION ALL
    -- data: quarantined payloads
    SELECT
        'invalid_record',
        CASE WHEN q.source = 'reveni' AND q.entity = 'returns' THEN q.natural_key END,
        CASE
            WHEN NOT (q.source = 'reveni' AND q.entity = 'returns')
                THEN q.source || '.' || q.entity || ':' || coalesce(q.natural_key, q.payload_hash)
        END,
        NULL,
        jsonb_build_object(
            'source', q.source, 'entity', q.entity, 'error', q.error,
            'first_seen_at', q.first_seen_at, 'occurrences', q.occurrences
        )
    FROM (
        SELECT DISTINCT ON (source, entity, coalesce(natural_key, payload_hash)) *
        FROM raw.quarantine
        WHERE
            superseded_at IS NULL
            AND (
                %(scope)s::text[] IS NULL
                OR (source = 'reveni' AND entity = 'returns' AND natural_key = any(%(scope)s::text[]))
            )
        ORDER BY source ASC, entity ASC, coalesce(natural_key, payload_hash), last_seen_at DESC
    ) AS q
)

SELECT DISTINCT ON (k.key)
    k.key AS exception_key, k.exception_type, k.return_id, k.item_id, k.sku,
    CASE
        WHEN k.exception_type IN (
                'credit_note_without_refund', 'duplicate_credit_note', 'credit_note_amount_mismatch',
                'credit_note_tax_mismatch'
            )
            -- the notes themselves, read only for the returns that need them
            THEN k.evidence || jsonb_build_object('credit_notes', (
                    SELECT
                        jsonb_agg(
                            jsonb_build_object(
                                'task_id', n.task_id, 'number', n.credit_note_number, 'status', n.status,
                                'total', n.total, 'tax', n.tax, 'matched_by', n.matched_by
                            ) ORDER BY n.task_id
                        )
                    FROM int_credit_notes AS n
                    WHERE n.return_id = k.return_id
                ))
        ELSE k.evidence
    END AS evidence
FROM (
    SELECT c.*, c.exception_type || ':' || coalesce(c.return_id, '-') || coalesce(':' || c.item_id, '') AS key
    FROM checks AS c
) AS k
ORDER BY k.key
