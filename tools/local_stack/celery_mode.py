"""`make up EXECUTOR=celery`: `make up`'s Airflow on the CeleryExecutor, scaled out on this machine
(docs/executors.md). Besides the API server, scheduler, DAG processor and triggerer:

- the broker: a redis-server of its own (Debian's package, `make redis`; never the system service) on
  127.0.0.1:``RECON_REDIS_PORT``, its password generated once into the local folder (mode 600), nothing saved
  to disk, its pid and log in the run folder;
- Airflow's metadata database: ``airflow_meta`` on the embedded warehouse's server (its own database and login
  role, the password generated like the broker's) instead of the SQLite file of the LocalExecutor; Celery's
  result backend is the same database;
- two Celery workers, ``worker1@<host>`` and ``worker2@<host>``, two task slots each. Each has its own loopback
  address (Linux answers the whole of 127.0.0.0/8): a task reports it as its hostname (the task instance's
  ``hostname``: 127.0.0.2 ran on worker1, 127.0.0.3 on worker2), and the worker's own log server listens
  there on ``[logging] worker_log_server_port``. The API server fetches a running task's log from
  ``http://<hostname>:<that port>``, one port for every worker, as on a deployment with a worker per machine.

A variable already set (``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN``, ``AIRFLOW__CELERY__BROKER_URL``,
``AIRFLOW__CELERY__RESULT_BACKEND``, in .env or the shell) wins over what is set up here."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import sys
import time
from pathlib import Path
from urllib.parse import quote

from local_stack.settings import embedded_enabled, local_dir, run_dir, warehouse_conn
from local_stack.stack import BIN, embedded_warehouse, log_file, start_background

EXECUTOR = "CeleryExecutor"
WORKERS = ("worker1", "worker2")
CONCURRENCY = 2
META = "airflow_meta"  # the metadata database and its login role
DEFAULT_REDIS_PORT = "16379"
REDIS = "redis"  # the name of the broker's pid and log files


def redis_port(env: dict[str, str]) -> int:
    return int(env.get("RECON_REDIS_PORT") or DEFAULT_REDIS_PORT)


def worker_address(index: int) -> str:
    """The loopback address of worker ``index`` (0-based): 127.0.0.2, 127.0.0.3, ..."""
    return f"127.0.0.{index + 2}"


def log_server_name(worker: str) -> str:
    return f"airflow-{worker}-log-server"


def worker_name(worker: str) -> str:
    return f"airflow-celery-{worker}"


def process_names() -> tuple[str, ...]:
    """The pid-file names of the processes started here, in the order they start."""
    return (REDIS, *(name for w in WORKERS for name in (log_server_name(w), worker_name(w))))


def secrets_file(env: dict[str, str]) -> Path:
    return local_dir(env) / "celery-secrets.json"


def passwords(env: dict[str, str]) -> dict[str, str]:
    """The broker's and the metadata role's passwords, generated on first use into a file of mode 600."""
    path = secrets_file(env)
    known = json.loads(path.read_text() or "{}") if path.exists() else {}
    missing = [key for key in (REDIS, META) if not known.get(key)]
    if missing:
        known.update({key: secrets.token_urlsafe(24) for key in missing})
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(json.dumps(known) + "\n")
    os.chmod(path, 0o600)
    return known


def configure(env: dict[str, str]) -> str:
    """Put ``env`` on the CeleryExecutor: the executor, the metadata database (created on the embedded
    warehouse's server unless one is set), the broker and the result backend. Before ``airflow db migrate``.
    Returns where the metadata database is, for people."""
    secret = passwords(env)
    env["AIRFLOW__CORE__EXECUTOR"] = EXECUTOR
    where = "yours (AIRFLOW__DATABASE__SQL_ALCHEMY_CONN)"
    if not env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"):
        if not embedded_enabled(env):
            raise SystemExit(
                "the CeleryExecutor wants a metadata database every component reaches: set "
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN (e.g. postgresql+psycopg://user:password@host/db) in .env, "
                "or use the embedded warehouse (RECON_EMBEDDED_WAREHOUSE=true), whose server then holds it"
            )
        conn = warehouse_conn(env)
        embedded_warehouse(env, conn).ensure_database(META, secret[META], META, create_role=False)
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = (
            f"postgresql+psycopg://{META}:{quote(secret[META], safe='')}@{conn.host or '127.0.0.1'}:"
            f"{conn.port or 5432}/{META}"
        )
        where = f"{META} on the warehouse's server"
    env.setdefault("AIRFLOW__CELERY__RESULT_BACKEND", "db+" + env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    env.setdefault(
        "AIRFLOW__CELERY__BROKER_URL", f"redis://:{quote(secret[REDIS], safe='')}@127.0.0.1:{redis_port(env)}/0"
    )
    return where


def _bindable(address: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address, port))
        except OSError:
            return False
    return True


def check_ports(env: dict[str, str], log_server_port: int) -> None:
    """Fail at once, naming the variable to change, when a port the Celery side listens on is taken."""
    if not _bindable("127.0.0.1", redis_port(env)):
        raise SystemExit(
            f"port {redis_port(env)} on 127.0.0.1 is taken (by something else): set RECON_REDIS_PORT to a free "
            "port in .env or your shell"
        )
    for index, worker in enumerate(WORKERS):
        if not _bindable(worker_address(index), log_server_port):
            raise SystemExit(
                f"port {log_server_port} on {worker_address(index)} (the log server of {worker}) is taken: set "
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT to a port free on 127.0.0.1 to 127.0.0.3"
            )


def redis_server() -> str:
    found = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if os.access("/usr/bin/redis-server", os.X_OK) else ""
    )
    if not found:
        raise SystemExit("redis-server is missing (the Celery broker): run `make redis` (Debian's redis-server)")
    return found


def start_redis(env: dict[str, str]) -> None:
    """Our own redis-server: loopback only, a password, no persistence; its configuration (it holds the
    password, so it is not on the command line) in the run folder, mode 600."""
    folder = run_dir(env)
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "redis.conf"
    lines = [
        "bind 127.0.0.1",
        f"port {redis_port(env)}",
        "protected-mode yes",
        f"requirepass {passwords(env)[REDIS]}",
        'save ""',
        "appendonly no",
        f'dir "{folder}"',
        "daemonize no",
        'logfile ""',  # standard output: the log file of start_background
    ]
    fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    os.chmod(config, 0o600)
    start_background(REDIS, [redis_server(), str(config)], env)


def redis_ping(env: dict[str, str]) -> bool:
    """Whether our redis-server answers an authenticated PING."""
    try:
        with socket.create_connection(("127.0.0.1", redis_port(env)), timeout=2) as sock:
            password = passwords(env)[REDIS].encode()
            sock.sendall(b"*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n*1\r\n$4\r\nPING\r\n" % (len(password), password))
            answer = b""
            while answer.count(b"\r\n") < 2:
                chunk = sock.recv(256)
                if not chunk:
                    break
                answer += chunk
    except OSError:
        return False
    return answer.startswith(b"+OK\r\n+PONG")


def wait_for_redis(env: dict[str, str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if redis_ping(env):
            return
        time.sleep(0.2)
    tail = log_file(env, REDIS).read_text(errors="replace")[-2000:] if log_file(env, REDIS).exists() else ""
    raise SystemExit(f"redis-server did not answer on 127.0.0.1:{redis_port(env)} within {timeout:.0f} s:\n{tail}")


def worker_commands(env: dict[str, str], log_server_port: int) -> dict[str, tuple[list[str], dict[str, str]]]:
    """(argv, environment) of each worker and of its log server, by pid-file name, in start order."""
    airflow = str(BIN / "airflow")
    started: dict[str, tuple[list[str], dict[str, str]]] = {}
    for index, worker in enumerate(WORKERS):
        address = worker_address(index)
        own = {**env, "AIRFLOW__CORE__HOSTNAME_CALLABLE": "local_stack.env.worker_hostname"}
        own["RECON_WORKER_ADDRESS"] = address
        log_server = [sys.executable, "-m", "local_stack.log_server", "--host", address, "--port", str(log_server_port)]
        started[log_server_name(worker)] = (log_server, own)
        # --skip-serve-logs: the worker's own log server would listen on every interface; ours is on its address
        cmd = [airflow, "celery", "worker", "--concurrency", str(CONCURRENCY), "--celery-hostname", f"{worker}@%h"]
        started[worker_name(worker)] = ([*cmd, "--skip-serve-logs"], own)
    return started


def workers_ready(env: dict[str, str], offsets: dict[str, int]) -> list[str]:
    """The workers whose log says, since ``offsets`` (its size when it started), that Celery is ready."""
    ready = []
    for worker in WORKERS:
        path = log_file(env, worker_name(worker))
        if not path.exists():
            continue
        with path.open("rb") as log:
            log.seek(offsets.get(worker, 0))
            if b" ready." in log.read():
                ready.append(worker)
    return ready
