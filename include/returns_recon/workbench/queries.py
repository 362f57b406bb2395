"""What the workbench reads: the queue (``recon.exception_details`` filtered in SQL, a page at a time) and one
exception with its history and postings. Read-only; the actions are in ``actions``."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

import psycopg
from psycopg.rows import dict_row
from pydantic import BaseModel, ConfigDict, Field, field_validator

from returns_recon.states import EXCEPTION_STATES, OPEN_STATES

PAGE_SIZE = 100
PAYLOAD_SHOWN_MAX = 20_000  # characters of a request or response shown on the page

StateFilter = Literal["open", "closed", "all", "acknowledged", "resolved", "auto_resolved"]
STATE_CHOICES = ("open", "closed", "all", *(s for s in EXCEPTION_STATES if s != "open"))  # open: every open state
SortKey = Literal["money", "age", "first_seen", "occurrences"]


class QueueFilter(BaseModel):
    """The queue's filters, from the page's query string (empty fields are no filter)."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    owner: str | None = None
    exception_type: str | None = Field(None, alias="type")
    severity: str | None = None
    state: StateFilter = "open"  # open: open or acknowledged
    assignee: str | None = None
    currency: str | None = None
    age_min: int | None = Field(None, ge=0)
    age_max: int | None = Field(None, ge=0)
    amount_min: Decimal | None = Field(None, ge=0)
    amount_max: Decimal | None = Field(None, ge=0)
    sort: SortKey = "money"
    page: int = Field(1, ge=1, le=10_000)

    @field_validator("*", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    def states(self) -> list[str]:
        if self.state == "open":
            return list(OPEN_STATES)
        if self.state == "closed":
            return [s for s in EXCEPTION_STATES if s not in OPEN_STATES]
        if self.state == "all":
            return list(EXCEPTION_STATES)
        return [self.state]

    def params(self) -> dict[str, Any]:
        return {
            "states": self.states(),
            "owner": self.owner,
            "type": self.exception_type,
            "severity": self.severity,
            "assignee": self.assignee,
            "currency": self.currency.upper() if self.currency else None,
            "age_min": self.age_min,
            "age_max": self.age_max,
            "amount_min": self.amount_min,
            "amount_max": self.amount_max,
        }


# every filter but the owner's (the counts per owner are taken over these); NULL parameters filter nothing
_FILTERED = """
SELECT d.*, e.assignee, e.acknowledged_by, e.note
FROM recon.exception_details AS d JOIN recon.exceptions AS e USING (exception_key)
WHERE d.state = ANY(%(states)s::text[])
  AND (%(type)s::text IS NULL OR d.exception_type = %(type)s)
  AND (%(severity)s::text IS NULL OR d.severity = %(severity)s)
  AND (%(assignee)s::text IS NULL OR lower(e.assignee) = lower(%(assignee)s))
  AND (%(currency)s::text IS NULL OR coalesce(d.currency, d.refund_currency, d.credit_currency) = %(currency)s)
  AND (%(age_min)s::int IS NULL OR d.age_days >= %(age_min)s)
  AND (%(age_max)s::int IS NULL OR d.age_days <= %(age_max)s)
  AND (%(amount_min)s::numeric IS NULL OR abs(d.money_at_risk) >= %(amount_min)s)
  AND (%(amount_max)s::numeric IS NULL OR abs(d.money_at_risk) <= %(amount_max)s)
"""
ORDER_BY = {
    "money": "abs(money_at_risk) DESC NULLS LAST, first_seen_at, exception_key",
    "age": "age_days DESC NULLS LAST, exception_key",
    "first_seen": "first_seen_at DESC, exception_key",
    "occurrences": "occurrences DESC, exception_key",
}
QUEUE = (
    "WITH filtered AS (" + _FILTERED + ")"
    " SELECT * FROM filtered WHERE %(owner)s::text IS NULL OR lower(owner) = lower(%(owner)s)"
    " ORDER BY {order} LIMIT %(limit)s OFFSET %(offset)s"
)
COUNTS = (
    "WITH filtered AS (" + _FILTERED + ")"
    " SELECT owner, count(*) AS n, sum(abs(money_at_risk)) FILTER (WHERE money_at_risk IS NOT NULL) AS money"
    " FROM filtered GROUP BY owner ORDER BY owner"
)
CHOICES = """
SELECT 'type' AS field, exception_type AS value FROM recon.dim_exception_types
UNION SELECT 'owner', owner FROM recon.dim_exception_types
UNION SELECT 'severity', severity FROM recon.dim_exception_types
ORDER BY 1, 2
"""


@dataclass
class Queue:
    rows: list[dict[str, Any]]
    counts: list[dict[str, Any]]  # per owner, under every filter but the owner
    total: int  # rows under every filter
    choices: dict[str, list[str]] = field(default_factory=dict)


def queue(conn: psycopg.Connection, filters: QueueFilter, page_size: int = PAGE_SIZE) -> Queue:
    params = {**filters.params(), "limit": page_size, "offset": (filters.page - 1) * page_size}
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(QUEUE.format(order=ORDER_BY[filters.sort]), params).fetchall()
        counts = cur.execute(COUNTS, params).fetchall()
        choices: dict[str, list[str]] = {}
        for row in cur.execute(CHOICES).fetchall():
            choices.setdefault(row["field"], []).append(row["value"])
    owner = (filters.owner or "").lower()
    total = sum(c["n"] for c in counts if not owner or c["owner"].lower() == owner)
    return Queue(rows, counts, total, choices)


# beside the exception's own numbers (``refunded``/``credited`` as its type reads them): what each system holds for
# the return, whatever the type: Reveni's paid refunds, the sale's credit notes in Cin7 Core (each currency once)
DETAIL = """
SELECT d.*, e.assignee, e.acknowledged_by, e.note, e.evidence, e.reopened_count, e.last_run_id,
       t.description, a.approved_by, a.approved_at,
       (SELECT string_agg(x.amount || ' ' || x.currency, ', ' ORDER BY x.currency)
        FROM (SELECT trim_scale(sum(f.amount)) AS amount, f.currency FROM staging.stg_reveni__refunds AS f
              WHERE f.return_id = d.return_id AND f.status = 'paid' GROUP BY f.currency) AS x) AS paid_refunds,
       (SELECT string_agg(x.amount || ' ' || x.currency || ' ' || lower(x.status), ', '
                          ORDER BY x.status, x.currency)
        FROM (SELECT trim_scale(sum(c.total)) AS amount, c.currency, c.status FROM staging.stg_cin7__credit_notes AS c
              WHERE c.sale_id = d.cin7_sale_id GROUP BY c.currency, c.status) AS x) AS sale_credit_notes
FROM recon.exception_details AS d
JOIN recon.exceptions AS e USING (exception_key)
LEFT JOIN recon.dim_exception_types AS t ON t.exception_type = d.exception_type
LEFT JOIN recon.credit_note_approvals AS a ON a.posting_key = e.evidence ->> 'posting_key'
WHERE d.exception_key = %(key)s
"""
HISTORY = """
SELECT changed_at, from_state, to_state, changed_by, run_id, note, action, detail
FROM recon.exception_events WHERE exception_key = %(key)s ORDER BY event_id
"""
# the postings of the exception, and every other posting of its return (a refused one may be another's)
POSTINGS = """
SELECT p.posting_key, p.action, p.system, p.exception_key, p.status, p.amount, p.target_ref, p.attempts,
       p.planned_at, p.updated_at, p.last_error, p.reference
FROM recon.postings AS p
WHERE p.exception_key = %(key)s OR (%(return_id)s::text IS NOT NULL AND p.return_id = %(return_id)s)
ORDER BY p.planned_at, p.posting_key
"""
POSTING_LOG = """
SELECT posting_key, run_id, at, step, outcome, left(request::text, %(shown)s) AS request,
       left(response::text, %(shown)s) AS response
FROM recon.posting_log WHERE posting_key = ANY(%(keys)s) ORDER BY id
"""


@dataclass
class ExceptionPage:
    detail: dict[str, Any]
    history: list[dict[str, Any]]
    postings: list[dict[str, Any]]


def exception_page(conn: psycopg.Connection, key: str) -> ExceptionPage | None:
    with conn.cursor(row_factory=dict_row) as cur:
        detail = cur.execute(DETAIL, {"key": key}).fetchone()
        if detail is None:
            return None
        history = cur.execute(HISTORY, {"key": key}).fetchall()
        postings = cur.execute(POSTINGS, {"key": key, "return_id": detail["return_id"]}).fetchall()
        keys = [p["posting_key"] for p in postings]
        log = cur.execute(POSTING_LOG, {"keys": keys, "shown": PAYLOAD_SHOWN_MAX}).fetchall() if keys else []
    for posting in postings:
        posting["log"] = [entry for entry in log if entry["posting_key"] == posting["posting_key"]]
    return ExceptionPage(detail, history, postings)
