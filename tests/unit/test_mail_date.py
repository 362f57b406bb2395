"""The day a run's exception mails are for (orchestration.tasks._mail_date): the run's logical date, or for a
manual run without one, when it was triggered. Airflow's task context has no ``run_after`` key of its own: that
is the dag run's (a KeyError before, found by mypy)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from types import SimpleNamespace

import pytest

from returns_recon.orchestration import tasks

pytestmark = pytest.mark.unit

TRIGGERED = datetime(2026, 3, 4, 23, 30, tzinfo=UTC)


def _context(logical_date: datetime | None) -> dict:
    """As the task runner builds it: no ``logical_date`` key when the run has none, never a ``run_after``."""
    dag_run = SimpleNamespace(logical_date=logical_date, run_after=TRIGGERED)
    context: dict = {"dag_run": dag_run, "run_id": "manual__x"}
    if logical_date is not None:
        context["logical_date"] = logical_date
    return context


def test_a_scheduled_run_mails_for_its_logical_date(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tasks, "get_current_context", lambda: _context(datetime(2026, 3, 1, 6, tzinfo=UTC)))
    assert tasks._mail_date() == date(2026, 3, 1)


def test_a_manual_run_without_a_logical_date_mails_for_when_it_was_triggered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tasks, "get_current_context", lambda: _context(None))
    assert tasks._mail_date() == date(2026, 3, 4)
