"""storable_json: a NUL character (which Postgres' jsonb and text refuse) is stored as the visible text \\u0000,
and text that already reads \\u0000 (a backslash, then u0000) is stored as it is, not turned into a NUL."""

from __future__ import annotations

import json

import pytest

from returns_recon.warehouse.loader import storable_json

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        ("a\x00b", "a\\u0000b"),  # a NUL becomes visible text
        ("x\\u0000y", "x\\u0000y"),  # the text backslash-u0000 stays as it is
        ("\\\x00", "\\\\u0000"),  # a backslash, then a NUL
        ("\\\\u0000", "\\\\u0000"),  # two backslashes, then u0000: text
        ("plain", "plain"),
    ],
    ids=["nul", "text that reads like a nul", "backslash then nul", "two backslashes then text", "plain"],
)
def test_no_nul_reaches_the_database_and_text_is_kept(value: str, stored: str) -> None:
    back = json.loads(storable_json({"v": value}))["v"]
    assert "\x00" not in back
    assert back == stored
