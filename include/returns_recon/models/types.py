"""Field types shared by the models: exact money, currencies, UTC timestamps."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator

_DECIMAL = re.compile(r"^-?\d+(\.\d+)?$")


def to_decimal(value: Any) -> Decimal:
    """Exact decimals from strings ("39.9000"), JSON numbers parsed as Decimal, or ints.

    Floats are refused: they cannot carry money exactly (the API client parses JSON numbers
    straight to Decimal).
    """
    if isinstance(value, bool):
        raise ValueError("a boolean is not an amount")
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("amount is not finite")
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, str) and _DECIMAL.match(value.strip()):
        try:
            return Decimal(value.strip())
        except InvalidOperation as err:
            raise ValueError(f"not a decimal amount: {value!r}") from err
    raise ValueError(f"not a decimal amount: {value!r}")


def to_utc(value: Any) -> datetime | None:
    """ISO 8601 with or without zone and with any fractional precision (naive means UTC), or Unix seconds."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        return datetime.fromtimestamp(int(value), UTC)
    if not isinstance(value, str):
        raise ValueError(f"not a timestamp: {value!r}")
    text = value.strip().replace("Z", "+00:00")
    if "." in text:
        head, _, tail = text.partition(".")
        digits = "".join(ch for ch in tail if ch.isdigit())
        text = f"{head}.{(digits + '000000')[:6]}{tail[len(digits) :]}"
    parsed = datetime.fromisoformat(text)
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def _currency(value: str) -> str:
    if not re.fullmatch(r"[A-Z]{3}", value):
        raise ValueError(f"not an ISO 4217 currency code: {value!r}")
    return value


Money = Annotated[Decimal, BeforeValidator(to_decimal)]
UtcTime = Annotated[datetime, BeforeValidator(to_utc)]
OptionalUtcTime = Annotated[datetime | None, BeforeValidator(to_utc)]
Currency = Annotated[str, AfterValidator(_currency)]
