"""The published finance tables: built in a shadow schema, audited, swapped in in one transaction."""

from __future__ import annotations

FCT_RETURN_RECONCILIATION = """
CREATE TABLE recon_build.fct_return_reconciliation AS
SELECT i.item_id, i.return_id, r.order_external_id, r.sale_id, i.sku, i.quantity, r.currency, r.status AS return_status,
       i.validation_status, i.restock, r.kind AS return_point_kind, r.return_point_id, r.is_instant,
       r.created_at, r.received_at, i.validated_at,
       r.refunded AS return_refunded, r.credited AS return_credited,
       CASE WHEN r.sale_id IS NULL THEN 'blocked'
            WHEN r.authorised_notes > 1 THEN 'duplicate'
            -- a note by hand on the sale that no return can be attributed: the credit may be twice
            WHEN r.refunded > 0 AND r.unattributed_notes > 0 THEN 'unattributed'
            WHEN r.refunded > 0 AND r.authorised_notes = 0 THEN 'missing'
            WHEN r.refunded = 0 AND r.authorised_notes > 0 THEN 'unexpected'
            WHEN r.refunded > 0 AND abs(r.credited - r.refunded) > %(tolerance)s THEN 'mismatch'
            WHEN r.refunded > 0 THEN 'ok' ELSE 'not_due' END AS credit_note_leg,
       CASE WHEN r.kind IS DISTINCT FROM 'warehouse' THEN 'not_applicable'
            WHEN NOT r.map_ok OR i.unknown_cin7 THEN 'blocked'
            WHEN r.received_at IS NULL THEN 'not_due'
            WHEN i.restocked_to_holding + i.restocked_to_sellable + i.restocked_elsewhere > 0 THEN 'ok'
            ELSE 'missing' END AS restock_leg,
       CASE WHEN r.kind IS DISTINCT FROM 'warehouse' THEN 'not_applicable'
            WHEN NOT r.map_ok OR i.unknown_cin7 THEN 'blocked'
            WHEN i.validation_status = 'accepted' AND i.restock THEN
                 CASE WHEN i.restocked_to_sellable + (i.transfers_into_sellable - i.transfers_out_of_sellable)
                           * i.quantity > 0 THEN 'released'
                      WHEN i.validated_at + %(release_sla)s < now() THEN 'overdue' ELSE 'pending' END
            ELSE 'not_due' END AS release_leg,
       CASE WHEN r.kind IS DISTINCT FROM 'store' THEN 'not_applicable'
            WHEN NOT r.map_ok THEN 'blocked'
            WHEN r.refunded = 0 THEN 'not_due'
            WHEN r.return_records > 0 THEN 'ok' ELSE 'missing' END AS sitoo_record_leg,
       CASE WHEN r.kind IS DISTINCT FROM 'store' THEN 'not_applicable'
            WHEN NOT r.map_ok OR i.unknown_sitoo THEN 'blocked'
            WHEN i.sitoo_at_mapped THEN 'ok'
            WHEN i.sitoo_elsewhere THEN 'wrong_location'
            WHEN i.validation_status = 'accepted' AND i.restock THEN
                 CASE WHEN i.validated_at + %(restock_sla)s < now() THEN 'missing' ELSE 'pending' END
            ELSE 'not_due' END AS sitoo_stock_leg,
       CASE WHEN i.exchange_sku IS NULL THEN 'not_applicable'
            WHEN r.exchange_sale_id IS NULL THEN 'missing'
            ELSE lower(coalesce(r.exchange_order_status, 'unknown')) END AS exchange_leg,
       CASE WHEN o.types IS NULL AND ro.types IS NULL THEN '{}'::text[]
            WHEN ro.types IS NULL THEN o.types
            WHEN o.types IS NULL THEN ro.types
            ELSE ARRAY(SELECT DISTINCT t FROM unnest(o.types || ro.types) t ORDER BY t) END AS open_exception_types,
       CASE WHEN o.types IS NOT NULL OR ro.types IS NOT NULL THEN 'exception'
            WHEN r.status IN ('accepted', 'partly_accepted', 'rejected', 'cancelled') THEN 'reconciled'
            ELSE 'in_progress' END AS overall_status,
       floor(date_part('epoch', now() - r.created_at) / 86400)::int AS age_days
FROM int_items i
JOIN int_return_legs r USING (return_id)
-- open exceptions of the item, and of its return as a whole
LEFT JOIN (
    SELECT return_id, item_id, array_agg(DISTINCT exception_type ORDER BY exception_type) AS types
    FROM recon.exceptions WHERE state IN ('open', 'acknowledged') AND item_id IS NOT NULL GROUP BY return_id, item_id
) o ON o.return_id = i.return_id AND o.item_id = i.item_id
LEFT JOIN (
    SELECT return_id, array_agg(DISTINCT exception_type ORDER BY exception_type) AS types
    FROM recon.exceptions WHERE state IN ('open', 'acknowledged') AND item_id IS NULL GROUP BY return_id
) ro ON ro.return_id = i.return_id;
ALTER TABLE recon_build.fct_return_reconciliation ADD PRIMARY KEY (item_id);
"""

REFUND_JOURNAL = """
CREATE TABLE recon_build.refund_journal AS
WITH refunds AS (
    SELECT (coalesce(f.refunded_at, r.created_at) AT TIME ZONE 'UTC')::date AS day, f.currency, count(*) AS refunds,
           sum(f.amount) AS refunded
    FROM staging.stg_reveni__refunds f JOIN int_returns r USING (return_id)
    WHERE f.status = 'paid' GROUP BY 1, 2
), credits AS (
    SELECT (coalesce(c.credit_note_date, now()) AT TIME ZONE 'UTC')::date AS day, c.currency, count(*) AS credit_notes,
           sum(c.total) AS credited
    FROM int_credit_notes c WHERE c.status = 'AUTHORISED' GROUP BY 1, 2
), unattributed AS (
    -- AUTHORISED notes made by hand on the sales of refunded returns that no return can be attributed
    SELECT (coalesce(u.credit_note_date, now()) AT TIME ZONE 'UTC')::date AS day, u.currency,
           count(*) AS unattributed_notes, sum(u.total) AS unattributed_credited
    FROM int_notes_by_hand u WHERE u.return_id IS NULL GROUP BY 1, 2
), records AS (
    SELECT (x.recorded_at AT TIME ZONE 'UTC')::date AS day, x.currency, sum(x.return_records) AS sitoo_records,
           -sum(x.record_total) AS sitoo_recorded
    FROM int_return_legs x WHERE x.return_records > 0 GROUP BY 1, 2
)
SELECT day, currency,
       coalesce(refunds, 0) AS reveni_refunds, coalesce(refunded, 0) AS reveni_refunded,
       coalesce(credit_notes, 0) AS cin7_credit_notes, coalesce(credited, 0) AS cin7_credited,
       coalesce(sitoo_records, 0) AS sitoo_return_records, coalesce(sitoo_recorded, 0) AS sitoo_recorded,
       coalesce(credited, 0) - coalesce(refunded, 0) AS credited_minus_refunded,
       coalesce(unattributed_notes, 0) AS cin7_unattributed_notes,
       coalesce(unattributed_credited, 0) AS cin7_unattributed_credited
FROM refunds FULL JOIN credits USING (day, currency) FULL JOIN unattributed USING (day, currency)
FULL JOIN records USING (day, currency);
ALTER TABLE recon_build.refund_journal ADD PRIMARY KEY (day, currency);
"""

DAILY_SUMMARY = """
CREATE TABLE recon_build.daily_summary AS
WITH per_day AS (
    SELECT (r.created_at AT TIME ZONE 'UTC')::date AS day, r.currency, count(*) AS returns,
           sum(r.refunded) AS refunded, sum(coalesce(r.credited, 0)) AS credited
    FROM int_return_legs r GROUP BY 1, 2
), open_exceptions AS (
    SELECT (r.created_at AT TIME ZONE 'UTC')::date AS day, r.currency,
           jsonb_object_agg(t.exception_type, t.n) AS by_type
    FROM (SELECT q.return_id, q.exception_type, count(*) AS n FROM recon.exceptions q
          WHERE q.state IN ('open', 'acknowledged') GROUP BY 1, 2) t
    JOIN int_returns r USING (return_id)
    GROUP BY 1, 2
), aged AS (
    SELECT (r.created_at AT TIME ZONE 'UTC')::date AS day, r.currency,
           count(*) FILTER (WHERE now() - q.first_seen_at < interval '1 day') AS open_under_1d,
           count(*) FILTER (WHERE now() - q.first_seen_at >= interval '1 day'
                            AND now() - q.first_seen_at < interval '7 days') AS open_1_to_7d,
           count(*) FILTER (WHERE now() - q.first_seen_at >= interval '7 days') AS open_over_7d
    FROM recon.exceptions q JOIN int_returns r USING (return_id)
    WHERE q.state IN ('open', 'acknowledged') GROUP BY 1, 2
)
SELECT p.day, p.currency, p.returns, p.refunded, p.credited, p.credited - p.refunded AS difference,
       coalesce(a.open_under_1d, 0) AS open_under_1d, coalesce(a.open_1_to_7d, 0) AS open_1_to_7d,
       coalesce(a.open_over_7d, 0) AS open_over_7d, coalesce(o.by_type, '{}'::jsonb) AS open_by_type
FROM per_day p
LEFT JOIN open_exceptions o USING (day, currency)
LEFT JOIN aged a USING (day, currency);
ALTER TABLE recon_build.daily_summary ADD PRIMARY KEY (day, currency);
"""

TABLES = ("fct_return_reconciliation", "refund_journal", "daily_summary")
BUILD = (FCT_RETURN_RECONCILIATION, REFUND_JOURNAL, DAILY_SUMMARY)

# Each audit returns one row: (ok, detail).
AUDITS = {
    "every item in scope is published once": """
        SELECT (SELECT count(*) FROM recon_build.fct_return_reconciliation) = (SELECT count(*) FROM int_items),
               format('%%s published, %%s in scope', (SELECT count(*) FROM recon_build.fct_return_reconciliation),
                      (SELECT count(*) FROM int_items))""",
    "refunds add up": """
        SELECT coalesce((SELECT sum(refunded) FROM recon_build.daily_summary), 0)
               = coalesce((SELECT sum(reveni_refunded) FROM recon_build.refund_journal), 0),
               'daily_summary.refunded = refund_journal.reveni_refunded'""",
    "returns add up": """
        SELECT coalesce((SELECT sum(returns) FROM recon_build.daily_summary), 0) = (SELECT count(*) FROM int_returns),
               'daily_summary.returns = returns in scope'""",
}
