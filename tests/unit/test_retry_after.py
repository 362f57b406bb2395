"""Retry-After in both forms RFC 9110 §10.2.3 allows, read by urllib3's parser (issue 16 item 6)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
import requests

from returns_recon.apis.client import retry_after_seconds

pytestmark = pytest.mark.unit


def answer(retry_after: str | None) -> requests.Response:
    response = requests.Response()
    response.status_code = 429
    if retry_after is not None:
        response.headers["Retry-After"] = retry_after
    return response


def test_delay_seconds() -> None:
    assert retry_after_seconds(answer("7")) == 7


def test_http_date() -> None:
    at = datetime.now(UTC) + timedelta(seconds=30)
    wait = retry_after_seconds(answer(format_datetime(at, usegmt=True)))
    assert wait is not None
    assert 25 <= wait <= 31


def test_a_date_in_the_past_means_now() -> None:
    assert retry_after_seconds(answer(format_datetime(datetime.now(UTC) - timedelta(hours=1), usegmt=True))) == 0


@pytest.mark.parametrize("value", [None, "", "soon", "-3"])
def test_absent_or_unreadable_leaves_it_to_the_backoff(value: str | None) -> None:
    assert retry_after_seconds(answer(value)) is None
