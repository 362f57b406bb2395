-- The restocks of the items, by return and SKU: the lines of the AUTHORISED restocks riding on the return's credit
-- notes, by where they put the stock. Aggregated on its own so that int_items joins it in one parallel pass.
-- parameters:
SELECT
    c.return_id,
    l.sku,
    sum(l.quantity) FILTER (WHERE l.restock_location = r.holding) AS to_holding,
    sum(l.quantity) FILTER (WHERE l.restock_location = r.sellable) AS to_sellable,
    sum(l.quantity) FILTER (WHERE l.restock_location NOT IN (r.holding, r.sellable)) AS elsewhere
FROM int_credit_notes AS c
INNER JOIN staging.stg_cin7__restocks AS l ON c.task_id = l.task_id AND c.restock_status = 'AUTHORISED'
INNER JOIN int_returns AS r ON c.return_id = r.return_id
GROUP BY c.return_id, l.sku
