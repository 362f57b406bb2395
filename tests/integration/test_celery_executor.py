"""`make up EXECUTOR=celery` (issue 22 item 4): Airflow on the CeleryExecutor with its own Redis broker and two
Celery workers, every port moved. The go-live check and then the merchant's hourly run succeed through it; the REST
API shows the tasks ran on the workers (a task instance's hostname is its worker's address, both workers are
used) and serves their logs, and each worker's own log server serves them too; the broker listens on loopback
only, wants its password and saves nothing; Airflow's metadata is in Postgres (airflow_meta on the warehouse's
server); no password in a log; `make stop` leaves nothing running."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from configparser import ConfigParser
from pathlib import Path

import psutil
import psycopg
import pytest
import requests
from dotenv import dotenv_values

from local_stack import celery_mode
from local_stack.simulators import free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
STACK = [sys.executable, "-m", "local_stack"]
GOLIVE, HOURLY = "returns_recon_golive_check", "returns_recon_hourly"
PORT_VARIABLES = (
    "AIRFLOW__API__PORT",
    "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT",
    "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT",
    "RECON_WAREHOUSE_PORT",
    "SIM_REVENI_PORT",
    "SIM_CIN7_PORT",
    "SIM_SITOO_PORT",
    "SIM_SMTP_PORT",
    "RECON_REDIS_PORT",
)
WORKER_ADDRESSES = {celery_mode.worker_address(i): worker for i, worker in enumerate(celery_mode.WORKERS)}


def _wait(what: str, check, timeout: float, every: float = 2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(every)
    raise AssertionError(f"{what}: not within {timeout:.0f} s")


def _listening(address: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex((address, port)) == 0


def _redis(port: int, *commands: bytes) -> bytes:
    """What redis answers to ``commands`` (RESP arrays), read until the connection goes quiet."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        for command in commands:
            parts = command.split(b" ")
            sock.sendall(b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts))
        sock.settimeout(1)
        answer = b""
        try:
            while chunk := sock.recv(4096):
                answer += chunk
        except TimeoutError:
            pass
    return answer


@pytest.fixture
def celery_stack(tmp_path: Path) -> Iterator[tuple[dict[str, str], Path]]:
    """A user's environment with every port moved, on the CeleryExecutor's defaults (nothing of this test
    session's Airflow settings); stopped afterwards, and checked that nothing is left."""
    if not shutil.which("redis-server") and not Path("/usr/bin/redis-server").exists():
        pytest.fail("redis-server is missing: `make redis` installs Debian's (make test runs it)")
    example = dotenv_values(ROOT / ".env.example", interpolate=False)
    dropped = ("AIRFLOW__CORE__EXEC", "AIRFLOW__DATABASE__", "AIRFLOW__CELERY__", "RECON_WORKER_ADDRESS")
    env = {k: v for k, v in os.environ.items() if k not in example and not k.startswith(dropped)}
    ports = {variable: str(free_port()) for variable in PORT_VARIABLES}
    # not under pytest's basetemp (mode 700): as root, the embedded PostgreSQL runs as another user
    local = Path(tempfile.mkdtemp(prefix="recon-test-celery-"))
    local.chmod(0o755)
    env.update(ports)
    env.update(
        {
            "AIRFLOW_HOME": str(tmp_path / "airflow"),
            "RECON_LOCAL_DIR": str(local),
            "RECON_DATA_DOCS_DIR": str(tmp_path / "docs"),
            "DEMO_RETURNS": "40",
            "RECON_TASK_RETRIES": "0",  # a broken task fails the run at once
        }
    )
    processes: list[psutil.Process] = []
    running: set[str] = set()
    try:
        yield env, local
    finally:
        groups = {path.stem: int(path.read_text().split()[0]) for path in (local / "run").glob("*.pid")}
        processes = [p for p in psutil.process_iter() if _pgid(p) in groups.values()]
        running = {name for name, pid in groups.items() if psutil.pid_exists(pid)}
        stop = subprocess.run([*STACK, "stop"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
        shutil.rmtree(local, ignore_errors=True)
    assert stop.returncode == 0, stop.stdout + stop.stderr
    stopped = stop.stdout
    for name in set(celery_mode.process_names()) & running:
        assert name in stopped, (name, stopped)
    left = [p for p in processes if _alive(p)]
    assert not left, [" ".join(p.cmdline()[:4]) for p in left]
    for variable in PORT_VARIABLES:
        assert not _listening("127.0.0.1", int(ports[variable])), f"{variable} still listened on after make stop"
    for address in WORKER_ADDRESSES:
        assert not _listening(address, int(ports["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"])), address


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _pgid(process: psutil.Process) -> int | None:
    try:
        return os.getpgid(process.pid)
    except OSError:
        return None


def _trigger_and_wait(api: requests.Session, base: str, dag_id: str, timeout: float = 240) -> dict:
    assert api.patch(f"{base}/dags/{dag_id}", json={"is_paused": False}, timeout=30).status_code == 200
    run = api.post(f"{base}/dags/{dag_id}/dagRuns", json={"logical_date": None}, timeout=30)
    assert run.status_code == 200, run.text
    url = f"{base}/dags/{dag_id}/dagRuns/{run.json()['dag_run_id']}"
    return _wait(
        f"{dag_id} run to end",
        lambda: (r := api.get(url, timeout=30).json())["state"] in ("success", "failed") and r,
        timeout,
    )


def _task_instances(api: requests.Session, base: str, run: dict) -> list[dict]:
    url = f"{base}/dags/{run['dag_id']}/dagRuns/{run['dag_run_id']}/taskInstances"
    return api.get(url, params={"limit": 100}, timeout=30).json()["task_instances"]


def _task_log(api: requests.Session, base: str, ti: dict) -> str:
    url = f"{base}/dags/{ti['dag_id']}/dagRuns/{ti['dag_run_id']}/taskInstances/{ti['task_id']}/logs/{ti['try_number']}"
    response = api.get(url, params={"map_index": ti["map_index"]}, timeout=30)
    assert response.status_code == 200, response.text
    return "\n".join(str(line.get("event")) for line in response.json()["content"])


def _served_log(env: dict[str, str], address: str, relative: str) -> requests.Response:
    """The log file at ``relative`` as the API server fetches a running task's log from the worker at
    ``address``: from its log server, with a token signed by the stack's [api] secret_key."""
    from airflow.api_fastapi.auth.tokens import JWTGenerator

    config = ConfigParser(interpolation=None)
    config.read(Path(env["AIRFLOW_HOME"]) / "airflow.cfg")
    token = JWTGenerator(
        secret_key=config["api"]["secret_key"],
        algorithm="HS512",
        private_key=None,  # type: ignore[arg-type]
        issuer=None,
        valid_for=30,
        audience="task-instance-logs",
    ).generate({"filename": relative})
    port = env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"]
    return requests.get(f"http://{address}:{port}/log/{relative}", headers={"Authorization": token}, timeout=30)


def test_up_with_the_celery_executor_runs_the_hourly_run_on_two_workers(celery_stack) -> None:
    env, local = celery_stack
    up = subprocess.run(
        [*STACK, "up", "--executor", "celery"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
    assert "CeleryExecutor: broker redis on 127.0.0.1:" + env["RECON_REDIS_PORT"] in up.stdout
    base_url = f"http://127.0.0.1:{env['AIRFLOW__API__PORT']}"
    base = f"{base_url}/api/v2"
    run_dir = local / "run"

    # the broker: ours, on loopback only, wanting its password (kept in a file of mode 600), saving nothing
    redis_port = int(env["RECON_REDIS_PORT"])
    listeners = {
        c.laddr.ip for c in psutil.net_connections("inet") if c.status == "LISTEN" and c.laddr.port == redis_port
    }
    assert listeners == {"127.0.0.1"}
    assert _redis(redis_port, b"PING").startswith(b"-NOAUTH"), "the broker answers without its password"
    secrets_file = local / "celery-secrets.json"
    assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((run_dir / "redis.conf").stat().st_mode) == 0o600
    secret = json.loads(secrets_file.read_text())
    answer = _redis(redis_port, b"AUTH " + secret["redis"].encode(), b"CONFIG GET save", b"CONFIG GET appendonly")
    assert answer.startswith(b"+OK\r\n"), answer
    assert b"$4\r\nsave\r\n$0\r\n\r\n" in answer, answer  # no snapshots
    assert b"$10\r\nappendonly\r\n$2\r\nno\r\n" in answer, answer  # no append-only file
    # each worker's log server on the worker's own loopback address
    log_port = int(env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"])
    for address in WORKER_ADDRESSES:
        assert _listening(address, log_port), address

    admin = json.loads((local / "airflow-passwords.json").read_text())["admin"]
    token = requests.post(f"{base_url}/auth/token", json={"username": "admin", "password": admin}, timeout=30)
    assert token.status_code == 201, token.text
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
    _wait(
        "the go-live and hourly DAGs listed",
        lambda: {GOLIVE, HOURLY} <= {d["dag_id"] for d in api.get(f"{base}/dags", timeout=30).json()["dags"]},
        180,
    )
    assert api.get(f"{base}/importErrors", timeout=30).json()["total_entries"] == 0

    # the go-live check (until it passes, postings are held), then the merchant's hourly run, through the workers
    golive = _trigger_and_wait(api, base, GOLIVE)
    assert golive["state"] == "success", golive
    hourly = _trigger_and_wait(api, base, HOURLY)
    assert hourly["state"] == "success", hourly
    instances = _task_instances(api, base, golive) + _task_instances(api, base, hourly)
    assert len(instances) > 5
    assert {ti["state"] for ti in instances} == {"success"}
    hostnames = {ti["hostname"] for ti in instances}
    assert hostnames == set(WORKER_ADDRESSES), hostnames  # every task on a worker, and both workers used
    # and Celery says the same: each worker's log has a task succeeded for each task instance of its address (and
    # more: unpaused, the DAGs also get their scheduled runs)
    for address, worker in WORKER_ADDRESSES.items():
        worker_log = (run_dir / f"{celery_mode.worker_name(worker)}.log").read_text(errors="replace")
        assert f"{worker}@" in worker_log
        succeeded = re.findall(r"Task execute_workload\[[0-9a-f-]+\] succeeded", worker_log)
        assert len(succeeded) >= sum(ti["hostname"] == address for ti in instances) > 0, worker

    # the task logs through the REST API (what the UI shows), and from each worker's own log server
    check = next(ti for ti in instances if ti["dag_id"] == HOURLY and ti["task_id"] == "preflight.check_connections")
    assert "connections are present and well formed" in _task_log(api, base, check)
    for ti in instances:
        assert "::group::" in _task_log(api, base, ti), ti["task_id"]
    logs = Path(env["AIRFLOW_HOME"]) / "logs"
    for address, worker in WORKER_ADDRESSES.items():
        ran = next(ti for ti in instances if ti["hostname"] == address)
        (path,) = (logs / f"dag_id={ran['dag_id']}" / f"run_id={ran['dag_run_id']}" / f"task_id={ran['task_id']}").glob(
            "attempt=1.log"
        )
        served = _served_log(env, address, path.relative_to(logs).as_posix())
        assert served.status_code == 200, (worker, served.status_code, served.text[:300])
        assert ran["task_id"] in served.text

    # Airflow's metadata lives in Postgres: airflow_meta on the warehouse's server, its own login
    meta = (
        f"host=127.0.0.1 port={env['RECON_WAREHOUSE_PORT']} dbname=airflow_meta user=airflow_meta "
        f"password={secret['airflow_meta']}"
    )
    with psycopg.connect(meta, connect_timeout=10) as db:
        runs = db.execute("SELECT state FROM dag_run WHERE run_id = %s", (hourly["dag_run_id"],)).fetchall()
        assert runs == [("success",)]
        creates_roles = db.execute("SELECT rolcreaterole FROM pg_roles WHERE rolname = 'airflow_meta'").fetchone()
        assert creates_roles == (False,)

    # no password of the broker or of the metadata database in any log
    written = [*run_dir.glob("*.log"), *logs.rglob("*.log")]
    assert written
    for password in (secret["redis"], secret["airflow_meta"]):
        assert [path for path in written if password in path.read_text(errors="replace")] == []
