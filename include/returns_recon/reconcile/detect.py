"""Every exception type of the taxonomy, detected in one statement over the int_ models.

Each check is a condition over one row of ``int_return_legs`` (a return) or ``int_items`` (an item)
and the evidence to keep. Both models are read once: the rows that fail any check are picked in
one pass, then each check runs over those few rows.

Blocking rules (operating-model.md §3): ``sale_not_found`` blocks the Cin7 Core checks of the
return; ``unmapped_location`` blocks its stock checks and (not knowing whether it is a store) the
Sitoo return record check; ``unknown_sku_cin7`` / ``unknown_sku_sitoo`` block the item's Cin7 Core /
Sitoo checks. Time-based checks use now() against the configured SLAs.
"""

from __future__ import annotations

from typing import NamedTuple


class Check(NamedTuple):
    exception_type: str
    where: str  # SQL condition over the model's row
    evidence: str  # SQL jsonb expression


RETURN_CHECKS = (
    # finance: credit notes against refunds (needs the sale)
    Check("sale_not_found", "sale_id IS NULL",
          "jsonb_build_object('order_external_id', order_external_id, 'sale_field', %(match_field)s::text)"),
    Check("refund_without_credit_note", "sale_id IS NOT NULL AND refunded > 0 AND authorised_notes = 0",
          """jsonb_build_object('refunded', refunded, 'currency', refund_currency, 'sale_id', sale_id,
                                'refunded_at', last_refund_at)"""),
    Check("credit_note_without_refund", "sale_id IS NOT NULL AND refunded = 0 AND authorised_notes > 0",
          "jsonb_build_object('credited', credited, 'currency', credit_currency, 'status', status)"),
    Check("duplicate_credit_note", "sale_id IS NOT NULL AND refunded > 0 AND authorised_notes > 1",
          "jsonb_build_object('authorised_notes', authorised_notes, 'refunded', refunded)"),
    Check("credit_note_amount_mismatch",
          """sale_id IS NOT NULL AND refunded > 0 AND authorised_notes = 1
             AND (abs(credited - refunded) > %(tolerance)s OR credit_currency IS DISTINCT FROM refund_currency)""",
          """jsonb_build_object('refunded', refunded, 'refund_currency', refund_currency, 'credited', credited,
                                'credit_currency', credit_currency, 'difference', credited - refunded)"""),
    Check("credit_note_tax_mismatch",
          """sale_id IS NOT NULL AND refunded > 0 AND authorised_notes = 1
             AND abs(credited - refunded) <= %(tolerance)s AND credit_currency = refund_currency
             AND abs(credited_tax - expected_tax) > %(tolerance)s""",
          """jsonb_build_object('credited_tax', credited_tax, 'expected_tax', expected_tax,
                                'difference', credited_tax - expected_tax)"""),
    # an AUTHORISED note made by hand on the sale that no return can be attributed (int_notes_by_hand), even
    # beside our own note: one row per refunded return of the sale (the key is type:return, as every
    # return-level type); its credit note is not created while this is open (postings/plan.py)
    Check("unattributed_credit_note", "sale_id IS NOT NULL AND refunded > 0 AND unattributed_notes > 0",
          """jsonb_build_object(
                 'order_external_id', order_external_id, 'sale_id', sale_id, 'sale_order_number', (
                     SELECT s.order_number FROM staging.stg_cin7__sales s WHERE s.sale_id = r.sale_id),
                 'refunded', refunded, 'refund_currency', refund_currency,
                 'credited', coalesce(credited, 0), 'credit_currency', credit_currency,
                 'unattributed_credited', unattributed_credited,
                 'credit_notes', (
                     SELECT jsonb_agg(jsonb_build_object(
                                'task_id', n.task_id, 'number', n.credit_note_number, 'total', n.total,
                                'currency', n.currency, 'date', n.credit_note_date,
                                'returns_matched', n.returns_matched, 'matched_returns', n.matched_returns)
                            ORDER BY n.credit_note_number, n.task_id)
                     FROM int_notes_by_hand n WHERE n.sale_id = r.sale_id AND n.return_id IS NULL),
                 'refunded_returns_of_sale', (
                     SELECT n.sale_returns FROM int_notes_by_hand n WHERE n.sale_id = r.sale_id LIMIT 1),
                 'steps', format('In Cin7 Core open the sale %%s (order %%s): check whether the customer was '
                                 'credited twice. Void a note that repeats a credit already given; if a note is the '
                                 'credit of a return, resolve that return''s refund_without_credit_note too, or our '
                                 'credit note is created for it once this is resolved.',
                                 sale_id, order_external_id))"""),
    # the same items refunded by Reveni and paid back at the till
    Check("double_refund", "refunded > 0 AND coalesce(pos_paid, 0) <> 0",
          """jsonb_build_object('reveni_refunded', refunded, 'pos_paid', pos_paid,
                                'sitoo_return_records', return_records)"""),
    Check("sitoo_return_record_missing", "map_ok AND kind = 'store' AND refunded > 0 AND return_records = 0",
          """jsonb_build_object('refunded', refunded, 'currency', refund_currency,
                                'sitoo_warehouse_id', sitoo_warehouse_id)"""),
    # customer service: exchanges
    Check("exchange_order_missing", "exchange_requested AND exchange_sale_id IS NULL",
          "jsonb_build_object('status', status)"),
    Check("exchange_order_held",
          """exchange_requested AND exchange_sale_id IS NOT NULL
             AND upper(coalesce(exchange_order_status, '')) NOT IN ('AUTHORISED', 'COMPLETED', 'SHIPPED', 'PACKED',
                                                                   'PICKED')""",
          "jsonb_build_object('exchange_sale_id', exchange_sale_id, 'order_status', exchange_order_status)"),
    # data: master data (the rules of staging.int_master_data__mismatches, for the returns in the window)
    Check("unmapped_location", "NOT map_ok",
          """jsonb_strip_nulls(jsonb_build_object(
                 'hint', coalesce(map_problem, staging.return_point_hint(return_point_name)),
                 'return_point_id', return_point_id))"""),
)  # fmt: skip

# warehouse stock legs need the item's SKU known to Cin7 Core, the return mapped and the sale found;
# store stock legs the SKU known to Sitoo and the return mapped
WAREHOUSE = "kind = 'warehouse' AND map_ok AND sale_id IS NOT NULL AND NOT unknown_cin7"
STORE = "kind = 'store' AND map_ok AND NOT unknown_sitoo"
IN_SELLABLE = "restocked_to_sellable + (transfers_into_sellable - transfers_out_of_sellable) * quantity"
RESTOCKED = "restocked_to_holding + restocked_to_sellable + restocked_elsewhere"
# One incident, one row (operating-model.md §3): a release or store restock after the SLA is no
# restock_latency_breach when it is our own corrective posting of the SLA exception already raised for the item
# (whose row keeps the times and the posting). A person's late release, or ours superseded by theirs, still is.
# (the postings are read through a subquery without return_id / item_id columns, which would shadow the item's)
OURS = """EXISTS (SELECT 1 FROM (SELECT exception_key AS fixed FROM recon.postings
                       WHERE status IN ('done', 'adopted')) p
                 WHERE p.fixed = '{fix}:' || return_id || ':' || item_id)"""

ITEM_CHECKS = (
    # operations: warehouse stock in Cin7 Core
    # not auto-fixed: Cin7 Core takes restock lines only on a DRAFT credit note or one being created
    # (apib L24689), which the credit note we create carries; anything else needs a person
    Check("missing_restock", f"{WAREHOUSE} AND received_at IS NOT NULL AND {RESTOCKED} = 0",
          """jsonb_build_object('received_at', received_at, 'holding', holding, 'quantity', quantity,
                 'steps', format('In Cin7 Core open the sale %%s, tab Credit Note (memo reveni:%%s; create it as DRAFT '
                                 'if there is none), section Restock: add %%s x %%s into %%s, then authorise the '
                                 'restock. The API cannot add restock lines to an authorised credit note.',
                                 sale_id, return_id, quantity, sku, holding))"""),
    Check("premature_restock", f"{WAREHOUSE} AND validation_status = 'pending' AND {IN_SELLABLE} > 0",
          """jsonb_build_object('validation_status', validation_status, 'restocked_to_sellable', restocked_to_sellable,
                                'transfers_into_sellable', transfers_into_sellable, 'sellable', sellable)"""),
    Check("rejected_item_in_sellable_stock",
          f"""{WAREHOUSE} AND {IN_SELLABLE} > 0
              AND (validation_status = 'rejected' OR (validation_status = 'accepted' AND restock IS NOT TRUE))""",
          """jsonb_build_object('validation_status', validation_status, 'restock', restock,
                                'restocked_to_sellable', restocked_to_sellable,
                                'transfers_into_sellable', transfers_into_sellable)"""),
    Check("inspected_not_released",
          f"""{WAREHOUSE} AND validation_status = 'accepted' AND restock AND {RESTOCKED} > 0 AND {IN_SELLABLE} <= 0
              AND validated_at + %(release_sla)s < now()""",
          """jsonb_build_object('validated_at', validated_at, 'release_due', validated_at + %(release_sla)s,
                                'holding', holding, 'sellable', sellable)"""),
    Check("restock_latency_breach",
          f"""{WAREHOUSE} AND validation_status = 'accepted' AND restock
              AND first_release_at > validated_at + %(release_sla)s
              AND NOT {OURS.format(fix='inspected_not_released')}""",
          """jsonb_build_object('leg', 'release', 'validated_at', validated_at, 'released_at', first_release_at,
                                'due', validated_at + %(release_sla)s)"""),
    # operations: store stock in Sitoo
    Check("sitoo_stock_missing",
          f"""{STORE} AND validation_status = 'accepted' AND restock AND sitoo_transactions = 0
              AND validated_at + %(restock_sla)s < now()""",
          """jsonb_build_object('validated_at', validated_at, 'due', validated_at + %(restock_sla)s,
                                'sitoo_warehouse_id', sitoo_warehouse_id)"""),
    Check("sitoo_stock_wrong_location", f"{STORE} AND sitoo_elsewhere AND NOT coalesce(sitoo_at_mapped, false)",
          """jsonb_build_object('expected_warehouse_id', sitoo_warehouse_id, 'found_in_warehouses', (
                 SELECT array_agg(DISTINCT t.warehouse_id) FROM staging.stg_sitoo__warehouse_transactions t
                 WHERE t.external_id = 'reveni:' || return_id || ':' || item_id))"""),
    Check("restock_latency_breach",
          f"""{STORE} AND validation_status = 'accepted' AND restock AND sitoo_first_at > validated_at + %(restock_sla)s
              AND NOT {OURS.format(fix='sitoo_stock_missing')}""",
          """jsonb_build_object('leg', 'sitoo_stock', 'validated_at', validated_at, 'stocked_at', sitoo_first_at,
                                'due', validated_at + %(restock_sla)s)"""),
    # data: master data
    Check("unknown_sku_cin7", "unknown_cin7",
          "jsonb_strip_nulls(jsonb_build_object('hint', staging.cin7_sku_hint(sku)))"),
    Check("unknown_sku_sitoo", "kind = 'store' AND map_ok AND unknown_sitoo",
          "jsonb_strip_nulls(jsonb_build_object('hint', staging.sitoo_sku_hint(sku)))"),
)  # fmt: skip

# checks that read other tables than the two models
OTHER_CHECKS = """
    -- our own corrective postings that need a person
    SELECT 'credit_note_awaiting_approval', p.return_id, NULL, NULL,
           jsonb_build_object('posting_key', p.posting_key, 'task_id', p.target_ref, 'amount', p.amount)
    FROM recon.postings p JOIN int_return_legs r USING (return_id)
    WHERE p.action = 'create_credit_note' AND p.payload ->> 'Status' = 'DRAFT' AND p.status IN ('done', 'adopted')
      AND r.authorised_notes = 0
    UNION ALL
    SELECT 'posting_refused', p.return_id, NULL, NULL,
           jsonb_build_object('posting_key', p.posting_key, 'action', p.action, 'reason', p.last_error)
    FROM recon.postings p JOIN int_return_legs r USING (return_id)
    WHERE p.status = 'refused'
    UNION ALL
    -- data: quarantined payloads
    SELECT 'invalid_record',
           CASE WHEN q.source = 'reveni' AND q.entity = 'returns' THEN q.natural_key END,
           CASE WHEN NOT (q.source = 'reveni' AND q.entity = 'returns')
                THEN q.source || '.' || q.entity || ':' || coalesce(q.natural_key, q.payload_hash) END,
           NULL,
           jsonb_build_object('source', q.source, 'entity', q.entity, 'error', q.error,
                              'first_seen_at', q.first_seen_at, 'occurrences', q.occurrences)
    FROM (SELECT DISTINCT ON (source, entity, coalesce(natural_key, payload_hash)) *
          FROM raw.quarantine WHERE superseded_at IS NULL
          ORDER BY source, entity, coalesce(natural_key, payload_hash), last_seen_at DESC) q"""


def _failing(model: str, checks: tuple[Check, ...]) -> str:
    """The model's rows that fail at least one check, in one scan."""
    return f"SELECT * FROM {model} WHERE " + "\n   OR ".join(f"({check.where})" for check in checks)


def _branches(alias: str, item_columns: str, checks: tuple[Check, ...]) -> str:
    return "\n    UNION ALL\n".join(
        f"    SELECT '{check.exception_type}', return_id, {item_columns}, {check.evidence}\n"
        f"    FROM {alias} WHERE {check.where}"
        for check in checks
    )


FOUND = f"""
CREATE UNLOGGED TABLE found AS
WITH r AS MATERIALIZED ({_failing("int_return_legs", RETURN_CHECKS)}),
i AS MATERIALIZED ({_failing("int_items", ITEM_CHECKS)}),
checks (exception_type, return_id, item_id, sku, evidence) AS (
{_branches("r", "NULL::text, NULL::text", RETURN_CHECKS)}
    UNION ALL
{_branches("i", "item_id, sku", ITEM_CHECKS)}
    UNION ALL
{OTHER_CHECKS}
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
