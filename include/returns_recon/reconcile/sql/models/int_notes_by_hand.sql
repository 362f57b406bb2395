-- Credit notes made by hand (AUTHORISED, without our memo) on the sale of a refunded return, each with the
-- refunded returns of its sale it matches (operating-model.md §1): the same SKUs with the same quantities (summed
-- per SKU) as the return's refunded items, the refunded total (±tolerance) and the same currency. Attributed to
-- the return when exactly one matches; otherwise unattributed (return_id NULL), raised as unattributed_credit_note
-- on every refunded return of the sale. Few rows: only sales with such a note.
-- parameters: tolerance
WITH notes AS (
    SELECT c.task_id, c.sale_id, c.credit_note_number, c.total, c.currency, c.credit_note_date
    FROM staging.stg_cin7__credit_notes AS c
    WHERE staging.return_of_memo(c.memo) IS NULL AND c.status = 'AUTHORISED'
),

refunded AS (
    -- the refunded returns of those notes' sales
    SELECT r.return_id, r.sale_id, r.is_instant, r.refunded, r.refund_currency
    FROM int_returns AS r
    WHERE r.refunded > 0 AND r.sale_id IN (SELECT notes.sale_id FROM notes)
),

note_sig AS (
    SELECT l.task_id, string_agg(l.sku || '*' || trim_scale(l.quantity)::text, ',' ORDER BY l.sku) AS sig
    FROM (
        SELECT l.task_id, l.sku, sum(l.quantity) AS quantity
        FROM staging.stg_cin7__credit_note_lines AS l
        INNER JOIN notes AS n USING (task_id)
        WHERE n.sale_id IN (SELECT refunded.sale_id FROM refunded)
        GROUP BY l.task_id, l.sku
    ) AS l
    GROUP BY l.task_id
),

return_sig AS (
    -- the refunded items: accepted ones, or all of an instant return; exchanged items are not refunded
    SELECT i.return_id, string_agg(i.sku || '*' || trim_scale(i.quantity)::text, ',' ORDER BY i.sku) AS sig
    FROM (
        SELECT i.return_id, i.sku, sum(i.quantity)::numeric AS quantity
        FROM staging.stg_reveni__return_items AS i
        INNER JOIN refunded AS r USING (return_id)
        WHERE i.exchange_sku IS NULL AND (r.is_instant OR i.validation_status = 'accepted')
        GROUP BY i.return_id, i.sku
    ) AS i
    GROUP BY i.return_id
),

candidates AS (
    -- each note against each refunded return of its sale
    SELECT
        n.task_id,
        r.return_id,
        (
            g.sig = w.sig AND abs(n.total - r.refunded) <= %(tolerance)s AND n.currency = r.refund_currency
        ) AS matches
    FROM notes AS n
    INNER JOIN refunded AS r USING (sale_id)
    LEFT JOIN note_sig AS g USING (task_id)
    LEFT JOIN return_sig AS w ON r.return_id = w.return_id
)

SELECT
    n.task_id, n.sale_id, n.credit_note_number, n.total, n.currency, n.credit_note_date,
    CASE WHEN m.returns_matched = 1 THEN m.matched[1] END AS return_id,
    m.returns_matched, m.matched AS matched_returns, m.sale_returns
FROM notes AS n
INNER JOIN (
    SELECT
        task_id,
        count(*) FILTER (WHERE matches) AS returns_matched,
        coalesce(array_agg(return_id ORDER BY return_id) FILTER (WHERE matches), ARRAY[]::text[]) AS matched,
        array_agg(return_id ORDER BY return_id) AS sale_returns
    FROM candidates
    GROUP BY task_id
) AS m USING (task_id)
