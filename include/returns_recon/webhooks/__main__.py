"""``python -m returns_recon.webhooks [--host 127.0.0.1] [--port 8090]``: the webhook receiver alone, for a
deployment whose ingress does not reach Airflow's API server. The same app as the plugin's, at the same URLs
(``/returns-recon/webhooks/reveni``, ``/returns-recon/webhooks/cin7``), served by uvicorn.

Connections come from ``AIRFLOW_CONN_*`` environment variables (or a secrets backend configured for Airflow; not
Airflow's metadata database); settings from ``RECON_*``. Like the CLI, ``.env`` and ``.env.example`` of the
current directory fill in what the environment does not set. Put TLS and the public address on your ingress
(docs/webhooks.md); the access log records each request's path and query string, and the receiver takes nothing
from the query string.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

DEFAULT_PORT = 8090


def build_app() -> FastAPI:
    """A root app with the receiver mounted at ``/returns-recon``, entering its lifespan as Airflow's does."""
    from returns_recon.webhooks.app import URL_PREFIX, create_app

    receiver = create_app()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        async with receiver.router.lifespan_context(receiver):
            yield

    root = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    root.mount(URL_PREFIX, receiver)
    return root


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m returns_recon.webhooks", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    parser.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    args = parser.parse_args(argv)

    import uvicorn

    from returns_recon.cli import load_env_files

    load_env_files()
    # Airflow configures logging when first imported (the connections are read through it): now, so that
    # uvicorn's configuration (its access log) comes after it and stays
    import airflow.settings  # noqa: F401

    logging.getLogger("uvicorn.error").propagate = True  # Airflow turns it off; uvicorn's handler is on "uvicorn"
    logging.getLogger("returns_recon").setLevel(args.log_level.upper())
    uvicorn.run(
        build_app(),
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        server_header=False,
        timeout_keep_alive=5,
        limit_concurrency=200,  # beyond it: 503, the senders retry
        h11_max_incomplete_event_size=16 * 1024,  # request line and headers
    )


if __name__ == "__main__":
    main()
