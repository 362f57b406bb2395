"""Airflow plugin: the exception workbench, a "Returns reconciliation" entry in the Airflow UI's navigation
(docs/workbench.md). Its pages are a FastAPI app served by Airflow's API server at ``/returns-recon-workbench``
and shown inside the UI (``/plugin/returns-recon``).

Airflow mounts a plugin's app as it is, outside its own authentication: the app checks every request itself
against Airflow's auth manager (the UI's session token; reading needs read access to the hourly DAG, acting
needs edit access) and guards its forms against CSRF (``returns_recon.workbench.security``). Importing this
file does no I/O.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from returns_recon.workbench.app import URL_PREFIX, create_app

ICON = f"{URL_PREFIX}/static/icon.svg"


class ReturnsReconWorkbench(AirflowPlugin):
    name = "returns_recon_workbench"
    fastapi_apps = [{"app": create_app(), "url_prefix": URL_PREFIX, "name": "returns-recon workbench"}]  # noqa: RUF012
    external_views = [  # noqa: RUF012
        {
            "name": "Returns reconciliation",
            "href": f"{URL_PREFIX}/",
            "destination": "nav",
            "url_route": "returns-recon",
            "icon": ICON,
            "nav_top_level": True,
        }
    ]
