-- Data quality, reveni_structure: whether the latest Reveni return was updated within the freshness window.
-- parameters: freshness_seconds
SELECT max(updated_at) >= now() - make_interval(secs => %(freshness_seconds)s) AS fresh
FROM staging.stg_reveni__returns
