-- Data quality, master_data_mismatches: the location map with what is wrong with each row's targets (problem).
-- parameters:
SELECT * FROM staging.int_location_map__checked
