"""`pip install .` gives a working pipeline package: the wheel built from pyproject.toml holds every file of
include/returns_recon that git tracks (code, SQL models and checks, migrations, mail templates, the vendored
Data Docs assets) and nothing of the local tooling; installed on its own, it finds its files."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "include" / "returns_recon"


def _tracked_package_files() -> set[str]:
    out = subprocess.run(
        ["git", "ls-files", "--", "include/returns_recon"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    files = {Path(f).relative_to("include").as_posix() for f in out}
    # py.typed and everything else under the package ships; nothing is left out on purpose
    assert files, "git ls-files found nothing: run the tests from a clone"
    return files


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (built,) = out.glob("returns_recon-*.whl")
    return built


def test_the_wheel_holds_every_tracked_file_of_the_package_and_no_tooling(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    package_files = {n for n in names if n.startswith("returns_recon/")}
    missing = _tracked_package_files() - package_files
    assert not missing, f"left out of the wheel: {sorted(missing)}"
    for kind in (".sql", ".j2", ".css", ".js", ".py"):
        assert any(n.endswith(kind) for n in package_files), kind
    assert not [n for n in names if n.split("/")[0] in {"local_stack", "recon_simulators", "tests", "bench"}]


def test_the_installed_package_finds_its_files(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    probe = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(target)!r})
        import returns_recon
        from returns_recon import reconcile, sqlfiles
        from returns_recon.notify import digest
        from returns_recon.quality import data_docs, suites
        from returns_recon.reconcile import sql
        from returns_recon.warehouse.migrate import discover
        assert returns_recon.__file__.startswith({str(target)!r}), returns_recon.__file__
        print("sql", len([sql.load(name) for name in sql.names()]))
        print("quality", len(sqlfiles.names(suites.SQL)))
        print("migrations", len(discover()))
        print("templates", len(digest.environment().list_templates()))
        print("assets", len([p for p in data_docs.ASSETS.iterdir() if p.suffix in (".css", ".js")]))
    """)
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    counts = dict(line.split() for line in done.stdout.splitlines())
    source = {
        "sql": len(list((PACKAGE / "reconcile" / "sql").rglob("*.sql"))),
        "quality": len(list((PACKAGE / "quality" / "sql").glob("*.sql"))),
        "migrations": len(list((PACKAGE / "warehouse" / "migrations").glob("*.sql"))),
        "templates": len(list((PACKAGE / "notify" / "templates").iterdir())),
        "assets": len([p for p in (PACKAGE / "quality" / "data_docs_assets").iterdir() if p.suffix in (".css", ".js")]),
    }
    assert {k: int(v) for k, v in counts.items()} == source
    assert all(source.values())
