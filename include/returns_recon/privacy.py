"""Data minimisation: personal data the reconciliation does not need never reaches the warehouse.

The APIs return customers' e-mail addresses, phone numbers, postal addresses, names and (for bank
refunds) IBANs alongside what we need. Payloads are stored (``raw``, ``raw.quarantine``) with
those fields replaced by a marker, so the audit trail keeps its shape without the person.
"""

from __future__ import annotations

import re
from typing import Any

REDACTED = "[redacted]"
# key names (any case, any API's spelling) that hold personal data
_PERSONAL = re.compile(
    r"e-?mail|phone|mobile|iban|bic$|swift|bank|address|contact|first_?name|last_?name|namefirst|namelast"
    r"|^customer(_?name)?$|^(billing|shipping)|^name_on|card",
    re.IGNORECASE,
)


def is_personal(key: str) -> bool:
    return bool(_PERSONAL.search(key))


def redact(value: Any) -> Any:
    """A copy of ``value`` with every personal field's value replaced by ``[redacted]``."""
    if isinstance(value, dict):
        return {k: (REDACTED if value[k] not in (None, "") else value[k]) if is_personal(k) else redact(value[k])
                for k in value}  # fmt: skip
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value
