-- The tax each AUTHORISED credit note should carry: each line's quantity at the original invoice line's price and
-- tax rate (staging.line_tax_rate), tax rounded per line as on the invoice.
-- parameters:
SELECT m.task_id, sum(round(round(m.quantity * m.price, 2) * m.rate, 2)) AS expected_tax
FROM (
    -- each credit note line against the first invoice line of its SKU on the sale
    SELECT DISTINCT ON (l.task_id, l.line_no)
        l.task_id, l.quantity, s.price, staging.line_tax_rate(s.tax, s.total) AS rate
    FROM int_credit_notes AS c
    INNER JOIN staging.stg_cin7__credit_note_lines AS l USING (task_id)
    INNER JOIN staging.stg_cin7__sale_lines AS s ON c.sale_id = s.sale_id AND l.sku = s.sku AND s.document <> 'order'
    WHERE c.status = 'AUTHORISED'
    ORDER BY l.task_id, l.line_no, s.document, s.line_no
) AS m
GROUP BY m.task_id
