-- The hints of the master-data mismatch rules as functions, so the data-quality view and the
-- reconciliation (which applies the same rules to the returns in its window) share one definition.

CREATE FUNCTION staging.return_point_hint(point_name text) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT format('similar mapped return point %s (%s)', m.return_point_id, m.return_point_name)
    FROM staging.dim_location_map m
    WHERE lower(point_name) LIKE lower(m.return_point_name) || '%'
       OR lower(m.return_point_name) LIKE lower(point_name) || '%'
    ORDER BY m.return_point_id LIMIT 1
$$;

CREATE FUNCTION staging.cin7_sku_hint(item_sku text) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT format('matches Cin7 Core SKU %L only after case folding or trimming', p.sku)
    FROM staging.stg_cin7__products p WHERE upper(btrim(p.sku)) = upper(btrim(item_sku))
    ORDER BY p.sku LIMIT 1
$$;

CREATE FUNCTION staging.sitoo_sku_hint(item_sku text) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT format('matches Sitoo SKU %L only after case folding or trimming', p.sku)
    FROM staging.stg_sitoo__products p WHERE upper(btrim(p.sku)) = upper(btrim(item_sku))
    ORDER BY p.sku LIMIT 1
$$;

CREATE OR REPLACE VIEW staging.int_master_data__mismatches AS
WITH returns AS (
    SELECT r.return_id, r.return_point_id, r.return_point_name, m.kind, m.problem,
           (m.return_point_id IS NOT NULL) AS mapped
    FROM staging.stg_reveni__returns r
    LEFT JOIN staging.int_location_map__checked m USING (return_point_id)
)
SELECT 'unmapped_location'::text AS exception_type, r.return_id, NULL::text AS item_id, NULL::text AS sku,
       r.return_point_id, coalesce(r.problem, staging.return_point_hint(r.return_point_name)) AS hint
FROM returns r
WHERE NOT r.mapped OR r.problem IS NOT NULL
UNION ALL
SELECT 'unknown_sku_cin7', i.return_id, i.item_id, i.sku, NULL, staging.cin7_sku_hint(i.sku)
FROM staging.stg_reveni__return_items i
WHERE NOT EXISTS (SELECT 1 FROM staging.stg_cin7__products p WHERE p.sku = i.sku)
UNION ALL
SELECT 'unknown_sku_sitoo', i.return_id, i.item_id, i.sku, NULL, staging.sitoo_sku_hint(i.sku)
FROM staging.stg_reveni__return_items i
JOIN returns r USING (return_id)
WHERE r.kind = 'store' AND r.problem IS NULL
  AND NOT EXISTS (SELECT 1 FROM staging.stg_sitoo__products p WHERE p.sku = i.sku);
