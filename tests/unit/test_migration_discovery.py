from __future__ import annotations

from pathlib import Path

import pytest

from returns_recon.warehouse.migrate import MIGRATIONS_DIR, MigrationError, discover

pytestmark = pytest.mark.unit


def test_shipped_migrations_are_numbered_without_gaps() -> None:
    versions = [m.version for m in discover(MIGRATIONS_DIR)]
    assert versions == list(range(1, len(versions) + 1))


def test_badly_named_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "1_init.sql").write_text("SELECT 1")
    with pytest.raises(MigrationError, match=r"NNNN_description\.sql"):
        discover(tmp_path)


def test_duplicate_versions_are_refused(tmp_path: Path) -> None:
    (tmp_path / "0001_a.sql").write_text("SELECT 1")
    (tmp_path / "0001_b.sql").write_text("SELECT 2")
    with pytest.raises(MigrationError, match="share a version"):
        discover(tmp_path)


def test_checksum_follows_content(tmp_path: Path) -> None:
    (tmp_path / "0001_a.sql").write_text("SELECT 1")
    first = discover(tmp_path)[0].checksum
    (tmp_path / "0001_a.sql").write_text("SELECT 2")
    assert discover(tmp_path)[0].checksum != first
