"""A DRAFT credit note of ours held above the value threshold, approved by a person in the workbench: the next run
authorises it in Cin7 Core (``authorise_credit_note``: a POST naming the DRAFT's TaskID, apib L24691), exactly once,
and the reconciliation after it closes ``credit_note_awaiting_approval`` by itself. Without an approval nothing is
authorised; a note a person voided since the approval is refused for finance (``posting_refused``). A clean
generated scenario with one refund whose credit note is missing, served by the simulators over HTTP and run
through the real pipeline."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from returns_recon.postings.actions.credit_note import ZERO_GUID
from returns_recon.postings.execute import execute
from returns_recon.postings.plan import plan
from returns_recon.workbench.actions import approve
from tests.fixtures.contract import check
from tests.fixtures.pipeline import SETTINGS, cycle
from tests.integration.test_credit_note_attribution import clean, save, single_refunded_return

pytestmark = pytest.mark.integration

# every credit note we create above 1.00 is left DRAFT for a person's approval
LOW = SETTINGS.model_copy(update={"credit_note_approval_threshold": Decimal("1.00")})
PERSON = "Ada Finance"


def missing_note(tmp_path: Path, seed: int) -> tuple[Path, dict, dict]:
    """A clean scenario but for one refunded store return whose credit note is missing; its return and sale."""
    path, doc = clean(tmp_path, seed)
    ret, sale = single_refunded_return(doc, kind="store")
    sale["CreditNotes"] = [n for n in sale["CreditNotes"] if n["Memo"] != f"reveni:{ret['id']}"]
    return save(path, doc), ret, sale


def our_notes(simulators, sale_id: str, return_id: str) -> list[dict]:
    return [n for n in simulators.credit_notes(sale_id) if n.get("Memo") == f"reveni:{return_id}"]


def note_posts(simulators) -> list[dict]:
    """The credit-note POSTs the simulator answered since the journal was cleared."""
    return [
        r
        for r in simulators.journal_records()
        if r["service"] == "cin7" and r["method"] == "POST" and r["endpoint"] == "sale/creditnote"
    ]


def exception(db, key: str) -> tuple | None:
    with db.connect() as conn:
        return conn.execute(
            "SELECT state, fixed_by_posting, evidence FROM recon.exceptions WHERE exception_key = %s", (key,)
        ).fetchone()


def postings(db, return_id: str) -> dict[str, tuple]:
    """action -> (posting key, status, last error, target ref) of the return's postings."""
    with db.connect() as conn:
        rows = conn.execute(
            "SELECT action, posting_key, status, last_error, target_ref FROM recon.postings WHERE return_id = %s",
            (return_id,),
        ).fetchall()
    return {action: rest for action, *rest in rows}


def drafted_and_awaiting(simulators, clients, db, path: Path, ret: dict, sale: dict, run: str) -> tuple[str, dict]:
    """Run 1 posts our credit note as DRAFT; run 2 raises credit_note_awaiting_approval and authorises nothing.
    The exception's key and our DRAFT note."""
    rid = ret["id"]
    first = cycle(db, clients, path, f"{run}-1", LOW)
    assert first is not None
    assert (first.done, first.refused) == (1, 0)
    (drafted,) = our_notes(simulators, sale["ID"], rid)
    assert drafted["Status"] == "DRAFT"
    key = f"credit_note_awaiting_approval:{rid}"
    # without an approval a further run leaves it DRAFT: the exception is raised for a person, nothing is planned
    second = cycle(db, clients, path, f"{run}-2", LOW)
    assert second is not None
    assert (second.done, second.adopted, second.refused) == (0, 0, 0)
    found = exception(db, key)
    assert found is not None
    assert found[0] == "open"
    create_key = postings(db, rid)["create_credit_note"][0]
    assert found[2]["posting_key"] == create_key
    assert found[2]["task_id"] == drafted["TaskID"]
    assert "authorise_credit_note" not in postings(db, rid)
    assert [n["Status"] for n in our_notes(simulators, sale["ID"], rid)] == ["DRAFT"]
    return key, drafted


def test_an_approved_draft_is_authorised_once_by_the_next_run(
    simulators, clients_for, warehouse_db, tmp_path: Path
) -> None:
    path, ret, sale = missing_note(tmp_path, 1701)
    rid = ret["id"]
    simulators.load(path)
    clients = clients_for()
    simulators.journal(enabled=True, clear=True)
    try:
        key, drafted = drafted_and_awaiting(simulators, clients, warehouse_db, path, ret, sale, "appr")
        (draft_post,) = note_posts(simulators)
        assert (draft_post["request_body"]["TaskID"], draft_post["request_body"]["Status"]) == (ZERO_GUID, "DRAFT")

        # a person approves it in the workbench
        with psycopg.connect(warehouse_db.url, autocommit=True) as conn:
            approve(conn, key, PERSON, "checked against ticket 5120")
            events = conn.execute(
                "SELECT changed_by, action, note, detail FROM recon.exception_events WHERE exception_key = %s "
                "AND action = 'approve'",
                (key,),
            ).fetchall()
        create_key = postings(warehouse_db, rid)["create_credit_note"][0]
        assert len(events) == 1
        assert events[0][:3] == (PERSON, "approve", "checked against ticket 5120")
        assert events[0][3]["posting_key"] == create_key

        # the next run authorises that very note: one POST naming its TaskID, as the vendor documents it
        simulators.journal(clear=True)
        third = cycle(warehouse_db, clients, path, "appr-3", LOW)
        assert third is not None
        assert (third.done, third.refused) == (1, 0)
        assert [d["action"] for d in third.details if d["outcome"] == "done"] == ["authorise_credit_note"]
        (authorised,) = our_notes(simulators, sale["ID"], rid)
        assert (authorised["TaskID"], authorised["Status"]) == (drafted["TaskID"], "AUTHORISED")
        assert authorised["CreditNoteNumber"] == drafted["CreditNoteNumber"]
        (post,) = note_posts(simulators)
        assert post["status"] == 200
        assert (post["request_body"]["TaskID"], post["request_body"]["Status"]) == (drafted["TaskID"], "AUTHORISED")
        assert post["request_body"]["Memo"] == f"reveni:{rid}"
        assert check(post) == []  # the POST model of the contract (apib L24578-L24591)
        auth_key, status, error, target = postings(warehouse_db, rid)["authorise_credit_note"]
        assert (status, error, target) == ("done", None, drafted["TaskID"])

        # planning and executing again sends nothing: done stays done; a replay reads back and adopts
        simulators.journal(clear=True)
        with psycopg.connect(warehouse_db.url, autocommit=True) as conn:
            plan(conn, "appr-3b", LOW)
            again = execute(conn, clients, "appr-3b", LOW)
            replayed = execute(conn, clients, "appr-3c", LOW, keys=[auth_key])
        assert (again.done, again.adopted) == (0, 0)
        assert (replayed.done, replayed.adopted) == (0, 1)
        assert note_posts(simulators) == []

        # the following reconciliation closes the exception by itself, fixed by the authorisation
        fourth = cycle(warehouse_db, clients, path, "appr-4", LOW)
        assert fourth is not None
        assert (fourth.done, fourth.refused) == (0, 0)
        assert note_posts(simulators) == []
    finally:
        simulators.journal(enabled=False, clear=True)
    state, fixed_by, evidence = exception(warehouse_db, key)  # type: ignore[misc]
    assert (state, fixed_by) == ("auto_resolved", auth_key)
    assert evidence["fixed_by_action"] == "authorise_credit_note"
    refund = exception(warehouse_db, f"refund_without_credit_note:{rid}")
    assert refund is not None
    assert refund[:2] == ("auto_resolved", create_key)
    with warehouse_db.connect() as conn:
        still_open = conn.execute(
            "SELECT exception_key FROM recon.exceptions WHERE return_id = %s AND recon.is_open(state)", (rid,)
        ).fetchall()
        history = conn.execute(
            "SELECT changed_by, action, to_state FROM recon.exception_events WHERE exception_key = %s "
            "ORDER BY event_id",
            (key,),
        ).fetchall()
    assert still_open == [], "our authorised note is attributed by its memo: nothing new is raised"
    assert history[0] == ("pipeline", None, "open")
    assert (PERSON, "approve", "open") in history
    assert history[-1] == ("pipeline", None, "auto_resolved")


def test_a_draft_voided_by_a_person_after_the_approval_is_refused(
    simulators, clients_for, warehouse_db, tmp_path: Path
) -> None:
    path, ret, sale = missing_note(tmp_path, 1702)
    rid = ret["id"]
    simulators.load(path)
    clients = clients_for()
    key, drafted = drafted_and_awaiting(simulators, clients, warehouse_db, path, ret, sale, "void")
    with psycopg.connect(warehouse_db.url, autocommit=True) as conn:
        approve(conn, key, PERSON)
    # finance voids our DRAFT in Cin7 Core before the next run
    sale["CreditNotes"] = [*sale["CreditNotes"], {**drafted, "Status": "VOIDED"}]
    simulators.upsert("cin7.sales", sale)

    simulators.journal(enabled=True, clear=True)
    try:
        third = cycle(warehouse_db, clients, path, "void-3", LOW)
        posts = note_posts(simulators)
    finally:
        simulators.journal(enabled=False, clear=True)
    assert third is not None
    assert (third.done, third.refused) == (0, 1)
    assert posts == [], "nothing was sent to the voided note"
    _, status, error, _ = postings(warehouse_db, rid)["authorise_credit_note"]
    assert status == "refused"
    assert f"{drafted['CreditNoteNumber']} was VOIDED in Cin7 Core by a person after it was approved" in error
    assert [n["Status"] for n in our_notes(simulators, sale["ID"], rid)] == ["VOIDED"]

    # the refusal is raised for finance by the next reconciliation, and the refused posting is not sent again
    fourth = cycle(warehouse_db, clients, path, "void-4", LOW)
    assert fourth is not None
    assert (fourth.done, fourth.refused) == (0, 0)
    refused = exception(warehouse_db, f"posting_refused:{rid}")
    assert refused is not None
    assert refused[0] == "open"
    assert refused[2]["action"] == "authorise_credit_note"
    assert "VOIDED" in refused[2]["reason"]
