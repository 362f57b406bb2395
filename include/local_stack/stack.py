"""Start, stop and describe the local stack: embedded warehouse, simulators, Airflow."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psycopg

from local_stack.settings import ConnFields, embedded_enabled, local_dir, run_dir, warehouse_conn, warehouse_dir
from local_stack.warehouse import EmbeddedWarehouse
from returns_recon.warehouse.migrate import apply_migrations

BIN = Path(sys.executable).parent


def embedded_warehouse(env: dict[str, str], conn: ConnFields) -> EmbeddedWarehouse:
    return EmbeddedWarehouse(warehouse_dir(env) / "data", port=conn.port or 5432, host=conn.host or "127.0.0.1")


def start_warehouse(env: dict[str, str], fresh: bool = False) -> ConnFields:
    """Start the embedded warehouse (unless disabled), create its login and apply migrations.

    ``fresh`` (the demo) starts from an empty embedded database, so each demo shows one scenario.
    """
    conn = warehouse_conn(env)
    warehouse = None
    if embedded_enabled(env):
        warehouse = embedded_warehouse(env, conn)
        warehouse.start()
        if fresh:
            warehouse.drop_database(conn.schema)
        warehouse.ensure_database(conn.login, conn.password, conn.schema)
    try:
        with psycopg.connect(conn.libpq_url(), connect_timeout=10) as db:
            applied = apply_migrations(db)
    except psycopg.OperationalError as err:
        raise SystemExit(
            f"cannot reach the warehouse at {conn.host}:{conn.port}: {err}. "
            "Check AIRFLOW_CONN_RECON_WAREHOUSE, or set RECON_EMBEDDED_WAREHOUSE=true."
        ) from err
    if warehouse is not None and env.get("RECON_READER_PASSWORD"):
        warehouse.set_role_password("recon_reader", env["RECON_READER_PASSWORD"])
    where = "embedded" if warehouse else "external"
    print(f"warehouse ({where}) ready on {conn.host}:{conn.port}; migrations applied now: {len(applied)}")
    return conn


def stop_warehouse(env: dict[str, str]) -> None:
    if embedded_enabled(env):
        embedded_warehouse(env, warehouse_conn(env)).stop()


def run(cmd: list[str], env: dict[str, str], **kwargs) -> subprocess.CompletedProcess:
    kwargs.setdefault("check", False)
    return subprocess.run(cmd, env=env, **kwargs)  # noqa: S603 - our own argv


def airflow(args: list[str], env: dict[str, str], **kwargs) -> subprocess.CompletedProcess:
    return run([str(BIN / "airflow"), *args], env, **kwargs)


def ensure_airflow_db(env: dict[str, str]) -> None:
    Path(env["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
    result = airflow(["db", "migrate"], env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.stderr.write(result.stdout[-4000:] + result.stderr[-4000:])
        raise SystemExit("airflow db migrate failed (output above)")
    create_pools(env)


def create_pools(env: dict[str, str]) -> None:
    """The API pools the DAGs use (idempotent)."""
    from returns_recon.dag_defaults import POOLS

    for name, slots in POOLS.items():
        description = f"concurrent tasks calling the {name.removesuffix('_api')} API"
        airflow(["pools", "set", name, str(slots), description], env, capture_output=True, check=True)


# --- background processes -----------------------------------------------------------------


def pid_file(env: dict[str, str], name: str) -> Path:
    return run_dir(env) / f"{name}.pid"


def log_file(env: dict[str, str], name: str) -> Path:
    return run_dir(env) / f"{name}.log"


def start_background(name: str, cmd: list[str], env: dict[str, str]) -> int:
    run_dir(env).mkdir(parents=True, exist_ok=True)
    log = log_file(env, name).open("ab")
    proc = subprocess.Popen(  # noqa: S603 - our own argv
        cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    pid_file(env, name).write_text(str(proc.pid))
    return proc.pid


def stop_background(env: dict[str, str], name: str) -> bool:
    path = pid_file(env, name)
    if not path.exists():
        return False
    pid = int(path.read_text())
    path.unlink()
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    for _ in range(50):
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    os.killpg(pid, signal.SIGKILL)
    return True


# --- simulators ---------------------------------------------------------------------------------


def default_scenario(env: dict[str, str]) -> Path:
    """A fresh demo scenario (500 returns, clock = now, the messy shapes real merchants produce at their default
    rates; DEMO_CLEAN=1: one defect per broken return) unless SCENARIO names one."""
    from recon_simulators.generate import location_map_csv_path, write_location_map_csv
    from recon_simulators.generator import MESSY_DEFAULTS, GeneratorConfig, generate

    path = local_dir(env) / "scenarios" / "demo.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    messy = {} if env.get("DEMO_CLEAN", "") not in ("", "0") else dict(MESSY_DEFAULTS)
    config = GeneratorConfig(returns=int(env.get("DEMO_RETURNS", "500")), seed=int(env.get("DEMO_SEED", "1")),
                             messy=messy)  # fmt: skip
    generate(config, path)
    write_location_map_csv(path, location_map_csv_path(path))
    return path


def use_location_map_of(env: dict[str, str], scenario: Path) -> None:
    """Point the pipeline at the scenario's location map CSV, when it has one beside it."""
    from recon_simulators.generate import location_map_csv_path

    csv_path = location_map_csv_path(scenario)
    if csv_path.is_file() and "RECON_LOCATION_MAP_PATH" not in os.environ:
        env["RECON_LOCATION_MAP_PATH"] = str(csv_path)


def start_simulators(env: dict[str, str], scenario: Path) -> None:
    """(Re)start the three simulators in the background on ``scenario`` and wait until they answer."""
    stop_background(env, "simulators")
    cmd = [sys.executable, "-m", "recon_simulators", "--scenario", str(scenario)]
    start_background("simulators", cmd, env)
    health = f"http://127.0.0.1:{env.get('SIM_REVENI_PORT', '18081')}/_sim/health"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(health, timeout=2) as response:
                if response.status == 200:
                    print(f"simulators ready on scenario {scenario} (log: {log_file(env, 'simulators')})")
                    return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"the simulators did not start; see {log_file(env, 'simulators')}")


def start_smtp_sink(env: dict[str, str]) -> Path:
    """The demo's local SMTP server; every mail lands as an .eml file in the returned folder."""
    folder = local_dir(env) / "mail"
    stop_background(env, "smtp_sink")
    for old in folder.glob("*.eml"):  # each demo shows its own mails
        old.unlink()
    port = env.get("SIM_SMTP_PORT", "18025")
    start_background("smtp_sink", [sys.executable, "-m", "local_stack.smtp_sink", "--port", port, "--dir",
                                   str(folder)], env)  # fmt: skip
    return folder
