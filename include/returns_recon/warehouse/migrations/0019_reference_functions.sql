-- The references the pipeline writes on the documents it creates, and the sale field a return's order is matched
-- on, as functions: the reconciliation's SQL (reconcile/sql) reads them here instead of restating the format
-- with magic offsets. All inlined by the planner (plain SQL, immutable), so they cost what the expressions did.
--   a credit note's memo                          reveni:<return>
--   a stock transfer's or Sitoo transaction's     reveni:<return>:<item>  (a transfer's may carry a suffix
--   reference                                                              after a space)
--   an exchange order's external id               reveni-exchange:<return>

CREATE FUNCTION staging.credit_note_memo(return_id text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT 'reveni:' || return_id
$$;

-- the return of a credit note's memo; NULL for a memo that is not ours (a note made by hand)
CREATE FUNCTION staging.return_of_memo(memo text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN memo LIKE 'reveni:%' THEN substr(memo, length('reveni:') + 1) END
$$;

CREATE FUNCTION staging.item_reference(return_id text, item_id text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT 'reveni:' || return_id || ':' || item_id
$$;

-- the return and the item of an item reference (a transfer's without its suffix); NULL when not ours
CREATE FUNCTION staging.return_of_item_reference(reference text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN reference LIKE 'reveni:%' THEN split_part(reference, ':', 2) END
$$;

CREATE FUNCTION staging.item_of_item_reference(reference text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN reference LIKE 'reveni:%'
                THEN substr(reference, length('reveni:' || split_part(reference, ':', 2) || ':') + 1) END
$$;

-- the return of an exchange order's external id; NULL for any other sale
CREATE FUNCTION staging.return_of_exchange_reference(external_id text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN external_id LIKE 'reveni-exchange:%' THEN substr(external_id, length('reveni-exchange:') + 1) END
$$;

-- the value of a sale that a return's order_external_id is matched on (RECON_SALE_MATCH_FIELD)
CREATE FUNCTION staging.sale_match_value(sale staging.stg_cin7__sales, match_field text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE match_field
        WHEN 'CustomerReference' THEN sale.customer_reference
        WHEN 'ExternalID' THEN sale.external_id
        WHEN 'OrderNumber' THEN sale.order_number
    END
$$;

-- the tax rate of a sale line: the simplest one (2, 3, else 4 decimals) that gives the line's tax from its total.
-- The line's tax is rounded to the cent, so tax / total alone is off in the 4th decimal (10.97 / 52.22 = 0.2101 for
-- 21%), and that rate applied to part of the line's quantity gives a cent per line that the invoice never charged
-- (operating-model.md §2: "lines and tax taken from the original sale's invoice lines"). The reconciliation's
-- expected tax and the credit notes the postings create both use it.
CREATE FUNCTION staging.line_tax_rate(tax numeric, total numeric) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN round(total * round(tax / nullif(total, 0), 2), 2) = tax THEN round(tax / nullif(total, 0), 2)
                WHEN round(total * round(tax / nullif(total, 0), 3), 2) = tax THEN round(tax / nullif(total, 0), 3)
                ELSE round(tax / nullif(total, 0), 4) END
$$;
