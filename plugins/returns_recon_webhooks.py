"""Airflow plugin: the returns-recon webhook receiver served by Airflow's API server at ``/returns-recon``
(``POST /returns-recon/webhooks/reveni``, ``POST /returns-recon/webhooks/cin7``; docs/webhooks.md).

Airflow mounts a plugin's FastAPI app as it is (``app.mount``), outside its own authentication: the receiver
authenticates each delivery itself (Reveni's signature, Cin7 Core's token). Airflow's API server enters the app's
lifespan, which closes the receiver's warehouse pool. Importing this file does no I/O: ``create_app`` reads
settings and connections, and opens the pool, at the first request.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from returns_recon.webhooks.app import URL_PREFIX, create_app


class ReturnsReconWebhooks(AirflowPlugin):
    name = "returns_recon_webhooks"
    fastapi_apps = [{"app": create_app(), "url_prefix": URL_PREFIX, "name": "returns-recon webhooks"}]  # noqa: RUF012
