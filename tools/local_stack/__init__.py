"""Local tooling: the embedded warehouse, the demo, ``make up`` and ``make stop``.

Developer and demo tooling only: the pipeline (``returns_recon``) never imports it, and a
deployment on an existing Airflow does not need it.
"""
