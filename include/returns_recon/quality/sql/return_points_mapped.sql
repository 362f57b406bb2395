-- Data quality, master_data_mismatches: each return with its return point's row in the location map (NULL if none).
-- parameters:
SELECT r.return_id, r.return_point_id, m.return_point_id AS mapped_return_point
FROM staging.stg_reveni__returns AS r
LEFT JOIN staging.dim_location_map AS m USING (return_point_id)
