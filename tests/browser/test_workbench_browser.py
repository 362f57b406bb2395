"""The exception workbench in the real Airflow UI, in Chromium: the queue in the UI's frame, a filter, an
exception's page, acknowledging, approving a DRAFT credit note held above the threshold, and a read-only user
refused. Set ``WORKBENCH_SCREENSHOTS=docs/images`` to refresh the README's pictures from this run."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from playwright.sync_api import FrameLocator, Page, expect

from tests.fixtures.browser import AirflowUI
from tests.fixtures.warehouse import TestDatabase as Database

pytestmark = [pytest.mark.integration, pytest.mark.browser]

WORKBENCH = "/returns-recon-workbench"
FRAME = 'iframe[title="Returns reconciliation"]'


@pytest.fixture(scope="module")
def airflow_ui_db(workbench_db: Database) -> Database:
    return workbench_db


def query(db: Database, sql: str, *params) -> list[tuple]:
    with psycopg.connect(db.url) as conn:
        return conn.execute(sql, params).fetchall()


def screenshot(page: Page, tmp_path: Path, name: str) -> None:
    page.screenshot(path=tmp_path / name, full_page=False)
    keep = os.environ.get("WORKBENCH_SCREENSHOTS")
    if keep:
        page.screenshot(path=Path(keep) / name, full_page=False)


def workbench(page: Page) -> FrameLocator:
    """The workbench as the Airflow UI shows it: its navigation entry, then the frame."""
    page.get_by_role("link", name="Returns reconciliation", exact=True).click()
    expect(page).to_have_url(re.compile(r"/plugin/returns-recon(/.*)?$"))  # the UI mirrors the frame's path
    return page.frame_locator(FRAME)


def test_the_queue_in_the_airflow_ui_lists_and_filters(
    ui_page: Page, login: Callable[[Page, str], None], workbench_db: Database, tmp_path: Path
) -> None:
    page = ui_page
    page.set_viewport_size({"width": 1500, "height": 900})
    login(page, "clerk")
    frame = workbench(page)
    (open_count,) = query(workbench_db, "SELECT count(*) FROM recon.exceptions WHERE recon.is_open(state)")[0]
    expect(frame.locator("p.summary")).to_have_text(re.compile(rf"^{open_count} exceptions"))
    expect(frame.locator("tbody tr")).to_have_count(min(open_count, 100))
    screenshot(page, tmp_path, "workbench-queue.png")

    frame.locator("select[name=owner]").select_option("operations")
    frame.get_by_role("button", name="Filter").click()
    (operations,) = query(
        workbench_db, "SELECT count(*) FROM recon.exceptions WHERE recon.is_open(state) AND owner = 'operations'"
    )[0]
    assert operations > 0, "the scenario must give operations exceptions"
    expect(frame.locator("tbody tr")).to_have_count(min(operations, 100))
    owners = frame.locator("tbody tr td:nth-child(2)").all_inner_texts()
    assert set(owners) == {"operations"}
    expect(frame.locator("a.chip.active")).to_contain_text("operations")


def test_open_an_exception_and_acknowledge_it(
    ui_page: Page, login: Callable[[Page, str], None], workbench_db: Database, tmp_path: Path
) -> None:
    page = ui_page
    page.set_viewport_size({"width": 1500, "height": 1000})
    login(page, "clerk")
    frame = workbench(page)
    first = frame.locator("tbody tr").first
    key = first.get_attribute("id").removeprefix("row-")
    first.locator("td a").first.click()
    for heading in ("Reveni", "Cin7 Core", "Sitoo", "Gap", "Evidence", "History", "Postings"):
        expect(frame.get_by_role("heading", name=heading, exact=True)).to_be_visible()
    expect(frame.locator("code").first).to_have_text(key)
    screenshot(page, tmp_path, "workbench-exception.png")

    state = query(workbench_db, "SELECT state FROM recon.exceptions WHERE exception_key = %s", key)[0][0]
    assert state == "open", f"the queue's first row {key} should be open"
    form = frame.locator("form.action", has=frame.get_by_role("button", name="Acknowledge"))
    form.get_by_label("Note").fill("checking with the warehouse")
    form.get_by_role("button", name="Acknowledge").click()
    expect(frame.get_by_role("status")).to_have_text("Acknowledged.")
    expect(frame.locator("h1 .state")).to_have_text("acknowledged")
    expect(frame.locator("tr.event").last).to_contain_text("clerk")
    expect(frame.locator("tr.event").last).to_contain_text("checking with the warehouse")
    assert query(
        workbench_db,
        "SELECT action, changed_by, note FROM recon.exception_events WHERE exception_key = %s AND action IS NOT NULL",
        key,
    ) == [("acknowledge", "clerk", "checking with the warehouse")]


def test_approve_a_draft_credit_note_from_its_mail_link(
    ui_page: Page, login: Callable[[Page, str], None], workbench_db: Database, airflow_ui: AirflowUI
) -> None:
    held = query(
        workbench_db,
        "SELECT e.exception_key, e.evidence->>'posting_key' FROM recon.exceptions e"
        " WHERE e.exception_type = 'credit_note_awaiting_approval' AND e.state = 'open'"
        " AND NOT EXISTS (SELECT 1 FROM recon.credit_note_approvals a WHERE a.exception_key = e.exception_key)"
        " ORDER BY 1 DESC LIMIT 1",
    )
    assert held, "the scenario must hold a DRAFT credit note above the threshold"
    key, posting = held[0]
    page = ui_page
    login(page, "clerk")
    page.goto(airflow_ui.url(f"{WORKBENCH}/exceptions/{quote(key, safe='')}"))  # as a mail's link opens it
    page.get_by_role("button", name="Approve credit note").click()
    expect(page.get_by_role("status")).to_contain_text("the next run authorises the credit note")
    expect(page.locator("p.approved")).to_contain_text("Approved by clerk")
    expect(page.get_by_role("button", name="Approve credit note")).to_have_count(0)
    assert query(
        workbench_db, "SELECT approved_by FROM recon.credit_note_approvals WHERE posting_key = %s", posting
    ) == [("clerk",)]


def test_a_read_only_user_sees_no_actions_and_is_refused(
    ui_page: Page, login: Callable[[Page, str], None], workbench_db: Database, airflow_ui: AirflowUI
) -> None:
    page = ui_page
    login(page, "auditor")
    frame = workbench(page)
    expect(frame.locator("header .who")).to_have_text("auditor · read-only")
    frame.locator("tbody tr td a").first.click()
    expect(frame.locator("p.readonly")).to_be_visible()
    expect(frame.locator("form[method=post]")).to_have_count(0)
    key = query(workbench_db, "SELECT exception_key FROM recon.exceptions WHERE state = 'open' ORDER BY 1 LIMIT 1")[0][
        0
    ]
    # a POST from the auditor's own browser session, as a crafted form would send it
    answer = page.request.post(airflow_ui.url(f"{WORKBENCH}/act"), form={"action": "acknowledge", "key": key})
    assert answer.status == 403
    assert query(workbench_db, "SELECT state FROM recon.exceptions WHERE exception_key = %s", key) == [("open",)]
