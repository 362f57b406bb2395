-- The stock movements that name an item (staging.item_reference): completed Cin7 Core stock transfers (a transfer's
-- reference may carry a suffix after a space) and Sitoo warehouse transactions, by item.
-- parameters:
SELECT
    staging.return_of_item_reference(m.reference) AS return_id,
    staging.item_of_item_reference(m.reference) AS item_id,
    count(*) FILTER (WHERE m.leg = 'transfer' AND m.to_location = r.sellable) AS into_sellable,
    count(*) FILTER (WHERE m.leg = 'transfer' AND m.from_location = r.sellable) AS out_of_sellable,
    min(m.at) FILTER (WHERE m.leg = 'transfer' AND m.to_location = r.sellable) AS first_release_at,
    count(*) FILTER (WHERE m.leg = 'sitoo') AS sitoo_transactions,
    bool_or(m.warehouse_id = r.sitoo_warehouse_id) FILTER (WHERE m.leg = 'sitoo') AS sitoo_at_mapped,
    bool_or(m.warehouse_id IS DISTINCT FROM r.sitoo_warehouse_id) FILTER (WHERE m.leg = 'sitoo') AS sitoo_elsewhere,
    min(m.at) FILTER (WHERE m.leg = 'sitoo' AND m.warehouse_id = r.sitoo_warehouse_id) AS sitoo_first_at
FROM (
    SELECT
        'transfer' AS leg,
        split_part(reference, ' ', 1) AS reference,
        to_location,
        from_location,
        completion_date AS at,
        NULL::integer AS warehouse_id
    FROM staging.stg_cin7__stock_transfers
    WHERE status = 'COMPLETED' AND staging.return_of_item_reference(reference) IS NOT NULL
    UNION ALL
    SELECT 'sitoo', external_id, NULL, NULL, date_created, warehouse_id
    FROM staging.stg_sitoo__warehouse_transactions
    WHERE staging.return_of_item_reference(external_id) IS NOT NULL
) AS m
INNER JOIN int_returns AS r ON staging.return_of_item_reference(m.reference) = r.return_id
GROUP BY m.reference
