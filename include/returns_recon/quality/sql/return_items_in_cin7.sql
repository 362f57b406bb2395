-- Data quality, master_data_mismatches: each return item with the Cin7 Core product of its SKU (NULL when unknown).
-- parameters:
SELECT i.item_id, i.return_id, i.sku, p.product_id AS cin7_product_id
FROM staging.stg_reveni__return_items AS i
LEFT JOIN LATERAL (
    SELECT p.product_id FROM staging.stg_cin7__products AS p
    WHERE p.sku = i.sku
    ORDER BY p.product_id
    LIMIT 1
) AS p ON TRUE
