"""The workbench's endpoints in a real Airflow API server (plugins/returns_recon_workbench.py loaded by Airflow,
the simple auth manager's users): nothing without a token, reading but no acting for a viewer, and the CSRF
guard on the browser's cookie session."""

from __future__ import annotations

import re
from urllib.parse import quote

import psycopg
import pytest
import requests

from tests.fixtures.browser import AirflowUI
from tests.fixtures.warehouse import TestDatabase as Database

pytestmark = pytest.mark.integration

WORKBENCH = "/returns-recon-workbench"
CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


@pytest.fixture(scope="module")
def airflow_ui_db(workbench_db: Database) -> Database:
    return workbench_db


def open_key(db: Database) -> str:
    with psycopg.connect(db.url) as conn:
        return conn.execute(
            "SELECT exception_key FROM recon.exceptions WHERE state = 'open' ORDER BY exception_key DESC LIMIT 1"
        ).fetchone()[0]


def events(db: Database, key: str) -> list[tuple]:
    with psycopg.connect(db.url) as conn:
        return conn.execute(
            "SELECT action, changed_by FROM recon.exception_events WHERE exception_key = %s AND action IS NOT NULL"
            " ORDER BY event_id",
            (key,),
        ).fetchall()


def bearer(ui: AirflowUI, user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {ui.token(user)}"}


def browser_session(ui: AirflowUI, user: str) -> requests.Session:
    """As the Airflow UI's browser: the JWT in the ``_token`` cookie, no header."""
    session = requests.Session()
    session.cookies.set("_token", ui.token(user), domain="127.0.0.1", path="/")
    return session


def test_without_a_token_pages_go_to_the_login_and_actions_are_refused(airflow_ui: AirflowUI) -> None:
    page = requests.get(airflow_ui.url(f"{WORKBENCH}/?owner=finance"), allow_redirects=False, timeout=30)
    assert page.status_code == 303
    assert page.headers["location"].startswith("/auth/login")
    assert quote(f"{WORKBENCH}/?owner=finance", safe="") in page.headers["location"]  # back to the page after
    forged = {"Authorization": "Bearer not-a-token"}
    assert (
        requests.get(airflow_ui.url(f"{WORKBENCH}/"), headers=forged, allow_redirects=False, timeout=30).status_code
        == 303
    )
    action = {"action": "acknowledge", "key": "x"}
    assert requests.post(airflow_ui.url(f"{WORKBENCH}/act"), data=action, timeout=30).status_code == 401
    assert requests.post(airflow_ui.url(f"{WORKBENCH}/act"), data=action, headers=forged, timeout=30).status_code == 401


def test_a_viewer_reads_but_cannot_act(airflow_ui: AirflowUI, workbench_db: Database) -> None:
    key = open_key(workbench_db)
    headers = bearer(airflow_ui, "auditor")
    page = requests.get(airflow_ui.url(f"{WORKBENCH}/exceptions/{quote(key, safe='')}"), headers=headers, timeout=30)
    assert page.status_code == 200
    assert "auditor · read-only" in page.text
    assert '<form method="post"' not in page.text
    act = requests.post(
        airflow_ui.url(f"{WORKBENCH}/act"), data={"action": "acknowledge", "key": key}, headers=headers, timeout=30
    )
    assert act.status_code == 403
    assert "cannot" in act.text or "not act" in act.text
    assert events(workbench_db, key) == []


def test_a_user_acts_with_a_bearer_token(airflow_ui: AirflowUI, workbench_db: Database) -> None:
    key = open_key(workbench_db)
    act = requests.post(
        airflow_ui.url(f"{WORKBENCH}/act"),
        data={"action": "acknowledge", "key": key, "note": "from a script"},
        headers=bearer(airflow_ui, "clerk"),
        allow_redirects=False,
        timeout=30,
    )
    assert act.status_code == 303, act.text
    assert events(workbench_db, key) == [("acknowledge", "clerk")]


def test_the_browser_session_needs_the_pages_csrf_token_from_the_same_origin(
    airflow_ui: AirflowUI, workbench_db: Database
) -> None:
    key = open_key(workbench_db)
    session = browser_session(airflow_ui, "clerk")
    act = airflow_ui.url(f"{WORKBENCH}/act")
    form = {"action": "acknowledge", "key": key}
    assert session.post(act, data=form, timeout=30).status_code == 403  # no token
    page = session.get(airflow_ui.url(f"{WORKBENCH}/exceptions/{quote(key, safe='')}"), timeout=30)
    token = CSRF.findall(page.text)[0]
    assert session.post(act, data={**form, "csrf_token": "f" * 64}, timeout=30).status_code == 403
    cross = {"Origin": "https://evil.example"}
    assert session.post(act, data={**form, "csrf_token": token}, headers=cross, timeout=30).status_code == 403
    # another user's session (another cookie) cannot reuse the token
    other = browser_session(airflow_ui, "admin")
    assert other.post(act, data={**form, "csrf_token": token}, timeout=30).status_code == 403
    assert events(workbench_db, key) == []
    done = session.post(act, data={**form, "csrf_token": token}, allow_redirects=False, timeout=30)
    assert done.status_code == 303, done.text
    assert events(workbench_db, key) == [("acknowledge", "clerk")]
