"""The workbench's pages and actions over a reconciled scenario (a real warehouse, the simulators over HTTP),
with the identity given by a stand-in for Airflow's auth manager; the real auth manager, the Airflow UI and the
browser are in test_workbench_browser.py and test_workbench_security.py."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote

import psycopg
import pytest
from fastapi.testclient import TestClient
from starlette.requests import Request

from returns_recon.workbench.app import URL_PREFIX, create_app
from returns_recon.workbench.security import Forbidden, NotAuthenticated, Person
from tests.fixtures.warehouse import TestDatabase as Database

pytestmark = pytest.mark.integration

CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


@dataclass
class StandIn:
    """Users by the ``X-Test-User`` header: clerk acts, auditor reads, stranger is refused, nobody logs in."""

    async def person(self, request: Request, dag_id: str) -> Person:
        name = request.headers.get("x-test-user")
        if name is None:
            raise NotAuthenticated
        if name == "stranger" or (name.startswith("north") and "_north_" not in dag_id):
            raise Forbidden  # northclerk: North's DAGs only
        return Person(name=name, may_act=name in {"clerk", "northclerk"}, by_bearer=False)

    def login_url(self, next_url: str) -> str:
        return f"/auth/login?next={quote(next_url)}"

    def csrf_key(self) -> bytes:
        return b"k" * 32


@pytest.fixture
def reconciled(workbench_db: Database) -> Database:
    return workbench_db


@pytest.fixture
def client(reconciled: Database) -> Iterator[TestClient]:
    app = create_app(gatekeeper=StandIn(), warehouse_dsn=lambda: reconciled.url)
    with TestClient(app, base_url=f"http://testserver{URL_PREFIX}", root_path=URL_PREFIX) as http:
        yield http


def rows(db: Database, sql: str, *params) -> list[tuple]:
    with psycopg.connect(db.url) as conn:
        return conn.execute(sql, params).fetchall()


def keys_on(html: str) -> list[str]:
    return re.findall(r'<tr id="row-([^"]+)"', html)


def test_the_queue_lists_open_exceptions_by_money_at_risk_with_counts_per_owner(
    client: TestClient, reconciled: Database
) -> None:
    page = client.get("/", headers={"x-test-user": "auditor"})
    assert page.status_code == 200
    expected = rows(
        reconciled,
        "SELECT exception_key FROM recon.exception_details WHERE recon.is_open(state)"
        " ORDER BY abs(money_at_risk) DESC NULLS LAST, first_seen_at, exception_key LIMIT 100",
    )
    assert keys_on(page.text) == [k for (k,) in expected]
    for owner, n in rows(
        reconciled, "SELECT owner, count(*) FROM recon.exceptions WHERE recon.is_open(state) GROUP BY 1"
    ):
        assert re.search(rf'data-owner="{owner}">{owner} · <span class="count">{n}</span>', page.text), owner


def test_filters_narrow_the_queue_as_the_warehouse_says(client: TestClient, reconciled: Database) -> None:
    page = client.get("/", params={"owner": "finance", "amount_min": "10"}, headers={"x-test-user": "auditor"})
    expected = rows(
        reconciled,
        "SELECT exception_key FROM recon.exception_details WHERE recon.is_open(state) AND owner = 'finance'"
        " AND abs(money_at_risk) >= 10 ORDER BY abs(money_at_risk) DESC, first_seen_at, exception_key",
    )
    assert expected, "the scenario must have finance exceptions with money at risk"
    assert keys_on(page.text) == [k for (k,) in expected]
    (kind,) = rows(reconciled, "SELECT exception_type FROM recon.exceptions GROUP BY 1 ORDER BY count(*) DESC LIMIT 1")[
        0
    ]
    typed = client.get("/", params={"type": kind, "state": "all"}, headers={"x-test-user": "auditor"})
    assert (
        sorted(keys_on(typed.text))
        == sorted(
            k for (k,) in rows(reconciled, "SELECT exception_key FROM recon.exceptions WHERE exception_type = %s", kind)
        )[:100]
    )
    bad = client.get("/", params={"age_min": "-3"}, headers={"x-test-user": "auditor"})
    assert bad.status_code == 400
    assert "age_min" in bad.text


def test_an_exception_page_shows_the_three_systems_history_and_postings(
    client: TestClient, reconciled: Database
) -> None:
    key, order, notes = rows(
        reconciled,
        "SELECT d.exception_key, d.order_number, d.credit_note_numbers FROM recon.exception_details d"
        " JOIN recon.postings p ON p.exception_key = d.exception_key WHERE d.credit_note_numbers IS NOT NULL"
        " ORDER BY 1 LIMIT 1",
    )[0]
    page = client.get(f"/exceptions/{quote(key, safe='')}", headers={"x-test-user": "auditor"})
    assert page.status_code == 200
    for text in ("Reveni", "Cin7 Core", "Sitoo", order, notes, "History", "Postings"):
        assert text in page.text
    assert "read-only" in page.text
    assert 'name="csrf_token"' not in page.text
    missing = client.get("/exceptions/no-such-key", headers={"x-test-user": "auditor"})
    assert missing.status_code == 404


def test_without_login_a_page_redirects_to_airflow_login_and_an_action_is_refused(client: TestClient) -> None:
    page = client.get("/", follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"].startswith("/auth/login?next=")
    assert client.post("/act", data={"action": "acknowledge", "key": "x"}).status_code == 401
    assert client.get("/", headers={"x-test-user": "stranger"}).status_code == 403


def open_key(db: Database, kind: str | None = None) -> str:
    query = "SELECT exception_key FROM recon.exceptions WHERE state = 'open'"
    query += " AND exception_type = %s ORDER BY 1 LIMIT 1" if kind else " ORDER BY 1 LIMIT 1"
    return rows(db, query, *([kind] if kind else []))[0][0]


def form_token(client: TestClient, key: str, user: str = "clerk") -> str:
    page = client.get(f"/exceptions/{quote(key, safe='')}", headers={"x-test-user": user})
    return CSRF.findall(page.text)[0]


def test_acknowledge_assign_resolve_reopen_are_each_kept_in_the_history(
    client: TestClient, reconciled: Database
) -> None:
    key = open_key(reconciled)
    token = form_token(client, key)
    clerk = {"x-test-user": "clerk"}
    for form in (
        {"action": "acknowledge", "note": "on it"},
        {"action": "assign", "assignee": "maria@example.com"},
        {"action": "resolve", "reason": "credited by hand"},
        {"action": "reopen", "note": "customer called again"},
    ):
        answer = client.post(
            "/act", data={**form, "key": key, "csrf_token": token}, headers=clerk, follow_redirects=False
        )
        assert answer.status_code == 303, answer.text
        assert answer.headers["location"] == f"{URL_PREFIX}/exceptions/{quote(key, safe='')}?done={form['action']}"
    history = rows(
        reconciled,
        "SELECT action, changed_by, from_state, to_state, note, detail->>'assignee' FROM recon.exception_events"
        " WHERE exception_key = %s AND action IS NOT NULL ORDER BY event_id",
        key,
    )
    assert history == [
        ("acknowledge", "clerk", "open", "acknowledged", "on it", None),
        ("assign", "clerk", "acknowledged", "acknowledged", None, "maria@example.com"),
        ("resolve", "clerk", "acknowledged", "resolved", "credited by hand", None),
        ("reopen", "clerk", "resolved", "open", "customer called again", None),
    ]
    assert rows(reconciled, "SELECT state, assignee FROM recon.exceptions WHERE exception_key = %s", key) == [
        ("open", "maria@example.com")
    ]
    refused = client.post(
        "/act", data={"action": "resolve", "key": key, "reason": " ", "csrf_token": token}, headers=clerk
    )
    assert refused.status_code == 409
    assert "the reason is required" in refused.text


def test_an_action_needs_the_csrf_token_the_same_origin_and_the_permission(
    client: TestClient, reconciled: Database
) -> None:
    key = open_key(reconciled)
    token = form_token(client, key)
    form = {"action": "acknowledge", "key": key}
    clerk = {"x-test-user": "clerk"}
    assert client.post("/act", data=form, headers=clerk).status_code == 403
    assert client.post("/act", data={**form, "csrf_token": "0" * 64}, headers=clerk).status_code == 403
    cross = {**clerk, "origin": "https://evil.example"}
    assert client.post("/act", data={**form, "csrf_token": token}, headers=cross).status_code == 403
    # a valid token does not make a read-only user able to act
    read_only = client.post("/act", data={**form, "csrf_token": token}, headers={"x-test-user": "auditor"})
    assert read_only.status_code == 403
    assert rows(reconciled, "SELECT state FROM recon.exceptions WHERE exception_key = %s", key) == [("open",)]


def test_approving_a_draft_credit_note_is_recorded_once(client: TestClient, reconciled: Database) -> None:
    key = open_key(reconciled, "credit_note_awaiting_approval")
    token = form_token(client, key)
    page = client.get(f"/exceptions/{quote(key, safe='')}", headers={"x-test-user": "clerk"})
    assert "Approve credit note" in page.text
    form = {"action": "approve", "key": key, "note": "ok, VIP customer", "csrf_token": token}
    assert client.post("/act", data=form, headers={"x-test-user": "clerk"}, follow_redirects=False).status_code == 303
    again = client.post("/act", data=form, headers={"x-test-user": "clerk"})
    assert again.status_code == 409
    assert "already approved by clerk" in again.text
    (posting,) = rows(
        reconciled, "SELECT evidence->>'posting_key' FROM recon.exceptions WHERE exception_key = %s", key
    )[0]
    assert rows(
        reconciled, "SELECT approved_by, note FROM recon.credit_note_approvals WHERE posting_key = %s", posting
    ) == [("clerk", "ok, VIP customer")]
    shown = client.get(f"/exceptions/{quote(key, safe='')}", headers={"x-test-user": "clerk"})
    assert "Approved by clerk" in shown.text
    assert "Approve credit note" not in shown.text


def test_replaying_a_refused_posting_plans_it_again(client: TestClient, reconciled: Database) -> None:
    with psycopg.connect(reconciled.url) as conn:
        posting, key = conn.execute(
            "UPDATE recon.postings SET status = 'refused', last_error = 'refused by Cin7 Core: test'"
            " WHERE posting_key = (SELECT posting_key FROM recon.postings WHERE status = 'done' ORDER BY 1 LIMIT 1)"
            " RETURNING posting_key, exception_key"
        ).fetchone()
    token = form_token(client, key)
    page = client.get(f"/exceptions/{quote(key, safe='')}", headers={"x-test-user": "clerk"})
    assert "Replay posting" in page.text
    assert "refused by Cin7 Core: test" in page.text
    form = {"action": "replay", "key": key, "posting_key": posting, "csrf_token": token}
    assert client.post("/act", data=form, headers={"x-test-user": "clerk"}, follow_redirects=False).status_code == 303
    assert rows(reconciled, "SELECT status FROM recon.postings WHERE posting_key = %s", posting) == [("planned",)]
    again = client.post("/act", data=form, headers={"x-test-user": "clerk"})
    assert again.status_code == 409
    assert "only a refused posting is replayed" in again.text
    assert rows(
        reconciled,
        "SELECT count(*) FROM recon.exception_events WHERE exception_key = %s AND action = 'replay'",
        key,
    ) == [(1,)]


MERCHANTS = """
merchants:
  - id: north
    name: North Shop
    connections: {warehouse: wh_north, reveni: r_north, cin7: c_north}
    location_map: map.csv
  - id: south
    name: South Shop
    connections: {warehouse: wh_south, reveni: r_south, cin7: c_south}
    location_map: map.csv
"""


@pytest.fixture
def two_merchants(reconciled: Database, warehouse_db: Database, tmp_path) -> Iterator[TestClient]:
    """North's warehouse is the reconciled scenario, South's an empty one."""
    from returns_recon.merchants import parse_merchants

    merchants = parse_merchants(MERCHANTS, base_dir=tmp_path)
    urls = {"north": reconciled.url, "south": warehouse_db.url}
    app = create_app(gatekeeper=StandIn(), merchants=lambda: merchants, merchant_dsn=lambda m: lambda: urls[m.id])
    with TestClient(app, base_url=f"http://testserver{URL_PREFIX}", root_path=URL_PREFIX) as http:
        yield http


def test_with_merchants_each_queue_is_its_merchants_and_permissions_are_per_merchant(
    two_merchants: TestClient, reconciled: Database, warehouse_db: Database
) -> None:
    north = {"x-test-user": "northclerk"}
    assert two_merchants.get("/", headers=north, follow_redirects=False).headers["location"].endswith("/merchants")
    chooser = two_merchants.get("/merchants", headers=north)
    assert "North Shop" in chooser.text
    assert "South Shop" not in chooser.text  # not readable by this user
    assert "South Shop" in two_merchants.get("/merchants", headers={"x-test-user": "clerk"}).text
    assert two_merchants.get("/", params={"merchant": "south"}, headers=north).status_code == 403
    assert two_merchants.get("/", params={"merchant": "nowhere"}, headers=north).status_code == 404

    page = two_merchants.get("/", params={"merchant": "north"}, headers=north)
    (open_north,) = rows(reconciled, "SELECT count(*) FROM recon.exceptions WHERE recon.is_open(state)")[0]
    assert len(keys_on(page.text)) == min(open_north, 100)
    assert "?merchant=north" in page.text
    south = two_merchants.get("/", params={"merchant": "south"}, headers={"x-test-user": "clerk"})
    assert keys_on(south.text) == []  # South's own (empty) warehouse

    key = open_key(reconciled)
    shown = two_merchants.get(f"/exceptions/{quote(key, safe='')}", params={"merchant": "north"}, headers=north)
    token = CSRF.findall(shown.text)[0]
    assert 'name="merchant" value="north"' in shown.text
    form = {"action": "acknowledge", "key": key, "csrf_token": token}
    refused = two_merchants.post("/act", data={**form, "merchant": "south"}, headers=north)
    assert refused.status_code == 403
    done = two_merchants.post("/act", data={**form, "merchant": "north"}, headers=north, follow_redirects=False)
    assert done.status_code == 303
    assert done.headers["location"].endswith("?merchant=north&done=acknowledge")
    assert rows(reconciled, "SELECT state FROM recon.exceptions WHERE exception_key = %s", key) == [("acknowledged",)]
