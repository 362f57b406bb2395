"""What a person does to an exception from the workbench. Each action is one transaction: it changes the queue or
the outbox where it must, and the queue's trigger appends one row to ``recon.exception_events`` with who, when,
the action, the note and its detail (migrations 0017 and 0023). Nothing a person did is overwritten."""

from __future__ import annotations

import json
from typing import Any

import psycopg

from returns_recon.reconcile import queue
from returns_recon.states import CLOSED_STATES, OPEN_STATES

ACTIONS = ("acknowledge", "assign", "resolve", "reopen", "replay", "approve")
NOTE_MAX = 2000
NAME_MAX = 200


class ActionRefused(Exception):
    """The action does not apply to this exception or posting now; the message says why."""


def _text(value: str | None, what: str, limit: int, required: bool = False) -> str | None:
    value = (value or "").strip()
    if not value:
        if required:
            raise ActionRefused(f"{what} is required")
        return None
    if len(value) > limit:
        raise ActionRefused(f"{what} is longer than {limit} characters")
    if "\x00" in value:
        raise ActionRefused(f"{what} holds a NUL character")
    return value


def _as_person(conn: psycopg.Connection, actor: str, action: str, note: str | None, detail: dict[str, Any]) -> None:
    """Name the person, the action, the note and its detail for the trigger, for this transaction only."""
    conn.execute(
        "SELECT set_config('recon.changed_by', %(by)s, true), set_config('recon.change_note', %(note)s, true),"
        " set_config('recon.change_action', %(action)s, true), set_config('recon.change_detail', %(detail)s, true)",
        {"by": actor, "note": note or "", "action": action, "detail": json.dumps(detail) if detail else ""},
    )


def _state(conn: psycopg.Connection, key: str) -> tuple[str, str, dict[str, Any]]:
    """(state, type, evidence) of the exception, locked for this transaction."""
    row = conn.execute(
        "SELECT state, exception_type, evidence FROM recon.exceptions WHERE exception_key = %s FOR UPDATE", (key,)
    ).fetchone()
    if row is None:
        raise ActionRefused(f"no exception {key}")
    return row[0], row[1], row[2] or {}


def _actor(actor: str) -> str:
    name = _text(actor, "the person", NAME_MAX, required=True)
    assert name is not None
    return name


def _set_state(conn: psycopg.Connection, key: str, state: str, actor: str, note: str | None) -> None:
    conn.execute(queue.SET_STATE, {"state": state, "by": actor, "note": note, "key": key})


def acknowledge(conn: psycopg.Connection, key: str, actor: str, note: str | None = None) -> str:
    """Someone is on it: the exception stays open (acknowledged) and later runs keep that."""
    actor, note = _actor(actor), _text(note, "the note", NOTE_MAX)
    with conn.transaction():
        state, _, _ = _state(conn, key)
        if state not in OPEN_STATES:
            raise ActionRefused(f"{key} is {state}: re-open it first")
        _as_person(conn, actor, "acknowledge", note, {})
        _set_state(conn, key, "acknowledged", actor, note)
    return f"{key} acknowledged by {actor}"


def resolve(conn: psycopg.Connection, key: str, actor: str, reason: str | None) -> str:
    """Closed by a person, with the reason (required); the next run re-opens it if the gap is still there."""
    actor, reason = _actor(actor), _text(reason, "the reason", NOTE_MAX, required=True)
    with conn.transaction():
        state, _, _ = _state(conn, key)
        if state not in OPEN_STATES:
            raise ActionRefused(f"{key} is already {state}")
        _as_person(conn, actor, "resolve", reason, {})
        _set_state(conn, key, "resolved", actor, reason)
    return f"{key} resolved by {actor}"


def reopen(conn: psycopg.Connection, key: str, actor: str, note: str | None = None) -> str:
    """Back to open: a closed exception, or an acknowledged one nobody is working on any more."""
    actor, note = _actor(actor), _text(note, "the note", NOTE_MAX)
    with conn.transaction():
        state, _, _ = _state(conn, key)
        if state == "open":
            raise ActionRefused(f"{key} is already open")
        _as_person(conn, actor, "reopen", note, {})
        _set_state(conn, key, "open", actor, note)
    return f"{key} re-opened by {actor}"


def assign(conn: psycopg.Connection, key: str, actor: str, assignee: str | None, note: str | None = None) -> str:
    """Give the exception to a person (empty: to nobody); its state does not change."""
    actor, note = _actor(actor), _text(note, "the note", NOTE_MAX)
    assignee = _text(assignee, "the assignee", NAME_MAX)
    with conn.transaction():
        _state(conn, key)
        _as_person(conn, actor, "assign", note, {"assignee": assignee})
        conn.execute("UPDATE recon.exceptions SET assignee = %s WHERE exception_key = %s", (assignee, key))
    return f"{key} assigned to {assignee}" if assignee else f"{key} unassigned"


REPLAY = """
UPDATE recon.postings SET status = 'planned', updated_at = now()
WHERE posting_key = %(posting_key)s AND status = 'refused'
RETURNING posting_key
"""
LOG_REPLAY = """INSERT INTO recon.posting_log (posting_key, run_id, step, outcome, response)
VALUES (%(posting_key)s, 'workbench', 'outcome', 'planned', %(response)s)"""


def replay(conn: psycopg.Connection, key: str, posting_key: str, actor: str, note: str | None = None) -> str:
    """Send a refused posting again: back to planned in the outbox, sent by the next run after reading the
    target back (the executor's usual path); the refusal stays in ``recon.posting_log``."""
    actor, note = _actor(actor), _text(note, "the note", NOTE_MAX)
    with conn.transaction():
        _state(conn, key)
        row = conn.execute(
            "SELECT status, exception_key, return_id FROM recon.postings WHERE posting_key = %s FOR UPDATE",
            (posting_key,),
        ).fetchone()
        if row is None:
            raise ActionRefused(f"no posting {posting_key}")
        status, posting_exception, return_id = row
        owned = conn.execute(
            "SELECT 1 FROM recon.exceptions WHERE exception_key = %s AND (exception_key = %s OR return_id = %s)",
            (key, posting_exception, return_id),
        ).fetchone()
        if owned is None:
            raise ActionRefused(f"posting {posting_key} is not one of {key}'s")
        if status != "refused":
            raise ActionRefused(f"posting {posting_key} is {status}: only a refused posting is replayed")
        conn.execute(REPLAY, {"posting_key": posting_key})
        conn.execute(
            LOG_REPLAY,
            {"posting_key": posting_key, "response": json.dumps({"replay_requested_by": actor, "note": note})},
        )
        _as_person(conn, actor, "replay", note, {"posting_key": posting_key})
        conn.execute("UPDATE recon.exceptions SET state = state WHERE exception_key = %s", (key,))
    return f"posting {posting_key} will be sent again by the next run"


APPROVABLE = """
SELECT p.posting_key, p.status, p.payload ->> 'Status', p.amount, a.approved_by, a.approved_at
FROM recon.postings AS p LEFT JOIN recon.credit_note_approvals AS a USING (posting_key)
WHERE p.posting_key = %(posting_key)s AND p.action = 'create_credit_note'
"""


def approve(conn: psycopg.Connection, key: str, actor: str, note: str | None = None) -> str:
    """Approve our DRAFT credit note held above the approval threshold: the next run authorises it in Cin7 Core
    (action ``authorise_credit_note``), after which the exception closes itself."""
    actor, note = _actor(actor), _text(note, "the note", NOTE_MAX)
    with conn.transaction():
        state, kind, evidence = _state(conn, key)
        if kind != "credit_note_awaiting_approval":
            raise ActionRefused(f"{key} is not a credit note awaiting approval")
        if state in CLOSED_STATES:
            raise ActionRefused(f"{key} is {state}: nothing to approve")
        posting_key = str(evidence.get("posting_key") or "")
        row = conn.execute(APPROVABLE, {"posting_key": posting_key}).fetchone()
        if row is None or row[2] != "DRAFT" or row[1] not in ("done", "adopted"):
            raise ActionRefused(f"{key} names no DRAFT credit note of ours")
        if row[4] is not None:
            raise ActionRefused(f"already approved by {row[4]} at {row[5]:%Y-%m-%d %H:%M} UTC")
        conn.execute(
            "INSERT INTO recon.credit_note_approvals (posting_key, exception_key, approved_by, note)"
            " VALUES (%s, %s, %s, %s)",
            (posting_key, key, actor, note),
        )
        _as_person(conn, actor, "approve", note, {"posting_key": posting_key, "amount": str(row[3])})
        conn.execute("UPDATE recon.exceptions SET state = state WHERE exception_key = %s", (key,))
    return f"credit note approved by {actor}: the next run authorises it in Cin7 Core"
