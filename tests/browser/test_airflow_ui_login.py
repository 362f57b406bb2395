"""The real Airflow UI in Chromium: the simple auth manager's login form, then the home page and our DAGs
(tests/fixtures/browser.py starts the API server with dags/ and plugins/)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Page, expect

from tests.fixtures.browser import AirflowUI

pytestmark = [pytest.mark.integration, pytest.mark.browser]


def test_admin_signs_in_sees_the_home_page_and_the_dag_list(
    ui_page: Page, login: Callable[[Page, str], None], tmp_path: Path
) -> None:
    page = ui_page
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/auth/login"))  # not signed in: the login form
    login(page, "admin")
    expect(page.get_by_role("heading", name="Welcome")).to_be_visible()
    page.screenshot(path=tmp_path / "home.png")
    page.get_by_role("link", name="Dags", exact=True).click()
    expect(page).to_have_url(re.compile(r"/dags$"))
    expect(page.get_by_role("link", name="returns_recon_hourly", exact=True)).to_be_visible()
    page.screenshot(path=tmp_path / "dags.png", full_page=True)
    assert (tmp_path / "dags.png").stat().st_size > 10_000, "a screenshot of the DAG list, not an empty page"


def test_the_nav_has_the_returns_reconciliation_entry_showing_the_workbench(
    ui_page: Page, login: Callable[[Page, str], None], tmp_path: Path
) -> None:
    page = ui_page
    login(page, "admin")
    entry = page.get_by_role("link", name="Returns reconciliation", exact=True)
    expect(entry).to_have_attribute("href", "/plugin/returns-recon")
    entry.click()
    expect(page).to_have_url(re.compile(r"/plugin/returns-recon(/.*)?$"))  # the UI mirrors the frame's path
    frame = page.locator('iframe[title="Returns reconciliation"]')  # plugins/returns_recon_workbench.py's app
    expect(frame).to_have_attribute("src", "/returns-recon-workbench/")
    expect(page.frame_locator('iframe[title="Returns reconciliation"]').locator("body")).not_to_be_empty()
    page.screenshot(path=tmp_path / "workbench.png")


def test_a_wrong_password_is_refused_and_no_token_is_set(ui_page: Page, airflow_ui: AirflowUI) -> None:
    page = ui_page
    page.goto("/auth/login")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill(airflow_ui.passwords["clerk"])
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text(re.compile("invalid", re.IGNORECASE))).to_be_visible()
    assert "/auth/login" in page.url
    assert "_token" not in {cookie["name"] for cookie in page.context.cookies()}


def test_the_users_have_their_roles_in_the_rest_api(airflow_ui: AirflowUI) -> None:
    def pause(user: str) -> requests.Response:
        return requests.patch(
            airflow_ui.url("/api/v2/dags/returns_recon_hourly"),
            json={"is_paused": True},
            headers={"Authorization": f"Bearer {airflow_ui.token(user)}"},
            timeout=30,
        )

    assert pause("auditor").status_code == 403  # a viewer reads only
    assert pause("clerk").status_code == 200  # a user edits DAGs
    assert pause("admin").status_code == 200
    assert requests.get(airflow_ui.url("/api/v2/dags"), timeout=30).status_code == 401  # no token, no answer
