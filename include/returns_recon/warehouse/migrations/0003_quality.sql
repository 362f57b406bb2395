-- Master-data checks as views (always current, set-based), and the data-quality results.
CREATE INDEX stg_cin7__products_sku_folded ON staging.stg_cin7__products (upper(btrim(sku)));
CREATE INDEX stg_sitoo__products_sku_folded ON staging.stg_sitoo__products (upper(btrim(sku)));

-- Each mapped return point with what is wrong with its mapping, if anything.
CREATE VIEW staging.int_location_map__checked AS
SELECT m.return_point_id, m.return_point_name, m.kind, m.sitoo_warehouse_id, m.cin7_holding_location,
       m.cin7_sellable_location,
       CASE
           WHEN m.kind = 'store' AND w.warehouse_id IS NULL
               THEN format('mapped Sitoo warehouse %s does not exist', m.sitoo_warehouse_id)
           WHEN m.kind = 'store' AND w.warehouse_type = 20
               THEN format('mapped Sitoo warehouse %s is virtual', m.sitoo_warehouse_id)
           WHEN m.kind = 'warehouse' AND h.location_id IS NULL
               THEN format('mapped Cin7 Core location %L does not exist', m.cin7_holding_location)
           WHEN m.kind = 'warehouse' AND s.location_id IS NULL
               THEN format('mapped Cin7 Core location %L does not exist', m.cin7_sellable_location)
       END AS problem
FROM staging.dim_location_map m
LEFT JOIN staging.stg_sitoo__warehouses w ON w.warehouse_id = m.sitoo_warehouse_id
LEFT JOIN LATERAL (SELECT location_id FROM staging.stg_cin7__locations
                   WHERE name = m.cin7_holding_location AND NOT is_deprecated LIMIT 1) h ON true
LEFT JOIN LATERAL (SELECT location_id FROM staging.stg_cin7__locations
                   WHERE name = m.cin7_sellable_location AND NOT is_deprecated LIMIT 1) s ON true;

-- SKU and location mismatches, one row per (type, return, item), with a hint where a near match exists.
CREATE VIEW staging.int_master_data__mismatches AS
WITH returns AS (
    SELECT r.return_id, r.return_point_id, r.return_point_name, m.kind, m.problem,
           (m.return_point_id IS NOT NULL) AS mapped
    FROM staging.stg_reveni__returns r
    LEFT JOIN staging.int_location_map__checked m USING (return_point_id)
)
SELECT 'unmapped_location'::text AS exception_type, r.return_id, NULL::text AS item_id, NULL::text AS sku,
       r.return_point_id,
       coalesce(r.problem, (
           SELECT format('similar mapped return point %s (%s)', m.return_point_id, m.return_point_name)
           FROM staging.dim_location_map m
           WHERE lower(r.return_point_name) LIKE lower(m.return_point_name) || '%'
              OR lower(m.return_point_name) LIKE lower(r.return_point_name) || '%'
           ORDER BY m.return_point_id LIMIT 1)) AS hint
FROM returns r
WHERE NOT r.mapped OR r.problem IS NOT NULL
UNION ALL
SELECT 'unknown_sku_cin7', i.return_id, i.item_id, i.sku, NULL,
       (SELECT format('matches Cin7 Core SKU %L only after case folding or trimming', p.sku)
        FROM staging.stg_cin7__products p WHERE upper(btrim(p.sku)) = upper(btrim(i.sku))
        ORDER BY p.sku LIMIT 1)
FROM staging.stg_reveni__return_items i
WHERE NOT EXISTS (SELECT 1 FROM staging.stg_cin7__products p WHERE p.sku = i.sku)
UNION ALL
SELECT 'unknown_sku_sitoo', i.return_id, i.item_id, i.sku, NULL,
       (SELECT format('matches Sitoo SKU %L only after case folding or trimming', p.sku)
        FROM staging.stg_sitoo__products p WHERE upper(btrim(p.sku)) = upper(btrim(i.sku))
        ORDER BY p.sku LIMIT 1)
FROM staging.stg_reveni__return_items i
JOIN returns r USING (return_id)
WHERE r.kind = 'store' AND r.problem IS NULL
  AND NOT EXISTS (SELECT 1 FROM staging.stg_sitoo__products p WHERE p.sku = i.sku);

CREATE TABLE recon.dq_results (
    run_id              text        NOT NULL,
    suite               text        NOT NULL,
    expectation         text        NOT NULL,   -- type and arguments, readable
    severity            text        NOT NULL CHECK (severity IN ('critical', 'warning')),
    success             boolean     NOT NULL,
    observed_value      text,
    element_count       bigint,
    unexpected_count    bigint,
    unexpected_sample   jsonb,
    checked_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, suite, expectation)
);
CREATE INDEX dq_results_checked_at ON recon.dq_results (checked_at);
