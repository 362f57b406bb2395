"""Timestamp helpers shared by the simulators and the generator."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime


def parse_ts(value: str | int | float | datetime | None) -> datetime | None:
    """Parse ISO 8601 (with or without zone, any fractional precision) or Unix seconds to UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    text = str(value).strip().replace("Z", "+00:00")
    if "." in text:
        head, _, tail = text.partition(".")
        digits = "".join(ch for ch in tail if ch.isdigit())
        zone = tail[len(digits) :]
        text = f"{head}.{(digits + '000000')[:6]}{zone}"
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def require_ts(value: str | int | float | datetime) -> datetime:
    """``parse_ts`` of a timestamp that must be there (a record's own, a clock setting): empty is an error."""
    parsed = parse_ts(value)
    if parsed is None:
        raise ValueError("a timestamp is required, got an empty value")
    return parsed


def iso_z(when: datetime) -> str:
    """Canonical form used by Reveni and the scenario files: microseconds, Z."""
    if when.tzinfo is not UTC:
        when = when.astimezone(UTC)
    return when.isoformat(timespec="microseconds")[:26] + "Z"


def cin7_ts(when: datetime, key: str) -> str:
    """Cin7 Core style: no zone, fractional precision varying by record (0, 2, 3 or 7 digits)."""
    when = when.astimezone(UTC)
    base = when.strftime("%Y-%m-%dT%H:%M:%S")
    digits = (0, 2, 3, 7)[hashlib.md5(key.encode()).digest()[0] % 4]  # noqa: S324 - not security
    if digits == 0:
        return base
    fraction = f"{when.microsecond:06d}0"
    return f"{base}.{fraction[:digits]}"


def unix(when: datetime) -> int:
    return int(when.timestamp())
