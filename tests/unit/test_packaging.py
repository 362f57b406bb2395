"""The package's declared dependencies (pyproject.toml, what the code supports) and the exact pins a
deployment installs (requirements.txt, constraints.txt) agree."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):
            req = Requirement(line)
            (spec,) = req.specifier
            assert spec.operator == "==", f"{path.name}: {line} is not pinned"
            pins[canonicalize_name(req.name)] = spec.version
    return pins


def test_every_dependency_is_pinned_within_its_declared_range() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements, constraints = _pins(ROOT / "requirements.txt"), _pins(ROOT / "constraints.txt")
    for line in project["dependencies"]:
        req = Requirement(line)
        name = canonicalize_name(req.name)
        assert name in requirements, f"{req.name} is a dependency of the package but not pinned in requirements.txt"
        assert req.specifier.contains(requirements[name]), f"{req.name}=={requirements[name]} is outside {req}"
        assert constraints.get(name) == requirements[name], f"{req.name}: constraints.txt disagrees"


def test_build_backend_is_pinned_and_installed_by_the_requirements() -> None:
    for pyproject in (ROOT / "pyproject.toml", ROOT / "tools" / "pyproject.toml"):
        (backend,) = tomllib.loads(pyproject.read_text())["build-system"]["requires"]
        req = Requirement(backend)
        assert _pins(ROOT / "requirements.txt")[canonicalize_name(req.name)] == next(iter(req.specifier)).version
