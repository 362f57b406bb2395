"""The webhook receiver (issue 20): Reveni's and Cin7 Core's webhooks, verified, into ``raw.webhook_inbox``.

``verify`` (is a delivery authentic: pure functions), ``inbox`` (the SQL, the event ids, the minimised payload),
``app`` (the FastAPI app, served by Airflow's API server through ``plugins/returns_recon_webhooks.py`` or alone by
``python -m returns_recon.webhooks``). What to expose and how to register the URLs: docs/webhooks.md.
Importing this package imports nothing else.
"""
