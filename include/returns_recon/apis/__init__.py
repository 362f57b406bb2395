"""Clients for the Reveni, Cin7 Core and Sitoo APIs: Airflow hooks on top of HttpHook, a
request loop with rate limiting and retries, and streaming pagers."""
