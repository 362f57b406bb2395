"""Test-session setup shared by every test.

Like Airflow itself, the tests take configuration from the environment: an isolated
AIRFLOW_HOME under .local/test, our dags/ folder, and the demo connections of .env.example
(variables already set win). Every test must be marked `unit`, `integration` or `browser` (a
browser test is also `integration`: it drives a real Airflow): collection fails otherwise, as in
the Great Expectations provider's suite.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from dotenv import dotenv_values

ROOT = Path(__file__).resolve().parents[1]
TEST_HOME = ROOT / ".local" / "test"
os.environ.setdefault("AIRFLOW_HOME", str(TEST_HOME / "airflow"))
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(ROOT / "dags"))
os.environ.setdefault("AIRFLOW__CORE__PLUGINS_FOLDER", str(ROOT / "plugins"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
for key, value in dotenv_values(ROOT / ".env.example").items():
    if value is not None:
        os.environ.setdefault(key, value)

pytest_plugins = [
    "tests.fixtures.warehouse",
    "tests.fixtures.airflow",
    "tests.fixtures.simulators",
    "tests.fixtures.smtp",
    "tests.fixtures.browser",
    "tests.fixtures.workbench",
]

MARKERS = {"unit", "integration", "browser"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    unmarked = [item.nodeid for item in items if not MARKERS & {m.name for m in item.iter_markers()}]
    if unmarked:
        raise pytest.UsageError("tests without a `unit`, `integration` or `browser` marker:\n" + "\n".join(unmarked))
