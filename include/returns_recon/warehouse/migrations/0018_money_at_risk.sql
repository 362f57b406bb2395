-- Money at risk, defined once (issue 18, items 2 and 3): the gap credited - refunded of each open or acknowledged
-- exception (recon.exception_details.money_at_risk, with its currency), each return counted once per owner and
-- currency with its largest gap. Finance reads these two views as recon_reader; the exception mails
-- (notify/digest.py) read the owner's rows of the same views, so a mail's totals are what finance reads.
--
-- Until now recon.money_at_risk was rebuilt at every publish (reconcile/publish.py) from fct_returns and the
-- exceptions' evidence, a second definition that could disagree with the mails'. These views read only
-- recon.exception_details (recon.exceptions, recon.postings, staging, raw), nothing the publish swap drops.

DROP VIEW IF EXISTS recon.money_at_risk;

CREATE VIEW recon.money_at_risk_by_return AS
SELECT DISTINCT ON (d.owner, d.return_id, d.currency)
       d.owner, d.currency, d.return_id, d.order_number, d.money_at_risk AS gap, d.exception_key, d.exception_type,
       count(*) OVER (PARTITION BY d.owner, d.return_id, d.currency) AS exceptions,
       d.return_event, d.return_event_at, d.age_days
FROM recon.exception_details d
WHERE d.state IN ('open', 'acknowledged') AND d.money_at_risk <> 0
ORDER BY d.owner, d.return_id, d.currency, abs(d.money_at_risk) DESC, d.exception_key;

CREATE VIEW recon.money_at_risk AS
SELECT owner, currency, count(*) AS returns, sum(exceptions)::bigint AS open_exceptions,
       coalesce(sum(-gap) FILTER (WHERE gap < 0), 0) AS under_credited,
       coalesce(sum(gap) FILTER (WHERE gap > 0), 0) AS over_credited,
       sum(gap) AS credited_minus_refunded, sum(abs(gap)) AS money_at_risk
FROM recon.money_at_risk_by_return
GROUP BY owner, currency;

GRANT SELECT ON recon.money_at_risk_by_return, recon.money_at_risk TO recon_reader;

COMMENT ON VIEW recon.money_at_risk_by_return IS
    'View, grain: one row per owner, currency and return: the return''s largest gap (credited - refunded) among the '
    'owner''s open or acknowledged exceptions with a non-zero gap in that currency (exception_details.money_at_risk), '
    'ties broken by exception_key. The returns behind money_at_risk; the mails list the largest. See '
    'docs/reconciliation.md.';
COMMENT ON COLUMN recon.money_at_risk_by_return.owner IS 'the exceptions'' owner: finance, operations, data or customer service';
COMMENT ON COLUMN recon.money_at_risk_by_return.currency IS 'the currency of gap';
COMMENT ON COLUMN recon.money_at_risk_by_return.return_id IS 'the Reveni return';
COMMENT ON COLUMN recon.money_at_risk_by_return.order_number IS 'the shop''s order number of the return';
COMMENT ON COLUMN recon.money_at_risk_by_return.gap IS
    'the return''s largest gap by absolute value: credited - refunded (negative = refunded but not credited), as '
    'exception_details.money_at_risk of exception_key, in currency. Safe to SUM within one currency and owner';
COMMENT ON COLUMN recon.money_at_risk_by_return.exception_key IS 'the exception whose gap this is';
COMMENT ON COLUMN recon.money_at_risk_by_return.exception_type IS 'that exception''s type';
COMMENT ON COLUMN recon.money_at_risk_by_return.exceptions IS
    'the owner''s open or acknowledged exceptions on the return with a non-zero gap in currency (counted once)';
COMMENT ON COLUMN recon.money_at_risk_by_return.return_event IS
    'the return''s own event that started exception_key''s clock (exception_details.return_event)';
COMMENT ON COLUMN recon.money_at_risk_by_return.return_event_at IS 'when that event happened';
COMMENT ON COLUMN recon.money_at_risk_by_return.age_days IS 'whole days since return_event_at';

COMMENT ON VIEW recon.money_at_risk IS
    'View, grain: one row per owner and currency: the money at risk of the owner''s open or acknowledged exceptions, '
    'each return counted once with its largest gap credited - refunded (money_at_risk_by_return, from '
    'exception_details.money_at_risk). Never summed across currencies; a gap between two currencies has no number '
    'and is not counted. The exception mails show these totals per currency. See docs/reconciliation.md.';
COMMENT ON COLUMN recon.money_at_risk.owner IS 'the exceptions'' owner: finance, operations, data or customer service';
COMMENT ON COLUMN recon.money_at_risk.currency IS 'the currency of every amount of the row';
COMMENT ON COLUMN recon.money_at_risk.returns IS 'returns with a non-zero gap in currency, each counted once';
COMMENT ON COLUMN recon.money_at_risk.open_exceptions IS
    'the owner''s open or acknowledged exceptions with a non-zero gap in currency on those returns';
COMMENT ON COLUMN recon.money_at_risk.under_credited IS
    'refunded more than credited: the sum of -gap over the returns whose gap is negative (>= 0)';
COMMENT ON COLUMN recon.money_at_risk.over_credited IS
    'credited more than refunded: the sum of gap over the returns whose gap is positive (>= 0)';
COMMENT ON COLUMN recon.money_at_risk.credited_minus_refunded IS
    'the net gap: the sum of the returns'' gaps (over_credited - under_credited)';
COMMENT ON COLUMN recon.money_at_risk.money_at_risk IS
    'the sum of the returns'' absolute gaps (under_credited + over_credited)';
