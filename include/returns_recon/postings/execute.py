"""The executor: send planned postings under each system's budget, exactly once.

For every posting: log the request (committed) → read back from the target system by our
reference; if the document is there, adopt it → otherwise mark it ``sending`` (committed), send
once, and record the outcome. A timeout, 5xx or reset after sending leaves it ``ambiguous``: the
next attempt reads back first, so a document that was created is adopted, never created twice.
A kill between the call and the log update leaves ``sending``, handled the same way.

What is read back, prepared and sent is each action's (``postings/actions/``); this module holds the order
of the steps, the per-run safety valves and how each outcome is recorded.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import psycopg
from psycopg.rows import class_row

from returns_recon.apis.errors import ApiError, AuthError, TransientError
from returns_recon.errors import NotRetryable
from returns_recon.extract.run import Clients
from returns_recon.golive import accounts_of, held_systems
from returns_recon.postings.actions import REGISTRY, PostingAction
from returns_recon.postings.model import Context, Posting, Refused, Superseded
from returns_recon.postings.sale_view import SaleView
from returns_recon.settings import ReconSettings
from returns_recon.states import OPEN_STATES

log = logging.getLogger(__name__)
LOCK_KEY = 72_617_302
# Called between a write that went through and its log entry, with the posting written (the tests kill the
# process there, to show that a write whose outcome was never logged is adopted, not repeated).
AfterSend = Callable[[Posting], None]


class PostingsLocked(RuntimeError):
    """Another run is posting right now; runs never post concurrently."""


class QualityGateClosed(NotRetryable):
    """The data-quality checks of this run did not pass: nothing is posted."""


class CredentialsRefused(NotRetryable):
    """A system refused our credentials on a write: its postings stay pending for the next run."""


@dataclass
class ExecutionReport:
    done: int = 0
    adopted: int = 0
    ambiguous: int = 0
    refused: int = 0
    dry_run: int = 0
    skipped: int = 0
    held: int = 0  # postings to a system whose go-live check has not passed (docs/golive.md)
    superseded: int = 0  # not sent: the exception was resolved another way, or a person's document appeared
    pending_credentials: int = 0  # not sent: the system refused our credentials in this run
    details: list[dict[str, Any]] = field(default_factory=list)

    def count(self, outcome: str) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)

    def as_dict(self) -> dict[str, int]:
        return {k: v for k, v in self.__dict__.items() if k != "details"}


LOG = """INSERT INTO recon.posting_log (posting_key, run_id, step, outcome, request, response)
VALUES (%(posting_key)s, %(run_id)s, %(step)s, %(outcome)s, %(request)s, %(response)s)"""
SET_STATUS = """UPDATE recon.postings SET status = %(status)s, target_ref = coalesce(%(target_ref)s, target_ref),
  target_number = coalesce(%(target_number)s, target_number), last_error = %(error)s,
  attempts = attempts + %(attempts)s, last_run_id = %(run_id)s, updated_at = now()
WHERE posting_key = %(posting_key)s"""


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, default=str)


def _log(
    conn: psycopg.Connection,
    key: str,
    run_id: str,
    step: str,
    outcome: str | None = None,
    request: Any = None,
    response: Any = None,
) -> None:
    conn.execute(
        LOG,
        {
            "posting_key": key,
            "run_id": run_id,
            "step": step,
            "outcome": outcome,
            "request": _json(request),
            "response": _json(response),
        },
    )


def _set(
    conn: psycopg.Connection,
    key: str,
    run_id: str,
    status: str,
    target_ref: str | None = None,
    error: str | None = None,
    attempt: bool = False,
    target_number: str | None = None,
) -> None:
    conn.execute(
        SET_STATUS,
        {
            "status": status,
            "target_ref": target_ref,
            "target_number": target_number,
            "error": error,
            "attempts": 1 if attempt else 0,
            "run_id": run_id,
            "posting_key": key,
        },
    )


def quality_gate(conn: psycopg.Connection, run_id: str) -> None:
    checked, critical = conn.execute(
        """SELECT count(*) FILTER (WHERE suite <> 'location_map_csv'),
                  count(*) FILTER (WHERE NOT success AND severity = 'critical')
           FROM recon.dq_results WHERE run_id = %s""",
        (run_id,),
    ).fetchone() or (0, 0)
    if checked == 0 or critical > 0:
        raise QualityGateClosed(
            f"run {run_id}: the data-quality checks did not pass in this run ({checked} checked, "
            f"{critical} critical failures); nothing is posted"
        )


OUTBOX = """SELECT posting_key, action, system, exception_key, return_id, reference, payload, amount, status
FROM recon.postings
WHERE ((%(keys)s::text[] IS NULL AND status IN ('planned', 'ambiguous', 'sending', 'held'))
       OR posting_key = ANY(%(keys)s::text[]))
  AND (%(returns)s::text[] IS NULL OR return_id = ANY(%(returns)s::text[]))
ORDER BY planned_at, posting_key"""


@dataclass(frozen=True)
class NotSent:
    """A posting a safety valve keeps from being sent in this run, and how that is recorded."""

    outcome: str  # the report's count
    status: str  # the posting's status from now on
    logged: str  # the outcome in recon.posting_log
    error: str | None = None
    response: dict[str, str] | None = None


def not_sent_now(
    posting: Posting,
    settings: ReconSettings,
    held: Mapping[str, str],
    refused_credentials: Mapping[str, str],
    sent: int,
) -> NotSent | None:
    """Whether a per-run valve keeps the posting back: the dry run, the go-live hold (``held``: system -> why),
    credentials refused earlier in this run (system -> the error), the kill switch per system and the cap per
    run (``sent``: postings attempted so far). None: it is attempted now."""
    system = posting.system
    if settings.postings_dry_run:
        return NotSent("dry_run", "dry_run", "dry_run")
    if system in held:  # sent by a later run once the system's go-live check passes
        # an ambiguous or sending posting keeps its status: its next attempt must read back live
        return NotSent("held", _pending(posting.status), "held", f"held: {held[system]}", {"reason": held[system]})
    if system in refused_credentials:  # nothing more is sent with credentials just refused
        why = refused_credentials[system]
        return NotSent("pending_credentials", _pending(posting.status, "planned"), "pending", why, {"error": why})
    if system in settings.postings_disabled or sent >= settings.max_postings_per_run:
        why = "kill switch" if system in settings.postings_disabled else "cap per run reached"
        return NotSent("skipped", "skipped", "skipped", why, {"reason": why})
    return None


def _pending(status: str, otherwise: str = "held") -> str:
    """The status a posting keeps when it is not sent now: an earlier attempt may have reached the system,
    so an ambiguous or sending posting stays so (its next attempt reads back live)."""
    return status if status in ("ambiguous", "sending") else otherwise


def execute(
    conn: psycopg.Connection,
    clients: Clients,
    run_id: str,
    settings: ReconSettings,
    keys: list[str] | None = None,
    after_send: AfterSend | None = None,
    returns: Sequence[str] | None = None,
) -> ExecutionReport:
    """Send what is planned (or, for a replay, the given keys), under a run-level lock; only the postings of
    ``returns``, when given (the events DAG's).

    Raises ``CredentialsRefused`` at the end when a system refused our credentials: the postings to
    it stay pending (sent by the next run once the connection is fixed), the others went out."""
    (locked,) = conn.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,)).fetchone() or (False,)
    if not locked:
        raise PostingsLocked("another run holds the postings lock; try again when it has finished")
    report = ExecutionReport()
    refused_credentials: dict[str, str] = {}  # system -> the error naming its connection
    try:
        held = held_systems(conn, settings, accounts_of(clients))  # system -> why: its go-live check has not passed
        if clients.sitoo is None:
            held["sitoo"] = "this merchant has no Sitoo connection (no stores)"
        for system, why in held.items():
            log.warning("postings to %s are held: %s", system, why)
        with conn.cursor(row_factory=class_row(Posting)) as cur:
            outbox = {"keys": keys, "returns": None if returns is None else list(returns)}
            postings = cur.execute(OUTBOX, outbox).fetchall()
        run = Context(conn, clients, SaleView(conn, clients.cin7))  # this run's reads, shared by its postings
        sent = 0
        for p in postings:
            valve = not_sent_now(p, settings, held, refused_credentials, sent)
            if valve is not None:
                _set(conn, p.posting_key, run_id, valve.status, error=valve.error)
                request = p.payload if valve.outcome == "dry_run" else None
                _log(conn, p.posting_key, run_id, "outcome", valve.logged, request=request, response=valve.response)
                report.count(valve.outcome)
                continue
            sent += 1
            # an earlier attempt may have reached the system: read that posting's target live
            ctx = replace(run, live=p.status in ("ambiguous", "sending") or keys is not None)
            try:
                outcome = _attempt(ctx, run_id, p, REGISTRY[p.action], after_send)
            except AuthError as err:
                refused_credentials[p.system] = str(err)
                _set(conn, p.posting_key, run_id, _pending(p.status, "planned"), error=str(err))
                _log(conn, p.posting_key, run_id, "outcome", "pending", response={"error": str(err)})
                log.error("postings to %s stopped: %s", p.system, err)
                outcome = "pending_credentials"
            report.count(outcome)
            report.details.append({"posting_key": p.posting_key, "action": p.action, "outcome": outcome})
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
    log.info("postings: %s", report.as_dict())
    if refused_credentials:
        raise CredentialsRefused(
            "credentials refused on a write, postings left pending and sent by the next run once fixed: "
            + "; ".join(refused_credentials.values())
        )
    return report


def _still_open(conn: psycopg.Connection, exception_key: str) -> str | None:
    """None while the exception a posting fixes is open; else why the posting is no longer needed."""
    row = conn.execute("SELECT state FROM recon.exceptions WHERE exception_key = %s", (exception_key,)).fetchone()
    if row is None:
        return "the exception it fixes is gone"
    return None if row[0] in OPEN_STATES else f"the exception it fixes is {row[0]}"


def _attempt(ctx: Context, run_id: str, p: Posting, action: PostingAction, after_send: AfterSend | None) -> str:
    """One posting: read back (adopt) → re-check its reason → prepare (re-reads the target) → send."""
    conn, key = ctx.conn, p.posting_key
    _log(conn, key, run_id, "request", request=p.payload)
    try:
        found = action.read_back(ctx, p)
    except AuthError:
        raise
    except (TransientError, ApiError) as err:
        _set(conn, key, run_id, "ambiguous", error=f"read-back failed: {err}")
        _log(conn, key, run_id, "outcome", "ambiguous", response={"error": str(err)})
        return "ambiguous"
    if found.target_ref is not None:
        _set(conn, key, run_id, "adopted", target_ref=found.target_ref)
        _log(conn, key, run_id, "read_back", "adopted", response={"found": found.target_ref})
        return "adopted"
    try:
        gone = _still_open(conn, p.exception_key)
        if gone:
            raise Superseded(gone)
        blocker = action.blocker(ctx, p)
        if blocker:  # as the planner sets it aside: re-planned once nothing blocks it
            _set(conn, key, run_id, "skipped", error=f"blocked: open {blocker}")
            _log(conn, key, run_id, "outcome", "skipped", response={"reason": f"blocked: open {blocker}"})
            return "skipped"
        body = action.prepare(ctx, p, found)
    except Superseded as why:
        return _supersede(conn, key, run_id, p.return_id, why.reason)
    except Refused as refusal:
        return _refuse(conn, key, run_id, p.return_id, refusal.reason)
    except AuthError:
        raise
    except (TransientError, ApiError) as err:  # its reads failed: nothing was sent, try again next run
        _set(conn, key, run_id, "ambiguous", error=f"prepare failed: {err}")
        _log(conn, key, run_id, "outcome", "ambiguous", response={"error": str(err)})
        return "ambiguous"
    _set(conn, key, run_id, "sending", attempt=True)
    try:
        response = action.send(ctx, p, body)
    except AuthError:  # refused before it was processed: the posting is as it was
        raise
    except TransientError as err:
        _set(conn, key, run_id, "ambiguous", error=str(err))
        _log(conn, key, run_id, "outcome", "ambiguous", request=body, response={"error": str(err)})
        return "ambiguous"
    except ApiError as err:
        return _refuse(conn, key, run_id, p.return_id, str(err))
    if after_send is not None:
        after_send(p)
    created = action.sent(response)
    _set(conn, key, run_id, "done", target_ref=created.target_ref, target_number=created.target_number)
    _log(conn, key, run_id, "response", "done", request=body, response=response)
    return "done"


def _supersede(conn: psycopg.Connection, key: str, run_id: str, return_id: str, reason: str) -> str:
    _set(conn, key, run_id, "superseded", error=reason)
    _log(conn, key, run_id, "outcome", "superseded", response={"reason": reason})
    log.info("posting %s for return %s not sent: %s", key, return_id, reason)
    return "superseded"


def _refuse(conn: psycopg.Connection, key: str, run_id: str, return_id: str, reason: str) -> str:
    _set(conn, key, run_id, "refused", error=reason)
    _log(conn, key, run_id, "outcome", "refused", response={"reason": reason})
    log.warning("posting %s for return %s refused: %s", key, return_id, reason)
    return "refused"
