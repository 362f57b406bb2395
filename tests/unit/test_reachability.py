"""The budgets that make an unreachable API or warehouse fail within a minute (issue 18, item 9): the worst case
of the configured timeouts, attempts and pauses, not a stopwatch. tests/integration/test_unreachable.py
shows the clients keep to these counts against real sockets."""

from __future__ import annotations

import pytest

from returns_recon.apis.client import RetrySettings
from returns_recon.errors import NotRetryable
from returns_recon.reachability import (
    BUDGET_SECONDS,
    WAREHOUSE_CONNECT_TIMEOUT,
    WAREHOUSE_PAUSES,
    Unreachable,
    warehouse_worst_case_seconds,
)

pytestmark = pytest.mark.unit


def test_the_budget_is_a_minute() -> None:
    assert BUDGET_SECONDS <= 60


@pytest.mark.parametrize("connected", [False, True], ids=["cannot connect", "connects, never answers"])
def test_an_unreachable_api_gives_up_within_the_budget(connected: bool) -> None:
    settings = RetrySettings()  # what the hooks use in production
    attempts = settings.no_answer_attempts(connected=connected)
    per_attempt = settings.connect_timeout + (settings.read_timeout if connected else 0)
    worst = attempts * per_attempt + sum(settings.pauses(attempts - 1))
    assert worst == settings.no_answer_worst_case(connected=connected) <= BUDGET_SECONDS
    # one attempt more would not fit: the budget is used, not wasted
    assert settings.no_answer_worst_case(attempts + 1, connected=connected) > BUDGET_SECONDS


def test_a_refused_connect_is_tried_more_than_once_before_giving_up() -> None:
    """A blip (a restart behind a load balancer) is not a failed run."""
    assert RetrySettings().no_answer_attempts(connected=False) >= 3


def test_the_warehouse_gives_up_within_the_budget() -> None:
    worst = (len(WAREHOUSE_PAUSES) + 1) * WAREHOUSE_CONNECT_TIMEOUT + sum(WAREHOUSE_PAUSES)
    assert warehouse_worst_case_seconds() == worst <= BUDGET_SECONDS
    assert len(WAREHOUSE_PAUSES) >= 1, "a warehouse restarting is waited for a little"


def test_unreachable_names_the_connection_and_host_port_and_is_not_retried() -> None:
    err = Unreachable("sitoo_default", "api.mysitoo.com", 443, "connection refused", 3, 12.4, "that the API is up")
    assert isinstance(err, NotRetryable)
    assert str(err).startswith(
        "cannot reach api.mysitoo.com:443 (Airflow connection 'sitoo_default'): "
        "connection refused; gave up after 3 attempts in 12 s."
    )
    assert "[::1]:5432" in str(Unreachable("recon_warehouse", "::1", 5432, "connection refused", 1, 0, "x"))
