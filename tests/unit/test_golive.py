"""The go-live check's pure logic: when a check passes, and which systems' postings are held."""

from __future__ import annotations

import pytest

from returns_recon.golive import CHECKS, Check, Observation, Result, hold_reasons, summarise

pytestmark = pytest.mark.unit


def check(blocking: bool = True, expected: str = "confirmed") -> Check:
    return Check(
        "x",
        "cin7",
        "an assumption",
        "vendor silent",
        "RECON_X",
        blocking,
        expected,
        "GET x",
        lambda ctx: Observation("confirmed"),
    )


@pytest.mark.parametrize(
    ("blocking", "expected", "outcome", "passed", "verdict", "holds"),
    [
        (True, "confirmed", "confirmed", True, "PASS", False),
        (True, "confirmed", "refuted", False, "FAIL", True),
        (True, "confirmed", "unverified", None, "UNVERIFIED", False),
        (True, "confirmed", "error", False, "ERROR", True),
        (False, "refuted", "refuted", True, "PASS", False),  # the documented behaviour, as expected
        (False, "refuted", "confirmed", False, "DIFFERS", False),
        (False, "confirmed", "error", False, "ERROR", False),
    ],
)
def test_a_check_passes_when_the_account_answers_what_the_pipeline_relies_on(
    blocking, expected, outcome, passed, verdict, holds
) -> None:
    result = Result(check(blocking, expected), outcome, {})
    assert (result.passed, result.verdict, result.holds) == (passed, verdict, holds)


def test_never_checked_systems_are_held_failed_blocking_checks_hold_and_the_override_releases() -> None:
    assert set(hold_reasons({}, ())) == {"cin7", "sitoo"}
    assert "no go-live check has run" in hold_reasons({}, ())["cin7"]
    latest = {"cin7": ("run-2", ["sale_match_field"]), "sitoo": ("run-2", []), "reveni": ("run-2", ["list_endpoint"])}
    assert hold_reasons(latest, ()) == {"cin7": "go-live check run-2 failed: sale_match_field"}
    assert hold_reasons(latest, ("cin7",)) == {}
    assert hold_reasons({"cin7": ("run-1", [])}, ("sitoo",)) == {}


def test_every_check_is_described_for_the_assumptions_table() -> None:
    ids = [c.id for c in CHECKS]
    assert len(ids) == len(set(ids))
    for c in CHECKS:
        assert c.system in {"reveni", "cin7", "sitoo"}
        assert c.assumption.endswith(".")
        assert all((c.source, c.setting, c.verifies))
        assert c.expected in {"confirmed", "refuted"}
    by_id = {c.id: c for c in CHECKS}
    assert by_id["credit_note_list_restock_status"].blocking
    assert not by_id["transfer_search_reference"].blocking
    assert by_id["transfer_search_reference"].expected == "refuted"  # documented: Search does not read Reference


def test_the_evidence_summary_is_short() -> None:
    assert summarise({"a": 1, "b": "x"}) == 'a=1, b="x"'
    assert len(summarise({"a": "y" * 500})) == 160
