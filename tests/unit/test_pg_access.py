"""Whether PostgreSQL's user can reach a folder is read from the mode bits of every folder above it."""

from __future__ import annotations

import pwd
import shutil
import tempfile
from pathlib import Path

import pytest

from local_stack.pg_access import reachable_by

pytestmark = pytest.mark.unit


def _user(uid: int, gid: int) -> pwd.struct_passwd:
    return pwd.struct_passwd(("someone", "x", uid, gid, "", "/", "/usr/sbin/nologin"))


def test_a_folder_under_a_closed_one_is_reachable_only_by_its_owner() -> None:
    base = Path(tempfile.mkdtemp())  # not pytest's tmp_path: its parents are closed (mode 700)
    try:
        base.chmod(0o755)
        closed = base / "clone"
        inner = closed / "repo" / ".local"
        inner.mkdir(parents=True)
        closed.chmod(0o700)
        info = closed.stat()
        other = _user(info.st_uid + 12345, info.st_gid + 12345)
        assert not reachable_by(inner, other)
        assert reachable_by(inner, _user(info.st_uid, info.st_gid))
        closed.chmod(0o711)  # traversing is enough, listing is not needed
        assert reachable_by(inner, other)
    finally:
        shutil.rmtree(base)
