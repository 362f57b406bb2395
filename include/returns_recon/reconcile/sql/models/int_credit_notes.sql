-- Credit notes attributed to a return: by our memo, or made by hand and matched (int_notes_by_hand).
-- parameters:
WITH attributed AS (
    SELECT task_id, staging.return_of_memo(memo) AS return_id, 'memo'::text AS matched_by
    FROM staging.stg_cin7__credit_notes
    WHERE staging.return_of_memo(memo) IS NOT NULL
    UNION ALL
    SELECT task_id, return_id, 'sale_sku_quantity_amount'
    FROM int_notes_by_hand
    WHERE return_id IS NOT NULL
)

SELECT
    c.task_id, a.return_id, a.matched_by, c.sale_id, c.credit_note_number, c.status,
    -- the restock state is the note's saleCreditNoteList row's (apib L20649), not a field of the note
    cl.restock_status, c.total, c.tax, c.total_before_tax, c.currency, c.credit_note_date
FROM attributed AS a
INNER JOIN staging.stg_cin7__credit_notes AS c USING (task_id)
LEFT JOIN staging.stg_cin7__credit_note_list AS cl
    ON c.sale_id = cl.sale_id AND coalesce(c.credit_note_number, '') = cl.credit_note_number
