-- Data quality, master_data_mismatches: each item of a return at a (validly mapped) store with the Sitoo product of
-- its SKU (NULL when unknown).
-- parameters:
SELECT i.item_id, i.return_id, i.sku, p.product_id AS sitoo_product_id
FROM staging.stg_reveni__return_items AS i
INNER JOIN staging.stg_reveni__returns AS r USING (return_id)
INNER JOIN staging.int_location_map__checked AS m
    ON r.return_point_id = m.return_point_id AND m.kind = 'store' AND m.problem IS NULL
LEFT JOIN LATERAL (
    SELECT p.product_id FROM staging.stg_sitoo__products AS p
    WHERE p.sku = i.sku
    ORDER BY p.product_id
    LIMIT 1
) AS p ON TRUE
