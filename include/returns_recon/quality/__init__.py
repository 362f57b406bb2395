"""Data quality with Great Expectations 1.x: master-data mismatch suites, structural suites per
staging table, and a suite for the location map CSV. Checks run in Postgres (SQL datasource);
results go to ``recon.dq_results`` and a Data Docs site."""
