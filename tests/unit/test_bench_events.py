"""The pure parts of ``make bench-events`` (bench/events.py): the p95, the verdict, where the misbehaving deliveries
go, which returns become events, and the latencies."""

from __future__ import annotations

import pytest

from bench.events import TARGETS, candidates, latencies, p95, planted, spread, summary, verdict

pytestmark = pytest.mark.unit


def test_p95_is_the_nearest_rank() -> None:
    assert p95([float(v) for v in range(1, 101)]) == 95.0
    assert p95([float(v) for v in range(20, 0, -1)]) == 19.0  # ceil(0.95 * 20) = 19th of the sorted values
    assert p95([3.0]) == 3.0
    assert p95([1.0, 2.0]) == 2.0
    assert p95([1.234, 5.678]) == 5.68


def test_an_event_never_seen_counts_as_infinitely_late() -> None:
    on_time = [float(v) for v in range(1, 96)]
    assert p95([*on_time, None, None, None, None, None]) == 95.0  # 5 of 100 missing: the 95th is still a value
    assert p95([*on_time[:-1], None, None, None, None, None, None]) is None  # 6 of 100: no finite p95
    assert p95([None]) is None
    assert p95([]) is None


def test_the_verdict_says_met_or_missed_with_the_bound() -> None:
    results = {
        "event_to_exception_p95_seconds": 60,
        "event_to_posting_p95_seconds": 120.5,
        "events_lost": 0,
        "forged_accepted": 1,
        "replayed_processed_twice": 0,
    }
    assert verdict(results) == {
        "event_to_exception_p95_seconds": "met (<= 60)",
        "event_to_posting_p95_seconds": "MISSED (<= 120)",
        "events_lost": "met (== 0)",
        "forged_accepted": "MISSED (== 0)",
        "replayed_processed_twice": "met (== 0)",
    }


def test_a_missing_or_infinite_result_misses() -> None:
    results = {"event_to_exception_p95_seconds": None, "events_lost": 0}
    said = verdict(results)
    assert set(said) == set(TARGETS)
    assert said["event_to_exception_p95_seconds"] == "MISSED (<= 60)"
    assert said["events_lost"] == "met (== 0)"
    assert said["forged_accepted"] == "MISSED (== 0)"  # not measured is not met
    assert verdict({"x": 3}, {"x": (">=", 2)}) == {"x": "met (>= 2)"}


def test_misbehaving_deliveries_are_spread_over_the_events() -> None:
    assert spread(30, 300, 3) == {10 * i + 3 for i in range(30)}
    assert spread(3, 10) == {0, 3, 6}
    assert spread(4, 10, 9) == {9, 1, 4, 6}  # shifted, wrapping
    assert spread(0, 300) == set()
    assert spread(50, 20) == set(range(20))  # at most one per event


def test_the_events_are_the_returns_planted_alone_on_their_order() -> None:
    def ret(rid: str, order: str) -> dict:
        return {"id": rid, "order": {"external_id": order}}

    document = {
        "reveni": {"returns": [ret("a", "1"), ret("b", "2"), ret("c", "2"), ret("d", "3"), ret("e", "4")]},
        "expected_exceptions": [
            {"return_id": "a", "type": "refund_without_credit_note"},
            {"return_id": "b", "type": "refund_without_credit_note"},
            {"return_id": "c", "type": "refund_without_credit_note"},
            {"return_id": "d", "type": "refund_without_credit_note"},
            {"return_id": "d", "type": "missing_restock"},
        ],
    }
    assert [r["id"] for r in planted(document)] == ["a", "b", "c"]  # d has another exception too, e none
    assert [r["id"] for r in candidates(document)] == ["a"]  # b and c share their order


def test_latencies_and_their_summary() -> None:
    sent = {"a": 100.0, "b": 101.0, "c": 102.0}
    seen = {"a": 110.5, "c": 104.0}
    values = latencies(sent, seen)
    assert values == [10.5, None, 2.0]
    assert summary(values) == {"p50": 6.25, "p95": None, "max": 10.5, "missing": 1}
    assert summary([1.0, 3.0]) == {"p50": 2.0, "p95": 3.0, "max": 3.0, "missing": 0}
