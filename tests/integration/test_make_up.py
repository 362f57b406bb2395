"""`make up` with every port moved: our DAGs load without import errors, a task run reports to the moved
API server and succeeds, everything listens on 127.0.0.1 only, the REST API wants a login (the admin
password printed once, kept in a file of mode 600, in no log), a failed run's alert reaches the SMTP sink,
the demo's `airflow dags test` runs have their task logs in the UI; `make stop` stops it all. And which
world `make up` starts from (item 12)."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from email import policy
from email.parser import BytesParser
from pathlib import Path

import psutil
import pytest
import requests
from dotenv import dotenv_values

from local_stack.simulators import free_port
from recon_simulators.generator import GeneratorConfig, generate

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
EXPECTED_DAGS = {"returns_recon_hourly", "returns_recon_daily", "returns_recon_golive_check", "returns_recon_events"}
GOLIVE = "returns_recon_golive_check"
# every port of the local stack, by the variable that moves it (.env.example)
PORT_VARIABLES = (
    "AIRFLOW__API__PORT",
    "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT",
    "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT",
    "RECON_WAREHOUSE_PORT",
    "SIM_REVENI_PORT",
    "SIM_CIN7_PORT",
    "SIM_SITOO_PORT",
    "SIM_SMTP_PORT",
)
STACK = [sys.executable, "-m", "local_stack"]


def _wait(what: str, check, timeout: float, every: float = 2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(every)
    raise AssertionError(f"{what}: not within {timeout:.0f} s")


@pytest.fixture
def moved_stack(tmp_path: Path) -> Iterator[tuple[dict[str, str], Path]]:
    """The environment of a user who moved every port (the stack reads .env.example itself: none of its
    variables comes from this test session), and the stack's local folder; stopped afterwards."""
    example = dotenv_values(ROOT / ".env.example", interpolate=False)
    env = {k: v for k, v in os.environ.items() if k not in example and not k.startswith("AIRFLOW__CORE__EXEC")}
    ports = {variable: str(free_port()) for variable in PORT_VARIABLES}
    assert "8080" not in ports.values()
    # not under pytest's basetemp (mode 700): as root, the embedded PostgreSQL runs as another user
    local = Path(tempfile.mkdtemp(prefix="recon-test-up-"))
    local.chmod(0o755)
    env.update(ports)
    env.update(
        {
            "AIRFLOW_HOME": str(tmp_path / "airflow"),
            "RECON_LOCAL_DIR": str(local),
            "RECON_DATA_DOCS_DIR": str(tmp_path / "docs"),
            "DEMO_RETURNS": "40",
            "RECON_TASK_RETRIES": "0",  # the failed run fails at once
        }
    )
    try:
        yield env, local
    finally:
        stop = subprocess.run([*STACK, "stop"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
        shutil.rmtree(local, ignore_errors=True)
    assert stop.returncode == 0, stop.stdout + stop.stderr
    assert "stopped airflow" in stop.stdout
    for variable in PORT_VARIABLES:
        assert not _listeners(int(ports[variable])), f"{variable} still listened on after make stop"


def _listeners(port: int) -> set[str]:
    return {c.laddr.ip for c in psutil.net_connections("inet") if c.status == "LISTEN" and c.laddr.port == port}


def _our_processes(local: Path) -> list[psutil.Process]:
    """Every process of the process groups `make up` started (pid files under run/)."""
    groups = {int(path.read_text().split()[0]) for path in (local / "run").glob("*.pid")}
    return [p for p in psutil.process_iter() if _pgid(p) in groups]


def _listening_of(processes: list[psutil.Process]) -> set[str]:
    """The addresses (ip:port) the processes listen on (those that ended meanwhile are left out)."""
    found: set[str] = set()
    for process in processes:
        try:
            found |= {f"{c.laddr.ip}:{c.laddr.port}" for c in process.net_connections("inet") if c.status == "LISTEN"}
        except psutil.NoSuchProcess:
            continue
    return found


def _pgid(process: psutil.Process) -> int | None:
    try:
        return os.getpgid(process.pid)
    except OSError:
        return None


def _run(api: requests.Session, base: str, dag_id: str, timeout: float = 180) -> dict:
    run = api.post(f"{base}/dags/{dag_id}/dagRuns", json={"logical_date": None}, timeout=30)
    assert run.status_code == 200, run.text
    url = f"{base}/dags/{dag_id}/dagRuns/{run.json()['dag_run_id']}"
    return _wait(
        f"{dag_id} run to end",
        lambda: (r := api.get(url, timeout=30).json())["state"] in ("success", "failed") and r,
        timeout,
    )


def _subject(mail: Path) -> str:
    return str(BytesParser(policy=policy.default).parsebytes(mail.read_bytes(), headersonly=True)["Subject"])


def _task_log(api: requests.Session, base: str, run: dict, task_id: str) -> str:
    url = f"{base}/dags/{run['dag_id']}/dagRuns/{run['dag_run_id']}/taskInstances/{task_id}/logs/1"
    response = api.get(url, timeout=30)
    assert response.status_code == 200, response.text
    return "\n".join(str(line.get("event")) for line in response.json()["content"])


def test_up_with_every_port_moved_runs_tasks_logs_alerts_and_keeps_the_login(moved_stack) -> None:
    env, local = moved_stack
    up = subprocess.run([*STACK, "up"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=420)
    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
    base_url = f"http://127.0.0.1:{env['AIRFLOW__API__PORT']}"
    base = f"{base_url}/api/v2"

    # local means local: every port moved answers on 127.0.0.1 only, and nothing of ours listens elsewhere
    for variable in PORT_VARIABLES:
        assert _listeners(int(env[variable])) == {"127.0.0.1"}, variable
    listening = _listening_of(_our_processes(local))
    airflow_ports = (
        "AIRFLOW__API__PORT",
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT",
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT",
        "SIM_REVENI_PORT",
        "SIM_SMTP_PORT",
    )
    assert {f"127.0.0.1:{env[variable]}" for variable in airflow_ports} <= listening
    assert {address.rpartition(":")[0] for address in listening} == {"127.0.0.1"}, listening

    # the login: the REST API refuses anonymous calls; the admin password was printed once, is in its file
    # (mode 600) and in no log of the stack
    assert requests.get(f"{base}/dags", timeout=10).status_code == 401
    password = re.search(r"log in as admin \(admin\) with the password (\S+)", up.stdout).group(1)
    password_file = local / "airflow-passwords.json"
    stored = json.loads(password_file.read_text())
    assert stored["admin"] == password
    assert set(stored) == {"admin", "finance", "auditor"}  # the workbench's users: finance acts, the auditor reads
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    token = requests.post(f"{base_url}/auth/token", json={"username": "admin", "password": password}, timeout=30)
    assert token.status_code == 201, token.text
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {token.json()['access_token']}"

    _wait(
        "our DAGs listed",
        lambda: {d["dag_id"] for d in api.get(f"{base}/dags", timeout=30).json()["dags"]} == EXPECTED_DAGS,
        180,
    )
    assert api.get(f"{base}/importErrors", timeout=30).json()["total_entries"] == 0

    # a run reports to the moved API server and succeeds against the moved simulators and warehouse;
    # its task logs are in the UI
    assert api.patch(f"{base}/dags/{GOLIVE}", json={"is_paused": False}, timeout=30).status_code == 200
    run = _run(api, base, GOLIVE)
    assert run["state"] == "success", run
    assert "connections are present and well formed" in _task_log(api, base, run, "preflight.check_connections")

    # the webhook receiver is served by the moved API server (an unsigned delivery is refused), and the simulators
    # deliver to it: their subscriptions name its URLs
    sims_admin = f"http://127.0.0.1:{env['SIM_REVENI_PORT']}/_sim"
    receiver = f"{base_url}/returns-recon/webhooks"
    assert requests.post(f"{receiver}/reveni", data=b"{}", timeout=30).status_code == 401
    subscribed = json.dumps(requests.get(f"{sims_admin}/webhooks", timeout=10).json())
    assert f"{receiver}/reveni" in subscribed
    assert f"{receiver}/cin7" in subscribed

    # the exception workbench: in the UI's navigation, its pages behind Airflow's login
    plugins = api.get(f"{base}/plugins", timeout=30).json()["plugins"]
    views = [v for p in plugins for v in p.get("external_views", [])]
    assert {"name": "Returns reconciliation", "url_route": "returns-recon"}.items() <= views[0].items(), views
    workbench = f"{base_url}/returns-recon-workbench/"
    assert requests.get(workbench, timeout=30, allow_redirects=False).status_code == 303  # to the login
    queue = api.get(workbench, timeout=30).text
    assert "Exceptions" in queue
    assert '<tr id="row-' in queue  # a new world's first hourly run (before Airflow started) filled the queue

    # a failed run's alert reaches the SMTP sink on the moved port: Reveni refuses every call
    requests.post(f"{sims_admin}/faults/reveni", json={"auth_refuse_writes_after": 0}, timeout=10).raise_for_status()
    failed = _run(api, base, GOLIVE)
    assert failed["state"] == "failed", failed
    subject = f"[returns recon] {GOLIVE} failed ({failed['dag_run_id']})"
    alerts = _wait(
        "the failure alert in the SMTP sink",
        lambda: [p for p in (local / "mail").glob("*.eml") if _subject(p) == subject],
        120,
    )
    assert len(alerts) == 1
    requests.post(f"{sims_admin}/faults/reveni", json={}, timeout=10).raise_for_status()

    # the demo's runs (`airflow dags test`, as `make demo` runs it) have their task logs in the UI
    assert api.patch(f"{base}/dags/{GOLIVE}", json={"is_paused": True}, timeout=30).status_code == 200
    demo = subprocess.run(
        [*STACK, "run", sys.executable, "-m", "local_stack.dag_test", GOLIVE],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    runs = api.get(f"{base}/dags/{GOLIVE}/dagRuns", params={"order_by": "-run_after"}, timeout=30).json()
    tested = runs["dag_runs"][0]
    assert (tested["triggered_by"], tested["state"]) == ("test", "success"), tested
    assert "connections are present and well formed" in _task_log(api, base, tested, "preflight.check_connections")
    assert "postings released" in _task_log(api, base, tested, "check.golive_check")

    logs = [*(local / "run").glob("*.log"), *Path(env["AIRFLOW_HOME"], "logs").rglob("*.log")]
    assert logs
    assert [path for path in logs if password in path.read_text(errors="replace")] == []


def _scenario(path: Path, seed: int) -> Path:
    generate(GeneratorConfig(returns=20, seed=seed), path)
    return path


def test_up_continues_the_world_of_the_warehouse_or_starts_a_new_one(tmp_path: Path, simulators) -> None:
    from local_stack import world

    env = {
        "RECON_LOCAL_DIR": str(tmp_path),
        "SIM_REVENI_PORT": str(simulators.reveni_port),
        "AIRFLOW_CONN_RECON_WAREHOUSE": json.dumps(
            {"conn_type": "postgres", "host": "127.0.0.1", "port": 1, "login": "x", "password": "y", "schema": "recon"}
        ),
        "DEMO_RETURNS": "20",
    }
    loaded, other = _scenario(tmp_path / "a.json", 1), _scenario(tmp_path / "b.json", 2)

    # nothing recorded: a new world (a freshly generated demo scenario), the warehouse starts empty
    fresh = world.choose(env, "")
    assert fresh == world.World(tmp_path / "scenarios" / "demo.json", new=True)

    # the warehouse was loaded from `loaded` and the simulators still serve it: keep both
    simulators.load(loaded)
    world.record(env, loaded)
    assert world.choose(env, "") == world.World(loaded.resolve(), new=False)
    assert world.choose(env, str(loaded)) == world.World(loaded.resolve(), new=False)
    assert world.recorded_scenario(env) == loaded.resolve()

    # SCENARIO names another world: new (the embedded warehouse will be emptied)
    assert world.choose(env, str(other)) == world.World(other, new=True)
    # the simulators serve another world (restarted, reloaded): new, not the old file reloaded
    simulators.load(other)
    assert world.choose(env, "").new
    # another warehouse than the one recorded: nothing is known of its world
    simulators.load(loaded)
    moved = {**env, "AIRFLOW_CONN_RECON_WAREHOUSE": env["AIRFLOW_CONN_RECON_WAREHOUSE"].replace(": 1,", ": 2,")}
    assert world.recorded_scenario(moved) is None
    assert world.choose(moved, "").new
