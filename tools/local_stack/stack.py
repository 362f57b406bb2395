"""Start, stop and describe the local stack: embedded warehouse, simulators, Airflow."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
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
        if not warehouse.is_running():
            _started.append(warehouse.stop)
        with _signals_held():  # pg_ctl start is not cut short: the stop that follows then finds it
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
    """The API pools the DAGs use (idempotent); with a merchants file (RECON_MERCHANTS_PATH), every merchant's too."""
    from returns_recon.orchestration.defaults import POOLS

    for name, slots in POOLS.items():
        description = f"concurrent tasks calling the {name.removesuffix('_api')} API"
        airflow(["pools", "set", name, str(slots), description], env, capture_output=True, check=True)
    if env.get("RECON_MERCHANTS_PATH"):
        create_merchant_pools(env, Path(env["RECON_MERCHANTS_PATH"]))


def create_merchant_pools(env: dict[str, str], path: Path) -> dict[str, int]:
    """The pools of the merchants file at ``path`` (``reveni__<connection id>``, ...), in one `airflow pools import`."""
    from returns_recon.merchants import MerchantsFileError, load_merchants

    try:
        merchants = load_merchants(path)
    except MerchantsFileError as err:
        raise SystemExit(f"the merchants file (RECON_MERCHANTS_PATH) cannot be used:\n{err}") from None
    pools = merchants.pools() if merchants else {}
    spec = {}
    for name, slots in pools.items():
        system, _, conn_id = name.partition("__")
        spec[name] = {"slots": slots, "description": f"concurrent tasks calling the {system} API account {conn_id}"}
    if spec:
        run_dir(env).mkdir(parents=True, exist_ok=True)
        listing = run_dir(env) / "merchant-pools.json"
        listing.write_text(json.dumps(spec, indent=1) + "\n")
        result = airflow(["pools", "import", str(listing)], env, capture_output=True, text=True)
        if result.returncode != 0:
            sys.stderr.write(result.stdout[-2000:] + result.stderr[-2000:])
            raise SystemExit(f"airflow pools import {listing} failed (output above)")
    return pools


# --- background processes -----------------------------------------------------------------


def pid_file(env: dict[str, str], name: str) -> Path:
    return run_dir(env) / f"{name}.pid"


def log_file(env: dict[str, str], name: str) -> Path:
    return run_dir(env) / f"{name}.log"


def start_background(name: str, cmd: list[str], env: dict[str, str]) -> int:
    run_dir(env).mkdir(parents=True, exist_ok=True)
    log = log_file(env, name).open("ab")
    with _signals_held():  # an interrupt waits until the new process is recorded, so it can stop it
        proc = subprocess.Popen(  # noqa: S603 - our own argv
            cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        _started.append(lambda: stop_background(env, name))
        # the start time tells our process from another that got its pid later (e.g. after a reboot)
        pid_file(env, name).write_text(f"{proc.pid} {psutil.Process(proc.pid).create_time()}\n")
    return proc.pid


def stop_background(env: dict[str, str], name: str) -> bool:
    """Stop the process group in ``name``'s pid file, if its leader is still the process we started."""
    path = pid_file(env, name)
    if not path.exists():
        return False
    pid, *created = path.read_text().split()
    path.unlink()
    try:
        if created and abs(psutil.Process(int(pid)).create_time() - float(created[0])) > 1:
            return False
        os.killpg(int(pid), signal.SIGTERM)
    except (psutil.NoSuchProcess, ProcessLookupError):
        return False
    for _ in range(50):
        try:
            os.killpg(int(pid), 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(int(pid), signal.SIGKILL)
    return True


# --- an interrupted command stops what it started -----------------------------------------------

_started: list[Callable[[], object]] = []  # how to stop each server this command started, in order
_held: list[int] | None = None  # signals received while a start is being recorded


def _interrupted(signum: int, _frame: object) -> None:
    if _held is not None:
        _held.append(signum)
        return
    raise KeyboardInterrupt(signal.Signals(signum).name)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    global _held
    _held = []
    try:
        yield
    finally:
        held, _held = _held, None
        if held:
            raise KeyboardInterrupt(signal.Signals(held[0]).name)


@contextlib.contextmanager
def stop_on_interrupt() -> Iterator[None]:
    """SIGTERM (a timeout, `kill`) acts as Ctrl-C; on either, stop what this command started.

    A command that ends leaves its servers running until `make stop` (the README's promise); only an
    interrupted one stops them, so the next run finds its ports free.
    """
    previous = {signum: signal.signal(signum, _interrupted) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    except KeyboardInterrupt as err:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the clean-up is short: let it finish
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        print(f"\ninterrupted ({err or 'SIGINT'}): stopping what this command started", file=sys.stderr, flush=True)
        while _started:
            try:
                _started.pop()()
            except Exception as failure:  # stop the others anyway
                print(f"could not stop one of them: {failure}", file=sys.stderr)
        raise SystemExit(128 + (signal.SIGTERM if str(err) == "SIGTERM" else signal.SIGINT)) from None
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


# --- simulators ---------------------------------------------------------------------------------


def default_scenario(env: dict[str, str]) -> Path:
    """A fresh demo scenario (500 returns, clock = now, the messy shapes real merchants produce at their default
    rates; DEMO_CLEAN=1: one defect per broken return) unless SCENARIO names one."""
    from recon_simulators.generate import location_map_csv_path, write_location_map_csv
    from recon_simulators.generator import MESSY_DEFAULTS, GeneratorConfig, generate

    path = local_dir(env) / "scenarios" / "demo.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    messy = {} if env.get("DEMO_CLEAN", "") not in ("", "0") else dict(MESSY_DEFAULTS)
    config = GeneratorConfig(
        returns=int(env.get("DEMO_RETURNS", "500")), seed=int(env.get("DEMO_SEED", "1")), messy=messy
    )
    generate(config, path)
    write_location_map_csv(path, location_map_csv_path(path))
    return path


def use_location_map_of(env: dict[str, str], scenario: Path) -> None:
    """Point the pipeline at the scenario's location map CSV, when it has one beside it."""
    from recon_simulators.generate import location_map_csv_path

    csv_path = location_map_csv_path(scenario)
    if csv_path.is_file() and "RECON_LOCATION_MAP_PATH" not in os.environ:
        env["RECON_LOCATION_MAP_PATH"] = str(csv_path)


def start_simulators(env: dict[str, str], scenario: Path, name: str = "simulators") -> None:
    """(Re)start the three simulators in the background on ``scenario`` and wait until they answer (``name``: of
    their pid and log files under run/; a demo merchant's simulators have their own, local_stack.merchants_demo)."""
    stop_background(env, name)
    cmd = [sys.executable, "-m", "recon_simulators", "--scenario", str(scenario)]
    start_background(name, cmd, env)
    health = f"http://127.0.0.1:{env.get('SIM_REVENI_PORT', '18081')}/_sim/health"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(health, timeout=2) as response:
                if response.status == 200:
                    print(f"simulators ready on scenario {scenario} (log: {log_file(env, name)})")
                    return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"the simulators did not start; see {log_file(env, name)}")


def start_smtp_sink(env: dict[str, str], clear: bool = True) -> Path:
    """The local SMTP server; every mail lands as an .eml file in the returned folder (``clear``: the
    demo shows its own mails only; `make up` keeps the earlier ones)."""
    folder = local_dir(env) / "mail"
    stop_background(env, "smtp_sink")
    for old in folder.glob("*.eml") if clear else ():
        old.unlink()
    port = env.get("SIM_SMTP_PORT", "18025")
    start_background(
        "smtp_sink", [sys.executable, "-m", "local_stack.smtp_sink", "--port", port, "--dir", str(folder)], env
    )
    return folder
