"""What the README and docs/ tell a user holds in the repository they cloned."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted(ROOT.glob("*/README.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_points_inside_the_repository(page: Path) -> None:
    broken = []
    for target in LINK.findall(page.read_text()):
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            continue  # web addresses and anchors in the page
        path = (page.parent / target.split("#")[0]).resolve()
        if not path.is_relative_to(ROOT) or not path.exists():
            broken.append(target)
    assert broken == [], f"{page.name} links outside the repository or to nothing"


def test_the_bench_duration_is_the_same_everywhere() -> None:
    said = {
        name: re.findall(r"about (\d+) minutes", (ROOT / name).read_text())
        for name in ("README.md", "Makefile", "docs/performance.md")
    }
    bench_lines = {name: minutes for name, minutes in said.items() if minutes}
    assert set(bench_lines) == set(said), f"a page does not state the bench duration: {said}"
    assert len({m for minutes in bench_lines.values() for m in minutes}) == 1, said
    measured = re.search(r"`make bench, total` \| ([\d.]+) min", (ROOT / "docs/performance.md").read_text())
    assert measured, "docs/performance.md records the total bench time"
    stated = int(next(iter(bench_lines.values()))[0])
    assert abs(float(measured.group(1)) - stated) <= 5, "the stated duration is far from the measured one"


def test_the_spec_is_in_the_repository() -> None:
    spec = (ROOT / "docs" / "operating-model.md").read_text()
    for heading in ("## 1. Who owns what", "## 3. Exception taxonomy", "## 4. Corrective postings"):
        assert heading in spec


# a path of the repository named in backticks, e.g. `include/returns_recon/settings.py` or `tools/local_stack/`
NAMED_PATH = re.compile(r"`((?:dags|include|tools|tests|bench|docs|plugins|contracts)/[\w./-]*)`")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_named_path_exists(page: Path) -> None:
    generated = ("bench/results/",)  # written by make bench, git-ignored
    named = [p for p in NAMED_PATH.findall(page.read_text()) if "*" not in p and not p.startswith(generated)]
    missing = [p for p in named if not (ROOT / p).exists()]
    assert missing == [], f"{page.name} names files that are not in the repository"
