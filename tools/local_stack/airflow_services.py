"""`make up`'s Airflow: the API server, scheduler, DAG processor and triggerer, each a background process
with its own pid and log (what ``airflow standalone`` runs, but on 127.0.0.1 only: standalone's scheduler
and triggerer serve task logs on every interface), the two log servers on 127.0.0.1, and the admin login
(Airflow's simple auth manager, its password generated here once into a file of mode 600). With
``celery=True`` (`make up EXECUTOR=celery`), also a Redis broker and two Celery workers (local_stack.celery_mode)."""

from __future__ import annotations

import json
import os
import secrets
import socket
import sys
import time
import urllib.request
from pathlib import Path

import psutil

from local_stack import celery_mode
from local_stack.settings import api_url, run_dir
from local_stack.stack import BIN, log_file, pid_file, start_background, stop_background

# started in this order, stopped in the reverse order
NAMES = (
    "airflow-log-server",
    "airflow-trigger-log-server",
    "airflow-api-server",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
)
# the ports the Airflow processes listen on, by the variable that moves them
PORT_VARIABLES = {
    "AIRFLOW__API__PORT": "8080",
    "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": "8793",
    "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": "8794",
}


def port(env: dict[str, str], variable: str) -> int:
    return int(env.get(variable) or PORT_VARIABLES[variable])


def commands(env: dict[str, str]) -> dict[str, list[str]]:
    airflow = str(BIN / "airflow")
    log_server = [sys.executable, "-m", "local_stack.log_server", "--port"]
    return {
        "airflow-log-server": [*log_server, str(port(env, "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"))],
        "airflow-trigger-log-server": [*log_server, str(port(env, "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT"))],
        "airflow-api-server": [
            airflow,
            "api-server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port(env, "AIRFLOW__API__PORT")),
        ],
        "airflow-scheduler": [airflow, "scheduler", "--skip-serve-logs"],
        "airflow-dag-processor": [airflow, "dag-processor"],
        "airflow-triggerer": [airflow, "triggerer", "--skip-serve-logs"],
    }


def users(env: dict[str, str]) -> list[tuple[str, str]]:
    """(user, role) of ``AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS``, in its order."""
    spec = env.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "admin:admin")
    return [(u.strip(), r.strip()) for u, _, r in (item.partition(":") for item in spec.split(",")) if u.strip()]


def user_passwords(env: dict[str, str]) -> list[tuple[str, str, str, bool]]:
    """(user, role, password, new) of every simple-auth-manager user, the passwords generated on first use
    into ``AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE`` (mode 600). Airflow reads the file and, as the
    users are in it, never prints or logs a password itself."""
    path = Path(env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"])
    passwords = json.loads(path.read_text() or "{}") if path.exists() else {}
    listed = users(env)
    new = {user for user, _ in listed if user not in passwords}
    if new:
        passwords.update({user: secrets.token_urlsafe(12) for user in sorted(new)})
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(json.dumps(passwords) + "\n")
    os.chmod(path, 0o600)
    return [(user, role, passwords[user], user in new) for user, role in listed]


def admin_password(env: dict[str, str]) -> tuple[str, str, bool]:
    """(user, password, new) of the first user (the admin); every user's password is made on the way."""
    user, _, password, new = user_passwords(env)[0]
    return user, password, new


def port_taken(number: int) -> bool:
    with socket.socket() as sock:
        # as the servers do: a port with connections in TIME_WAIT is free (Linux still refuses a listened one)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", number))
        except OSError:
            return True
    return False


def _alive(name: str, env: dict[str, str]) -> bool:
    try:
        proc = psutil.Process(int(pid_file(env, name).read_text().split()[0]))
        return proc.status() != psutil.STATUS_ZOMBIE
    except (OSError, ValueError, IndexError, psutil.NoSuchProcess):
        return False


def _tail(path: Path, chars: int = 3000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else ""


def stop(env: dict[str, str]) -> list[str]:
    """Stop every Airflow process of ours (and the single ``airflow standalone`` of earlier versions): the
    Celery workers first, the broker last."""
    broker, *workers = celery_mode.process_names()
    order = (*reversed(workers), "airflow", *reversed(NAMES), broker)
    return [name for name in order if stop_background(env, name)]


def start(env: dict[str, str], timeout: float = 240, celery: bool = False) -> None:
    """Start every component and wait until the API server reports all of them healthy (``celery``: and
    the Celery workers ready; ``env`` is set up by ``celery_mode.configure`` already)."""
    stop(env)
    for variable in PORT_VARIABLES:
        if port_taken(port(env, variable)):
            raise SystemExit(
                f"port {port(env, variable)} on 127.0.0.1 is taken (by something else): "
                f"set {variable} to a free port in .env or your shell"
            )
    log_port = port(env, "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT")
    if celery:
        celery_mode.check_ports(env, log_port)
    run_dir(env).mkdir(parents=True, exist_ok=True)
    names = list(NAMES)
    if celery:
        celery_mode.start_redis(env)
        names.append(celery_mode.REDIS)
        celery_mode.wait_for_redis(env)
    for name, cmd in commands(env).items():
        start_background(name, cmd, env)
    offsets: dict[str, int] = {}
    if celery:
        for worker in celery_mode.WORKERS:
            path = log_file(env, celery_mode.worker_name(worker))
            offsets[worker] = path.stat().st_size if path.exists() else 0
        for name, (cmd, own_env) in celery_mode.worker_commands(env, log_port).items():
            start_background(name, cmd, own_env)
            names.append(name)
    health = f"{api_url(env)}/api/v2/monitor/health"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        dead = [name for name in names if not _alive(name, env)]
        if dead:
            raise SystemExit(
                f"{dead[0]} stopped; its log ({log_file(env, dead[0])}) ends:\n{_tail(log_file(env, dead[0]))}"
            )
        try:
            with urllib.request.urlopen(health, timeout=5) as response:  # noqa: S310 - our own loopback URL
                states = json.load(response)
            healthy = all(part.get("status") == "healthy" for part in states.values())
            if healthy and (not celery or len(celery_mode.workers_ready(env, offsets)) == len(celery_mode.WORKERS)):
                return
        except (OSError, ValueError):
            pass
        time.sleep(2)
    if celery and len(ready := celery_mode.workers_ready(env, offsets)) < len(celery_mode.WORKERS):
        late = next(w for w in celery_mode.WORKERS if w not in ready)
        path = log_file(env, celery_mode.worker_name(late))
        raise SystemExit(
            f"the Celery worker {late} was not ready within {timeout:.0f} s (broker: redis on 127.0.0.1:"
            f"{celery_mode.redis_port(env)}); its log ({path}) ends:\n{_tail(path)}"
        )
    raise SystemExit(f"Airflow was not healthy within {timeout:.0f} s; see the logs in {run_dir(env)}")
