"""The links from the exception mails to the workbench (``returns_recon.workbench.links``): an exception's page is the
base + ``/exceptions/`` + its key quoted whole; the base is ``RECON_WORKBENCH_URL`` when set, else Airflow's ``[api]
base_url`` + ``/returns-recon-workbench`` read when the task runs, else none: then the mails carry no links."""

from __future__ import annotations

import csv
import io
import logging
import subprocess
import sys
from datetime import date
from html.parser import HTMLParser
from urllib.parse import unquote

import pytest
from pydantic import ValidationError

from returns_recon import steps
from returns_recon.notify import digest
from returns_recon.notify.digest import Digest, render
from returns_recon.settings import ReconSettings
from returns_recon.workbench import links
from returns_recon.workbench.links import exception_url, queue_url, workbench_base
from tests.unit.test_mail_escaping import HOSTILE_FIX, HOSTILE_ROWS, delivered, exception_row, part

pytestmark = pytest.mark.unit

BASE = "https://airflow.example.com/sub/returns-recon-workbench"
AIRFLOW_BASE = "http://airflow.internal:8080/"


@pytest.fixture
def airflow_base_url(monkeypatch: pytest.MonkeyPatch):
    """Set Airflow's ``[api] base_url`` (its environment variable, read by Airflow's configuration at each get)."""

    def set_to(value: str) -> None:
        monkeypatch.setenv("AIRFLOW__API__BASE_URL", value)

    return set_to


@pytest.mark.parametrize(
    ("key", "quoted"),
    [
        ("unknown_sku_cin7:r1:i1", "unknown_sku_cin7%3Ar1%3Ai1"),
        ("unmapped_location:ret/2", "unmapped_location%3Aret%2F2"),
        ("sale_not_found:order 42:x", "sale_not_found%3Aorder%2042%3Ax"),
        ('odd:"><script>?#&=%', "odd%3A%22%3E%3Cscript%3E%3F%23%26%3D%25"),
    ],
)
def test_an_exception_url_quotes_the_whole_key(key: str, quoted: str) -> None:
    url = exception_url(BASE, key)
    assert url == f"{BASE}/exceptions/{quoted}"
    assert unquote(url.removeprefix(f"{BASE}/exceptions/")) == key  # the workbench reads the key back


def test_without_a_base_there_is_no_link() -> None:
    assert exception_url("", "unknown_sku_cin7:r1:i1") == ""
    assert queue_url("", "finance") == ""


def test_the_queue_url_filters_by_the_owner() -> None:
    assert queue_url(BASE, "customer service") == f"{BASE}/?owner=customer+service"
    assert queue_url(BASE, "finance") == f"{BASE}/?owner=finance"


def test_the_path_is_the_one_the_plugin_mounts_the_workbench_at() -> None:
    from returns_recon.workbench.app import URL_PREFIX

    assert links.WORKBENCH_PATH == URL_PREFIX


def test_the_setting_wins_over_airflows_base_url(airflow_base_url) -> None:
    airflow_base_url(AIRFLOW_BASE)
    assert workbench_base(BASE + "/") == BASE


def test_unset_the_base_is_airflows_base_url_read_when_called(airflow_base_url) -> None:
    airflow_base_url(AIRFLOW_BASE)
    assert workbench_base("") == "http://airflow.internal:8080/returns-recon-workbench"
    airflow_base_url("https://airflow.example.com/prefix")  # read at each call, not at import
    assert workbench_base("") == "https://airflow.example.com/prefix/returns-recon-workbench"


def test_neither_set_no_base(airflow_base_url) -> None:
    airflow_base_url("")
    assert workbench_base("") == ""


def test_without_airflow_no_base(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "airflow.configuration", None)  # importing it raises ImportError
    assert workbench_base("") == ""
    assert workbench_base(BASE) == BASE


def test_an_airflow_base_url_with_a_password_gives_no_links_and_is_not_logged(airflow_base_url, caplog) -> None:
    airflow_base_url("https://admin:hunter2@airflow.example.com/?token=s3cret")
    with caplog.at_level(logging.WARNING, logger="returns_recon.workbench.links"):
        assert workbench_base("") == ""
    assert "no workbench links" in caplog.text
    assert "hunter2" not in caplog.text
    assert "s3cret" not in caplog.text


def test_importing_the_links_or_the_settings_imports_no_airflow() -> None:
    code = (
        "import sys, returns_recon.workbench.links, returns_recon.settings; "
        "print(sorted(m for m in sys.modules if m == 'airflow' or m.startswith(('airflow.', 'fastapi'))))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


# --- the setting ----------------------------------------------------------------------------------------------------


def test_the_setting_is_read_from_recon_workbench_url_without_its_trailing_slash(monkeypatch) -> None:
    monkeypatch.setenv("RECON_WORKBENCH_URL", "https://airflow.example.com/returns-recon-workbench/")
    assert ReconSettings().workbench_url == "https://airflow.example.com/returns-recon-workbench"
    monkeypatch.setenv("RECON_WORKBENCH_URL", "")
    assert ReconSettings().workbench_url == ""


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("ftp://airflow.example.com/x", "http:// or https://"),
        ("/returns-recon-workbench", "http:// or https://"),
        ("https:///returns-recon-workbench", "http:// or https://"),
        ("javascript:alert(1)", "http:// or https://"),
        ("https://airflow.example.com/a b", "without spaces"),
        ('https://airflow.example.com/"onmouseover=x', "without spaces"),
        ("https://airflow.example.com:port/", "is not a URL"),
        ("https://finance:hunter2@airflow.example.com/", "login or password"),
        ("https://airflow.example.com/x?token=s3cret", "query or fragment"),
        ("https://airflow.example.com/x#s3cret", "query or fragment"),
    ],
)
def test_a_workbench_url_that_is_not_a_plain_http_url_is_refused_without_showing_a_secret(
    monkeypatch, value: str, why: str
) -> None:
    monkeypatch.setenv("RECON_WORKBENCH_URL", value)
    with pytest.raises(ValidationError, match="workbench_url") as refused:
        ReconSettings()
    assert why in str(refused.value)
    for secret in ("hunter2", "s3cret"):
        assert secret not in str(refused.value)


# --- the step: the base, at run time, passed down -------------------------------------------------------------------


def test_the_step_passes_the_base_of_the_moment_to_the_mails(monkeypatch, airflow_base_url) -> None:
    seen: list[str] = []
    merchants: list[tuple[str, str]] = []

    def send_digests(*args, workbench_url: str, merchant: tuple[str, str]) -> dict[str, str]:
        seen.append(workbench_url)
        merchants.append(merchant)
        return {}

    monkeypatch.setattr(digest, "send_digests", send_digests)

    def run(settings: ReconSettings) -> None:
        steps.send_exception_emails(None, print, "r@example.com", date(2026, 12, 2), "run", settings)

    unset = ReconSettings(workbench_url="")
    airflow_base_url(AIRFLOW_BASE)  # after the settings were read: the task's Airflow configuration
    run(unset)
    run(ReconSettings(workbench_url=BASE))
    airflow_base_url("")
    run(unset)
    assert seen == ["http://airflow.internal:8080/returns-recon-workbench", BASE, ""]
    run(ReconSettings(merchant_id="acme", merchant_name="Acme Outdoor"))
    assert merchants == [("", "")] * 3 + [("acme", "Acme Outdoor")]  # a merchants file's merchant is named


# --- the mail -------------------------------------------------------------------------------------------------------


class Rows(HTMLParser):
    """The HTML part's table rows: (the header row's cells, the row's text, the row's links)."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[list[str], str, list[tuple[str, str]]]] = []
        self.links: list[str] = []  # every href of the part
        self._header: list[str] = []
        self._cells: list[str] | None = None
        self._is_header = False
        self._href: str | None = None
        self._row_links: list[tuple[str, str]] = []
        self._text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._header = []
        elif tag == "tr":
            self._cells, self._is_header, self._row_links = [], False, []
        elif tag in ("td", "th") and self._cells is not None:
            self._cells.append("")
            self._is_header = tag == "th"
        elif tag == "a":
            self._href = dict(attrs).get("href") or ""
            self.links.append(self._href)
            self._text = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._href is not None:
            if self._cells is not None:  # a link in a table row (else: the footer's)
                self._row_links.append((self._href, self._text))
            self._href = None
        elif tag == "tr" and self._cells is not None:
            if self._is_header:
                self._header = self._cells
            else:
                self.rows.append((self._header, " ".join(self._cells), self._row_links))
            self._cells = None

    def handle_data(self, data: str) -> None:
        if self._cells:
            self._cells[-1] += data
        if self._href is not None:
            self._text += data


def html_rows(message) -> Rows:
    parser = Rows()
    parser.feed(part(message, "text/html").get_content())
    return parser


MONEY_ROWS = [
    exception_row(
        7,
        exception_type="refund_without_credit_note",
        exception_key="refund_without_credit_note:r 7/x",
        item_id=None,
        money_at_risk=-30,
        currency="EUR",
    ),
]
AT_RISK = [{"currency": "EUR", "returns": 1, "under_credited": 30, "over_credited": 0}]
CHOSEN = [{"currency": "EUR", "return_id": "r7", "exception_key": "refund_without_credit_note:r 7/x"}]


def mail(base: str):
    rows = [*HOSTILE_ROWS, *MONEY_ROWS]
    owner_digest = Digest(
        "customer service",
        date(2026, 12, 2),
        rows,
        rows,
        recipients=["care@example.com"],
        fixed=[HOSTILE_FIX],
        at_risk=AT_RISK,
        returns_at_risk=CHOSEN,
    )
    return delivered(render(owner_digest, "returns-recon@example.com", workbench_url=base))


def test_every_exception_row_of_the_html_part_links_its_type_to_its_page() -> None:
    parsed = html_rows(mail(BASE))
    keys = {r["exception_key"]: r for r in [*HOSTILE_ROWS, *MONEY_ROWS, HOSTILE_FIX]}
    linked: dict[str, set[str]] = {}
    for header, text, row_links in parsed.rows:
        if header[0] not in ("Exception", "Document created"):
            assert not row_links, (header, text)  # the totals, by type: no exception, no link
            continue
        ((href, label),) = row_links
        key = unquote(href.removeprefix(f"{BASE}/exceptions/"))
        assert href == exception_url(BASE, key)
        assert label == keys[key]["exception_type"]
        assert keys[key]["return_id"].split("\r")[0] in text
        linked.setdefault(header[0], set()).add(key)
    assert linked["Exception"] == {r["exception_key"] for r in [*HOSTILE_ROWS, *MONEY_ROWS]}  # new + largest gaps
    assert linked["Document created"] == {HOSTILE_FIX["exception_key"]}
    assert f"{BASE}/?owner=customer+service" in parsed.links  # the footer: the owner's queue


def test_every_exception_line_of_the_text_part_ends_with_its_url() -> None:
    text = part(mail(BASE), "text/plain").get_content()
    for row in [*HOSTILE_ROWS, *MONEY_ROWS, HOSTILE_FIX]:
        url = exception_url(BASE, row["exception_key"])
        assert [line for line in text.splitlines() if line.endswith(f"  {url}")], row["exception_key"]
    assert f"exception workbench: {BASE}/?owner=customer+service" in text


def test_the_csv_ends_with_each_exceptions_workbench_url() -> None:
    attachment = next(p for p in mail(BASE).walk() if (p.get_filename() or "").startswith("open-exceptions-"))
    rows = list(csv.reader(io.StringIO(attachment.get_content())))
    assert tuple(rows[0]) == (*digest.CSV_COLUMNS, "workbench_url")
    for row in rows[1:]:
        assert row[-1] == exception_url(BASE, row[0])


def test_without_a_base_the_mail_has_no_links_and_says_nothing_of_them() -> None:
    message = mail("")
    parsed = html_rows(message)
    assert parsed.links == []
    bodies = part(message, "text/plain").get_content() + part(message, "text/html").get_content()
    for absent in ("airflow.example.com", "/exceptions/", "workbench", "None", "href"):
        assert absent not in bodies, absent
    attachment = next(p for p in message.walk() if (p.get_filename() or "").startswith("open-exceptions-"))
    rows = list(csv.DictReader(io.StringIO(attachment.get_content())))
    assert rows
    assert all(r["workbench_url"] == "" for r in rows)


def test_the_local_stack_links_to_its_own_api_server_on_the_port_it_uses() -> None:
    from local_stack.env import project_env

    for port in ("8080", "9191"):
        env = project_env({"AIRFLOW__API__PORT": port})
        assert env["RECON_WORKBENCH_URL"] == f"http://127.0.0.1:{port}/returns-recon-workbench"
        assert ReconSettings(workbench_url=env["RECON_WORKBENCH_URL"]).workbench_url == env["RECON_WORKBENCH_URL"]
