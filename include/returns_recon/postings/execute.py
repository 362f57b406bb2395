"""The executor: send planned postings under each system's budget, exactly once.

For every posting: log the request (committed) → read back from the target system by our
reference; if the document is there, adopt it → otherwise mark it ``sending`` (committed), send
once, and record the outcome. A timeout, 5xx or reset after sending leaves it ``ambiguous``: the
next attempt reads back first, so a document that was created is adopted, never created twice.
A kill between the call and the log update leaves ``sending``, handled the same way.
"""

from __future__ import annotations

import json
import logging
import os
import signal
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import psycopg

from returns_recon.apis.errors import ApiError, AuthError, TransientError
from returns_recon.errors import NotRetryable
from returns_recon.extract.run import Clients
from returns_recon.postings.plan import UNATTRIBUTED_SALES
from returns_recon.postings.sale_view import SaleView
from returns_recon.settings import ReconSettings

log = logging.getLogger(__name__)
LOCK_KEY = 72_617_302
OPEN_STATES = ("open", "acknowledged")


class PostingsLocked(RuntimeError):
    """Another run is posting right now; runs never post concurrently."""


class QualityGateClosed(NotRetryable):
    """The data-quality checks of this run did not pass: nothing is posted."""


class Refused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


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

    def as_dict(self) -> dict[str, int]:
        return {k: v for k, v in self.__dict__.items() if k != "details"}


def _log(conn: psycopg.Connection, key: str, run_id: str, step: str, outcome: str | None = None,
         request: Any = None, response: Any = None) -> None:  # fmt: skip
    conn.execute(
        "INSERT INTO recon.posting_log (posting_key, run_id, step, outcome, request, response) "
        "VALUES (%s, %s, %s, %s, %s, %s)",
        (key, run_id, step, outcome, None if request is None else json.dumps(request, default=str),
         None if response is None else json.dumps(response, default=str)),
    )  # fmt: skip


def _set(conn: psycopg.Connection, key: str, run_id: str, status: str, target_ref: str | None = None,
         error: str | None = None, attempt: bool = False, target_number: str | None = None) -> None:  # fmt: skip
    conn.execute(
        """UPDATE recon.postings SET status = %s, target_ref = coalesce(%s, target_ref),
             target_number = coalesce(%s, target_number), last_error = %s,
             attempts = attempts + %s, last_run_id = %s, updated_at = now() WHERE posting_key = %s""",
        (status, target_ref, target_number, error, 1 if attempt else 0, run_id, key),
    )


def quality_gate(conn: psycopg.Connection, run_id: str) -> None:
    row = conn.execute(
        """SELECT count(*) FILTER (WHERE suite <> 'location_map_csv'),
                  count(*) FILTER (WHERE NOT success AND severity = 'critical')
           FROM recon.dq_results WHERE run_id = %s""",
        (run_id,),
    ).fetchone()
    if row[0] == 0 or row[1] > 0:
        raise QualityGateClosed(
            f"run {run_id}: the data-quality checks did not pass in this run ({row[0]} checked, "
            f"{row[1]} critical failures); nothing is posted"
        )


class CredentialsRefused(NotRetryable):
    """A system refused our credentials on a write: its postings stay pending for the next run."""


class Superseded(Exception):
    """The reason for a posting is gone: a person (or a later run) fixed it another way."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Posting:
    key: str
    action: str
    system: str
    exception_key: str
    return_id: str
    reference: str
    payload: dict
    amount: Any
    status: str


OUTBOX = """SELECT posting_key, action, system, exception_key, return_id, reference, payload, amount, status
FROM recon.postings
WHERE (%(keys)s::text[] IS NULL AND status IN ('planned', 'ambiguous', 'sending', 'held'))
   OR posting_key = ANY(%(keys)s::text[])
ORDER BY planned_at, posting_key"""


def execute(conn: psycopg.Connection, clients: Clients, run_id: str, settings: ReconSettings,
            keys: list[str] | None = None) -> ExecutionReport:  # fmt: skip
    """Send what is planned (or, for a replay, the given keys), under a run-level lock.

    Raises ``CredentialsRefused`` at the end when a system refused our credentials: the postings to
    it stay pending (sent by the next run once the connection is fixed), the others went out."""
    from returns_recon.golive import accounts_of, held_systems

    if not conn.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,)).fetchone()[0]:
        raise PostingsLocked("another run holds the postings lock; try again when it has finished")
    report = ExecutionReport()
    refused_credentials: dict[str, str] = {}  # system -> the error naming its connection
    try:
        held = held_systems(conn, settings, accounts_of(clients))  # system -> why: its go-live check has not passed
        for system, why in held.items():
            log.warning("postings to %s are held: %s", system, why)
        postings = [Posting(*row) for row in conn.execute(OUTBOX, {"keys": keys}).fetchall()]
        sent = 0
        view = SaleView(conn, clients.cin7)
        for p in postings:
            if settings.postings_dry_run:
                _set(conn, p.key, run_id, "dry_run")
                _log(conn, p.key, run_id, "outcome", "dry_run", request=p.payload)
                report.dry_run += 1
                continue
            if p.system in held:  # sent by a later run once the system's go-live check passes
                # an ambiguous or sending posting keeps its status: its next attempt must read back live
                _set(conn, p.key, run_id, _pending(p.status), error=f"held: {held[p.system]}")
                _log(conn, p.key, run_id, "outcome", "held", response={"reason": held[p.system]})
                report.held += 1
                continue
            if p.system in refused_credentials:  # nothing more is sent with credentials just refused
                _set(conn, p.key, run_id, _pending(p.status, "planned"), error=refused_credentials[p.system])
                _log(conn, p.key, run_id, "outcome", "pending", response={"error": refused_credentials[p.system]})
                report.pending_credentials += 1
                continue
            if p.system in settings.postings_disabled or sent >= settings.max_postings_per_run:
                why = "kill switch" if p.system in settings.postings_disabled else "cap per run reached"
                _set(conn, p.key, run_id, "skipped", error=why)
                _log(conn, p.key, run_id, "outcome", "skipped", response={"reason": why})
                report.skipped += 1
                continue
            sent += 1
            # an earlier attempt may have reached the system: read that posting's target live
            ctx = Context(clients, view, live=p.status in ("ambiguous", "sending") or keys is not None, conn=conn)
            try:
                outcome = _one(conn, ctx, run_id, p)
            except AuthError as err:
                refused_credentials[p.system] = str(err)
                _set(conn, p.key, run_id, _pending(p.status, "planned"), error=str(err))
                _log(conn, p.key, run_id, "outcome", "pending", response={"error": str(err)})
                log.error("postings to %s stopped: %s", p.system, err)
                outcome = "pending_credentials"
            setattr(report, outcome, getattr(report, outcome) + 1)
            report.details.append({"posting_key": p.key, "action": p.action, "outcome": outcome})
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
    log.info("postings: %s", report.as_dict())
    if refused_credentials:
        raise CredentialsRefused(
            "credentials refused on a write, postings left pending and sent by the next run once fixed: "
            + "; ".join(refused_credentials.values())
        )
    return report


def _pending(status: str, otherwise: str = "held") -> str:
    """The status a posting keeps when it is not sent now: an earlier attempt may have reached the system,
    so an ambiguous or sending posting stays so (its next attempt reads back live)."""
    return status if status in ("ambiguous", "sending") else otherwise


@dataclass
class Context:
    clients: Clients
    view: SaleView
    live: bool = False
    conn: psycopg.Connection | None = None


def _still_open(conn: psycopg.Connection, exception_key: str) -> str | None:
    """None while the exception a posting fixes is open; else why the posting is no longer needed."""
    row = conn.execute("SELECT state FROM recon.exceptions WHERE exception_key = %s", (exception_key,)).fetchone()
    if row is None:
        return "the exception it fixes is gone"
    return None if row[0] in OPEN_STATES else f"the exception it fixes is {row[0]}"


BLOCKED_CREDIT_NOTE = f"""WITH {UNATTRIBUTED_SALES}
SELECT string_agg(DISTINCT b.exception_key, ', ') FROM unattributed_sales b
JOIN staging.stg_reveni__returns r ON coalesce(r.order_external_id, '') = b.order_ref
WHERE r.return_id = %(return_id)s"""


def _blocked(conn: psycopg.Connection, p: Posting) -> str | None:
    """An exception opened since the plan that blocks this posting (an unattributed credit note on the sale
    blocks our credit note: operating-model.md §3), else None."""
    if p.action != "create_credit_note":
        return None
    return conn.execute(BLOCKED_CREDIT_NOTE, {"return_id": p.return_id}).fetchone()[0]


def _one(conn: psycopg.Connection, ctx: Context, run_id: str, p: Posting) -> str:
    """One posting: read back (adopt) → re-check its reason → prepare (re-reads the target) → send."""
    handler = HANDLERS[p.action]
    key = p.key
    _log(conn, key, run_id, "request", request=p.payload)
    try:
        existing = handler.read_back(ctx, p.payload, p.reference)
    except AuthError:
        raise
    except (TransientError, ApiError) as err:
        _set(conn, key, run_id, "ambiguous", error=f"read-back failed: {err}")
        _log(conn, key, run_id, "outcome", "ambiguous", response={"error": str(err)})
        return "ambiguous"
    if existing is not None:
        _set(conn, key, run_id, "adopted", target_ref=existing)
        _log(conn, key, run_id, "read_back", "adopted", response={"found": existing})
        return "adopted"
    try:
        gone = _still_open(conn, p.exception_key)
        if gone:
            raise Superseded(gone)
        blocker = _blocked(conn, p)
        if blocker:  # as the planner sets it aside: re-planned once nothing blocks it
            _set(conn, key, run_id, "skipped", error=f"blocked: open {blocker}")
            _log(conn, key, run_id, "outcome", "skipped", response={"reason": f"blocked: open {blocker}"})
            return "skipped"
        body = handler.prepare(ctx, p.payload)
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
    if "SaleID" in p.payload:
        ctx.view.written(p.payload["SaleID"])
    try:
        response = handler.send(ctx.clients, body)
    except AuthError:  # refused before it was processed: the posting is as it was
        raise
    except TransientError as err:
        _set(conn, key, run_id, "ambiguous", error=str(err))
        _log(conn, key, run_id, "outcome", "ambiguous", request=body, response={"error": str(err)})
        return "ambiguous"
    except ApiError as err:
        return _refuse(conn, key, run_id, p.return_id, str(err))
    after_send_hook()
    target, number = handler.target_ref(response), handler.target_number(response)
    _set(conn, key, run_id, "done", target_ref=target, target_number=number)
    _log(conn, key, run_id, "response", "done", request=body, response=response)
    if p.action == "create_credit_note" and body.get("Status") == "DRAFT":
        log.warning("credit note for return %s (%s) is above the approval threshold: posted as DRAFT", p.return_id,
                    p.amount)  # fmt: skip
    return "done"


def after_send_hook() -> None:
    """Between a write and its log entry. The fault suite kills the process here (its environment sets
    RECON_FAULT_KILL_AFTER_SEND=1) to prove a write whose outcome was never logged is adopted, not repeated."""
    if os.environ.get("RECON_FAULT_KILL_AFTER_SEND") == "1":
        os.kill(os.getpid(), signal.SIGKILL)


def _supersede(conn, key: str, run_id: str, return_id: str, reason: str) -> str:
    _set(conn, key, run_id, "superseded", error=reason)
    _log(conn, key, run_id, "outcome", "superseded", response={"reason": reason})
    log.info("posting %s for return %s not sent: %s", key, return_id, reason)
    return "superseded"


def _refuse(conn, key: str, run_id: str, return_id: str, reason: str) -> str:
    _set(conn, key, run_id, "refused", error=reason)
    _log(conn, key, run_id, "outcome", "refused", response={"reason": reason})
    log.warning("posting %s for return %s refused: %s", key, return_id, reason)
    return "refused"


# --- per action: read back, prepare, send -----------------------------------------------------------


# apib L24578-L24591: the fields a credit-note POST reads; L30638: those of a restock line
RESTOCK_LINE_FIELDS = ("ProductID", "SKU", "Name", "Location", "LocationID", "Quantity", "BatchSN", "ExpiryDate",
                       "RestockLocation", "RestockLocationID", "RestockDate")  # fmt: skip
WRITABLE_NOTE_STATUSES = ("DRAFT", "NOT AVAILABLE")
REFERENCE_PREFIX = (
    "reveni:"  # our memo and references: reveni:<return>[:<item>]  # apib L24689: a POST to any other is refused
)


class CreateCreditNote:
    """The credit note of a refunded return, with the restock lines of the units already back (in the
    same POST: Cin7 Core refuses changes to an authorised note). Read back through the ``SaleView``:
    the stored copy when it is known current, else live ``GET /sale/creditnote``."""

    def read_back(self, ctx: Context, payload: dict, reference: str) -> str | None:
        note = self._ours(ctx, payload["SaleID"], reference)
        self._existing = None
        if note and (note.get("Status") == "AUTHORISED" or (payload["Status"] == "DRAFT" and note.get("Lines"))):
            return note["TaskID"]
        self._existing = note
        return None

    def prepare(self, ctx: Context, payload: dict) -> dict:
        note = getattr(self, "_existing", None)
        self._no_new_note_by_hand(ctx, payload["SaleID"])
        if note is None:
            sale = ctx.view.sale(payload["SaleID"], live=ctx.live)
            if sale.get("Type") == "Simple Sale" and (sale.get("CreditNotes") or ctx.view.credit_notes(
                    payload["SaleID"], ctx.live)):  # fmt: skip
                raise Refused("the sale is a Simple Sale that already has a credit note; Cin7 Core allows one")
            return payload
        if note.get("Status") not in WRITABLE_NOTE_STATUSES:
            raise Refused(f"our credit note {note.get('CreditNoteNumber')} is {note.get('Status')}; "
                          "Cin7 Core refuses a change to it")  # fmt: skip
        # complete our DRAFT rather than add a second note; restock lines already drafted on it stay
        body = {**payload, "TaskID": note["TaskID"]}
        drafted = [{k: v for k, v in line.items() if k in RESTOCK_LINE_FIELDS} for line in note.get("Restock") or []]
        if drafted:
            body["Restock"] = drafted
        return body

    @staticmethod
    def _no_new_note_by_hand(ctx: Context, sale_id: str) -> None:
        """A note without our memo that the reconciliation has not seen yet (a person's, made since the plan):
        whether it credits this return is for the next reconciliation to say (attributed, or
        ``unattributed_credit_note``); crediting now could credit the customer twice."""
        seen = {row[0] for row in ctx.conn.execute(
            "SELECT task_id FROM staging.stg_cin7__credit_notes WHERE sale_id = %s", (sale_id,))}  # fmt: skip
        for note in ctx.view.credit_notes(sale_id, live=ctx.live):
            memo = str(note.get("Memo") or "")
            if (
                not memo.startswith(REFERENCE_PREFIX)
                and note.get("Status") != "VOIDED"
                and note.get("TaskID") not in seen
            ):
                raise Superseded(f"credit note {note.get('CreditNoteNumber') or note.get('TaskID')} "
                                 f"({note.get('Status')}) was added to the sale by hand since the plan")  # fmt: skip

    @staticmethod
    def _ours(ctx: Context, sale_id: str, reference: str) -> dict | None:
        notes = ctx.view.credit_notes(sale_id, live=ctx.live)
        return next((n for n in notes if n.get("Memo") == reference), None)

    @staticmethod
    def send(clients: Clients, body: dict) -> Any:
        return clients.cin7.send("POST", "sale/creditnote", json_body=body, label="sale/creditnote")

    @staticmethod
    def _created(response: Any) -> dict:
        """The note in the documented answer ``{SaleID, CreditNotes: [...]}`` (apib L24750)."""
        notes = response.get("CreditNotes") if isinstance(response, dict) else None
        return notes[0] if isinstance(notes, list) and notes and isinstance(notes[0], dict) else {}

    def target_ref(self, response: Any) -> str | None:
        return self._created(response).get("TaskID")

    def target_number(self, response: Any) -> str | None:
        return self._created(response).get("CreditNoteNumber")


class Transfer:
    """Transfers carry a reference only this executor mints ('reveni:<return>:<item> ...').
    ``stockTransferList`` does not search ``Reference`` (apib L26299): a transfer never attempted is
    looked up in this run's extracted copy of the whole list; one with an earlier attempt (or a
    replay) in a live read of the whole list, matched on our side, once per executor run."""

    @staticmethod
    def read_back(ctx: Context, payload: dict, reference: str) -> str | None:
        if not ctx.live:
            row = ctx.view.transfer(payload["Reference"])
            if row is not None or ctx.view.transfers_extracted():
                return row
        return ctx.view.live_transfers().get(payload["Reference"])

    @staticmethod
    def prepare(ctx: Context, payload: dict) -> dict:
        """Re-read the transfers (live, once per executor run, after the plan): one referencing this item that
        the reconciliation has not seen (a person's, made since the plan) means the move may be done."""
        item = payload["Reference"].split(" ")[0]
        seen = {row[0] for row in ctx.conn.execute(
            "SELECT task_id FROM staging.stg_cin7__stock_transfers WHERE split_part(reference, ' ', 1) = %s",
            (item,))}  # fmt: skip
        for reference, task_id in ctx.view.live_transfers().items():
            if reference.split(" ")[0] == item and reference != payload["Reference"] and task_id not in seen:
                raise Superseded(f"transfer {task_id} ({reference}) was made by hand since the plan")
        return payload

    @staticmethod
    def send(clients: Clients, body: dict) -> Any:
        return clients.cin7.send("POST", "stockTransfer", json_body=body, label="stockTransfer")

    @staticmethod
    def target_ref(response: Any) -> str | None:
        return response.get("TaskID") if isinstance(response, dict) else None

    @staticmethod
    def target_number(response: Any) -> str | None:
        return response.get("Number") if isinstance(response, dict) else None


class SitooStoreStock:
    @staticmethod
    def read_back(ctx: Context, payload: dict, reference: str) -> str | None:
        clients = ctx.clients
        since = datetime.fromisoformat(payload["not_before"]) - timedelta(days=1)
        path = f"sites/{clients.sitoo_site_id}/warehousetransactions.json"
        start = 0
        while True:
            body = clients.sitoo.get(path, {"warehouseid": payload["warehouseid"], "sort": "warehousetransactionid",
                                            "datecreatedfrom": int(since.timestamp()), "start": start, "num": 1000},
                                     label="warehousetransactions")  # fmt: skip
            for txn in body.get("items") or []:
                if txn.get("externalid") == reference:
                    return str(txn["warehousetransactionid"])
            start += 1000
            if start >= int(body.get("totalcount") or 0):
                return None

    @staticmethod
    def prepare(ctx: Context, payload: dict) -> list[dict]:
        return [{k: v for k, v in payload.items() if k != "not_before"}]

    @staticmethod
    def send(clients: Clients, body: list[dict]) -> Any:
        path = f"sites/{clients.sitoo_site_id}/warehousetransactions.json"
        response = clients.sitoo.send("POST", path, json_body=body, label="warehousetransactions")
        return bulk_element(response)

    @staticmethod
    def target_ref(response: Any) -> str | None:
        return str(response) if isinstance(response, int) else None

    @staticmethod
    def target_number(response: Any) -> str | None:
        return None


def bulk_element(response: Any) -> Any:
    """The answer to a one-element Sitoo write: a bare id, or a batch envelope ``[{statuscode, return}]``
    (schemas/batchResponse.yaml). An element's 5xx or 429 is transient, like the same status on the call:
    the posting is left ambiguous and its next attempt reads back first; any other non-2xx is final."""
    if not isinstance(response, list) or not response or not isinstance(response[0], dict):
        return response
    element = response[0]
    status = int(element.get("statuscode") or 0)
    if 200 <= status < 300:
        return element.get("return")
    if status == 429 or status >= 500:
        raise TransientError(f"sitoo answered {status} for the element: {str(element.get('return'))[:200]}")
    raise ApiError("sitoo", status, str(element.get("return")))


class SitooReturnRecord:
    @staticmethod
    def read_back(ctx: Context, payload: dict, reference: str) -> str | None:
        body = ctx.clients.sitoo.get("orders.json", {"externalid": reference, "num": 10}, label="orders")
        items = body.get("items") or []
        return str(items[0]["orderid"]) if items else None

    @staticmethod
    def prepare(ctx: Context, payload: dict) -> dict:
        return payload

    @staticmethod
    def send(clients: Clients, body: dict) -> Any:
        return clients.sitoo.send("POST", f"sites/{clients.sitoo_site_id}/orders.json", json_body=body, label="orders")

    @staticmethod
    def target_ref(response: Any) -> str | None:
        return str(response) if isinstance(response, int) else None

    @staticmethod
    def target_number(response: Any) -> str | None:
        return None


HANDLERS: dict[str, Any] = {
    "create_credit_note": CreateCreditNote(),
    "transfer_to_sellable": Transfer(),
    "transfer_to_holding": Transfer(),
    "sitoo_store_stock": SitooStoreStock(),
    "sitoo_return_record": SitooReturnRecord(),
}
