"""Every exception type of the taxonomy, detected in one statement over the int_ models.

Blocking rules (operating-model.md §3): ``sale_not_found`` blocks the Cin7 Core checks of the
return; ``unmapped_location`` blocks its stock checks and (not knowing whether it is a store) the
Sitoo return record check; ``unknown_sku_cin7`` / ``unknown_sku_sitoo`` block the item's Cin7 Core /
Sitoo checks. Time-based checks use now() against the configured SLAs.
"""

from __future__ import annotations

FOUND = """
CREATE TEMP TABLE found ON COMMIT DROP AS
WITH r AS NOT MATERIALIZED (SELECT * FROM int_return_legs),
i AS NOT MATERIALIZED (SELECT * FROM int_items),
checks AS (
    -- finance: credit notes against refunds (needs the sale)
    SELECT 'sale_not_found' AS exception_type, return_id, NULL::text AS item_id, NULL::text AS sku,
           jsonb_build_object('order_external_id', order_external_id, 'sale_field', %(match_field)s::text) AS evidence
    FROM r WHERE sale_id IS NULL
    UNION ALL
    SELECT 'refund_without_credit_note', return_id, NULL, NULL,
           jsonb_build_object('refunded', refunded, 'currency', refund_currency, 'sale_id', sale_id,
                              'refunded_at', last_refund_at)
    FROM r WHERE sale_id IS NOT NULL AND refunded > 0 AND authorised_notes = 0
    UNION ALL
    SELECT 'credit_note_without_refund', return_id, NULL, NULL,
           jsonb_build_object('credited', credited, 'currency', credit_currency, 'status', status)
    FROM r WHERE sale_id IS NOT NULL AND refunded = 0 AND authorised_notes > 0
    UNION ALL
    SELECT 'duplicate_credit_note', return_id, NULL, NULL,
           jsonb_build_object('authorised_notes', authorised_notes, 'refunded', refunded)
    FROM r WHERE sale_id IS NOT NULL AND refunded > 0 AND authorised_notes > 1
    UNION ALL
    SELECT 'credit_note_amount_mismatch', return_id, NULL, NULL,
           jsonb_build_object('refunded', refunded, 'refund_currency', refund_currency, 'credited', credited,
                              'credit_currency', credit_currency, 'difference', credited - refunded)
    FROM r
    WHERE sale_id IS NOT NULL AND refunded > 0 AND authorised_notes = 1
      AND (abs(credited - refunded) > %(tolerance)s OR credit_currency IS DISTINCT FROM refund_currency)
    UNION ALL
    SELECT 'credit_note_tax_mismatch', return_id, NULL, NULL,
           jsonb_build_object('credited_tax', credited_tax, 'expected_tax', expected_tax,
                              'difference', credited_tax - expected_tax)
    FROM r
    WHERE sale_id IS NOT NULL AND refunded > 0 AND authorised_notes = 1
      AND abs(credited - refunded) <= %(tolerance)s AND credit_currency = refund_currency
      AND abs(credited_tax - expected_tax) > %(tolerance)s
    UNION ALL
    -- the same items refunded by Reveni and paid back at the till
    SELECT 'double_refund', return_id, NULL, NULL,
           jsonb_build_object('reveni_refunded', refunded, 'pos_paid', pos_paid,
                              'sitoo_return_records', return_records)
    FROM r WHERE refunded > 0 AND coalesce(pos_paid, 0) <> 0
    UNION ALL
    SELECT 'sitoo_return_record_missing', return_id, NULL, NULL,
           jsonb_build_object('refunded', refunded, 'currency', refund_currency,
                              'sitoo_warehouse_id', sitoo_warehouse_id)
    FROM r WHERE map_ok AND kind = 'store' AND refunded > 0 AND return_records = 0
    UNION ALL
    -- customer service: exchanges
    SELECT 'exchange_order_missing', return_id, NULL, NULL, jsonb_build_object('status', status)
    FROM r WHERE exchange_requested AND exchange_sale_id IS NULL
    UNION ALL
    SELECT 'exchange_order_held', return_id, NULL, NULL,
           jsonb_build_object('exchange_sale_id', exchange_sale_id, 'order_status', exchange_order_status)
    FROM r
    WHERE exchange_requested AND exchange_sale_id IS NOT NULL
      AND upper(coalesce(exchange_order_status, '')) NOT IN ('AUTHORISED', 'COMPLETED', 'SHIPPED', 'PACKED', 'PICKED')
    UNION ALL
    -- operations: warehouse stock legs (the item's SKU known to Cin7 Core, the return mapped, the sale found)
    SELECT 'missing_restock', return_id, item_id, sku,
           jsonb_build_object('received_at', received_at, 'holding', holding, 'quantity', quantity)
    FROM i
    WHERE kind = 'warehouse' AND map_ok AND sale_id IS NOT NULL AND NOT unknown_cin7 AND received_at IS NOT NULL
      AND restocked_to_holding + restocked_to_sellable + restocked_elsewhere = 0
    UNION ALL
    SELECT 'premature_restock', return_id, item_id, sku,
           jsonb_build_object('validation_status', validation_status, 'restocked_to_sellable', restocked_to_sellable,
                              'transfers_into_sellable', transfers_into_sellable, 'sellable', sellable)
    FROM i
    WHERE kind = 'warehouse' AND map_ok AND sale_id IS NOT NULL AND NOT unknown_cin7
      AND validation_status = 'pending'
      AND restocked_to_sellable + (transfers_into_sellable - transfers_out_of_sellable) * quantity > 0
    UNION ALL
    SELECT 'rejected_item_in_sellable_stock', return_id, item_id, sku,
           jsonb_build_object('validation_status', validation_status, 'restock', restock,
                              'restocked_to_sellable', restocked_to_sellable,
                              'transfers_into_sellable', transfers_into_sellable)
    FROM i
    WHERE kind = 'warehouse' AND map_ok AND sale_id IS NOT NULL AND NOT unknown_cin7
      AND (validation_status = 'rejected' OR (validation_status = 'accepted' AND restock IS NOT TRUE))
      AND restocked_to_sellable + (transfers_into_sellable - transfers_out_of_sellable) * quantity > 0
    UNION ALL
    SELECT 'inspected_not_released', return_id, item_id, sku,
           jsonb_build_object('validated_at', validated_at, 'release_due', validated_at + %(release_sla)s,
                              'holding', holding, 'sellable', sellable)
    FROM i
    WHERE kind = 'warehouse' AND map_ok AND sale_id IS NOT NULL AND NOT unknown_cin7
      AND validation_status = 'accepted' AND restock
      AND restocked_to_holding + restocked_to_sellable + restocked_elsewhere > 0
      AND restocked_to_sellable + (transfers_into_sellable - transfers_out_of_sellable) * quantity <= 0
      AND validated_at + %(release_sla)s < now()
    UNION ALL
    SELECT 'restock_latency_breach', return_id, item_id, sku,
           jsonb_build_object('leg', 'release', 'validated_at', validated_at, 'released_at', first_release_at,
                              'due', validated_at + %(release_sla)s)
    FROM i
    WHERE kind = 'warehouse' AND map_ok AND sale_id IS NOT NULL AND NOT unknown_cin7
      AND validation_status = 'accepted' AND restock AND first_release_at > validated_at + %(release_sla)s
    UNION ALL
    -- operations: store stock in Sitoo (the item's SKU known to Sitoo, the return mapped)
    SELECT 'sitoo_stock_missing', return_id, item_id, sku,
           jsonb_build_object('validated_at', validated_at, 'due', validated_at + %(restock_sla)s,
                              'sitoo_warehouse_id', sitoo_warehouse_id)
    FROM i
    WHERE kind = 'store' AND map_ok AND NOT unknown_sitoo AND validation_status = 'accepted' AND restock
      AND sitoo_warehouses IS NULL AND validated_at + %(restock_sla)s < now()
    UNION ALL
    SELECT 'sitoo_stock_wrong_location', return_id, item_id, sku,
           jsonb_build_object('expected_warehouse_id', sitoo_warehouse_id, 'found_in_warehouses', sitoo_warehouses)
    FROM i
    WHERE kind = 'store' AND map_ok AND NOT unknown_sitoo AND sitoo_elsewhere AND NOT coalesce(sitoo_at_mapped, false)
    UNION ALL
    SELECT 'restock_latency_breach', return_id, item_id, sku,
           jsonb_build_object('leg', 'sitoo_stock', 'validated_at', validated_at, 'stocked_at', sitoo_first_at,
                              'due', validated_at + %(restock_sla)s)
    FROM i
    WHERE kind = 'store' AND map_ok AND NOT unknown_sitoo AND validation_status = 'accepted' AND restock
      AND sitoo_first_at > validated_at + %(restock_sla)s
    UNION ALL
    -- our own corrective postings that need a person
    SELECT 'credit_note_awaiting_approval', p.return_id, NULL, NULL,
           jsonb_build_object('posting_key', p.posting_key, 'task_id', p.target_ref, 'amount', p.amount)
    FROM recon.postings p JOIN r USING (return_id)
    WHERE p.action = 'create_credit_note' AND p.payload ->> 'Status' = 'DRAFT' AND p.status IN ('done', 'adopted')
      AND r.authorised_notes = 0
    UNION ALL
    SELECT 'posting_refused', p.return_id, NULL, NULL,
           jsonb_build_object('posting_key', p.posting_key, 'action', p.action, 'reason', p.last_error)
    FROM recon.postings p JOIN r USING (return_id)
    WHERE p.status = 'refused'
    UNION ALL
    -- data: master-data mismatches (from the data-quality view) and quarantined payloads
    -- (the rules of staging.int_master_data__mismatches, applied to the returns in the window)
    SELECT 'unmapped_location', return_id, NULL, NULL,
           jsonb_strip_nulls(jsonb_build_object(
               'hint', coalesce(map_problem, staging.return_point_hint(return_point_name)),
               'return_point_id', return_point_id))
    FROM r WHERE NOT map_ok
    UNION ALL
    SELECT 'unknown_sku_cin7', return_id, item_id, sku,
           jsonb_strip_nulls(jsonb_build_object('hint', staging.cin7_sku_hint(sku)))
    FROM i WHERE unknown_cin7
    UNION ALL
    SELECT 'unknown_sku_sitoo', return_id, item_id, sku,
           jsonb_strip_nulls(jsonb_build_object('hint', staging.sitoo_sku_hint(sku)))
    FROM i WHERE kind = 'store' AND map_ok AND unknown_sitoo
    UNION ALL
    SELECT 'invalid_record',
           CASE WHEN q.source = 'reveni' AND q.entity = 'returns' THEN q.natural_key END,
           CASE WHEN NOT (q.source = 'reveni' AND q.entity = 'returns')
                THEN q.source || '.' || q.entity || ':' || coalesce(q.natural_key, q.payload_hash) END,
           NULL,
           jsonb_build_object('source', q.source, 'entity', q.entity, 'error', q.error,
                              'first_seen_at', q.first_seen_at, 'occurrences', q.occurrences)
    FROM (SELECT DISTINCT ON (source, entity, coalesce(natural_key, payload_hash)) *
          FROM raw.quarantine WHERE superseded_at IS NULL
          ORDER BY source, entity, coalesce(natural_key, payload_hash), last_seen_at DESC) q
)
SELECT DISTINCT ON (key) key AS exception_key, exception_type, return_id, item_id, sku,
       CASE WHEN exception_type IN ('credit_note_without_refund', 'duplicate_credit_note',
                                   'credit_note_amount_mismatch', 'credit_note_tax_mismatch')
            -- the notes themselves, read only for the returns that need them
            THEN evidence || jsonb_build_object('credit_notes', (
                SELECT jsonb_agg(jsonb_build_object('task_id', n.task_id, 'number', n.credit_note_number,
                                                    'status', n.status, 'total', n.total, 'tax', n.tax,
                                                    'matched_by', n.matched_by) ORDER BY n.task_id)
                FROM int_credit_notes n WHERE n.return_id = k.return_id))
            ELSE evidence END AS evidence
FROM (SELECT c.*, c.exception_type || ':' || coalesce(c.return_id, '-') || coalesce(':' || c.item_id, '') AS key
      FROM checks c) k
ORDER BY key;
CREATE UNIQUE INDEX ON found (exception_key);
"""
