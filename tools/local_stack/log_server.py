"""``python -m local_stack.log_server --port P [--host H]``: Airflow's task log server on 127.0.0.1 only
(``--host``: another loopback address, a Celery worker's own, local_stack.celery_mode).

``airflow scheduler`` and ``airflow triggerer`` start the same app on every interface (``[::]``); `make up`
runs them with ``--skip-serve-logs`` and starts this instead, one per port
(``AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT``, ``AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT``)."""

from __future__ import annotations

import argparse

import uvicorn


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m local_stack.log_server", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    if not args.host.startswith("127."):
        parser.error("--host must be a loopback address (127.x.x.x)")
    from airflow.configuration import conf

    print(f"Airflow log server on {args.host}:{args.port}", flush=True)
    uvicorn.run(
        "airflow.utils.serve_logs.log_server:get_app",
        factory=True,
        host=args.host,
        port=args.port,
        log_level=conf.get("logging", "uvicorn_logging_level", fallback="info").lower(),
        access_log=False,
    )


if __name__ == "__main__":
    main()
