"""The daily DAG mails each owner their exceptions, once a day, through a real SMTP server."""

from __future__ import annotations

import csv
import email
import email.utils
import io
import json
import math
import re
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from email import policy
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import psycopg
import pytest
from aiosmtpd.controller import Controller
from markupsafe import escape
from psycopg import sql
from psycopg.conninfo import make_conninfo

from returns_recon.notify.digest import send_digests, smtp_sender
from returns_recon.postings.plan import ACTIONS

pytestmark = pytest.mark.integration

RECIPIENTS = {
    "finance": ["fin@example.com"],
    "operations": ["ops@example.com"],
    "customer service": ["care@example.com"],
    "data": ["data@example.com"],
}
# the workbench the mails of the tests below link to (RECON_WORKBENCH_URL, or Airflow's [api] base_url + the path)
WORKBENCH = "https://airflow.example.test/recon/returns-recon-workbench"
AIRFLOW_BASE_URL = "http://airflow.example.test:8080/"


def parts(message):
    return list(message.walk())


def written_text(folder: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in folder.rglob("*") if p.is_file())


def every_table_as_text(url: str) -> str:
    with psycopg.connect(url) as conn:
        tables = conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_schema IN ('public', 'raw', 'staging', 'recon') "
            "AND table_type = 'BASE TABLE'"
        ).fetchall()
        assert len(tables) > 20
        chunks = []
        for schema, table in tables:
            query = sql.SQL("SELECT coalesce(string_agg(t::text, E'\\n'), '') FROM {}.{} t")
            chunks.append(conn.execute(query.format(sql.Identifier(schema), sql.Identifier(table))).fetchone()[0])
    return "\n".join(chunks)


def test_daily_run_sends_one_mail_per_owner_once_and_leaks_no_secret(
    run_dag, airflow_home, empty_database, simulators, small_scenario, smtp_sink, tmp_path
) -> None:
    sink, smtp_env = smtp_sink
    simulators.load(small_scenario)
    docs = tmp_path / "data_docs"
    env = {
        "AIRFLOW_CONN_RECON_WAREHOUSE": empty_database.airflow_conn_json(),
        **simulators.env(),
        **smtp_env,
        "RECON_EMAIL_RECIPIENTS": json.dumps(RECIPIENTS),
        "RECON_FINANCE_ALL_CLEAR_WEEKDAY": "7",
        "RECON_DATA_DOCS_DIR": str(docs),
        # no RECON_WORKBENCH_URL: the mails link to Airflow's own base URL, as the task reads it
        "RECON_WORKBENCH_URL": "",
        "AIRFLOW__API__BASE_URL": AIRFLOW_BASE_URL,
    }
    result = run_dag("returns_recon_daily", **env)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert sorted(m["To"] for m in sink.messages) == sorted(a[0] for a in RECIPIENTS.values())
    with psycopg.connect(empty_database.url) as conn:
        open_keys = {}
        for owner, key in conn.execute(
            "SELECT owner, exception_key FROM recon.exceptions WHERE state IN ('open', 'acknowledged')"
        ):
            open_keys.setdefault(owner, set()).add(key)
    secrets = [
        empty_database.password,
        "reveni-demo-api-key",
        "sitoo-demo-password",
        "0e9c2f4b-8a1d-4c3e-b5f6-7a8b9c0d1e2f",
    ]
    for message in sink.messages:
        owner = next(o for o, to in RECIPIENTS.items() if to[0] == message["To"])
        types = {p.get_content_type() for p in parts(message)}
        assert {"text/plain", "text/html", "image/png", "text/csv"} <= types
        attachment = next(p for p in parts(message) if p.get_content_type() == "text/csv")
        rows = list(csv.DictReader(io.StringIO(attachment.get_payload(decode=True).decode())))
        assert {r["exception_key"] for r in rows} == open_keys[owner]
        for row in rows:
            page = f"{AIRFLOW_BASE_URL}returns-recon-workbench/exceptions/{quote(row['exception_key'], safe='')}"
            assert row["workbench_url"] == page
        raw = message.as_string()
        for secret in secrets:
            assert secret not in raw
        html = next(p for p in parts(message) if p.get_content_type() == "text/html").get_payload(decode=True)
        assert b"cid:chart" in html
        assert f'href="{AIRFLOW_BASE_URL}returns-recon-workbench/exceptions/'.encode() in html
    again = run_dag("returns_recon_daily", **env)
    assert again.returncode == 0, (again.stdout + again.stderr)[-3000:]
    assert len(sink.messages) == len(RECIPIENTS)
    # the planted secrets (the warehouse password is new for this test) appear nowhere: not in the
    # task logs, the tables, the mails, nor any file the run wrote (logs, Data Docs)
    assert list(docs.rglob("*.html")), "the run wrote its Data Docs"
    places = {
        "output": result.stdout + result.stderr + again.stdout + again.stderr,
        "airflow logs and files": written_text(airflow_home),
        "data docs": written_text(docs),
        "tables": every_table_as_text(empty_database.url),
        "mails": "\n".join(m.as_string() for m in sink.messages),
    }
    assert "returns_recon_daily" in places["output"]
    for where, text in places.items():
        for secret in secrets:
            assert secret not in text, f"a secret appears in the {where}"


def test_a_failed_run_sends_exactly_one_alert(run_dag, empty_database, simulators, smtp_sink) -> None:
    sink, smtp_env = smtp_sink
    broken = json.dumps({"conn_type": "http", "host": "127.0.0.1", "login": "90001-1"})
    result = run_dag(
        "returns_recon_hourly",
        AIRFLOW_CONN_RECON_WAREHOUSE=empty_database.airflow_conn_json(),
        AIRFLOW_CONN_SITOO_DEFAULT=broken,
        RECON_EMAIL_RECIPIENTS=json.dumps(RECIPIENTS),
        RECON_TASK_RETRIES="2",
        **smtp_env,
    )
    assert result.returncode != 0
    assert len(sink.messages) == 1
    alert = sink.messages[0]
    assert alert["To"] == "data@example.com"
    assert "returns_recon_hourly failed" in alert["Subject"]


SCRIPT = "<script>alert(1)</script>"
HYPERLINK = '=HYPERLINK("http://x","y")'
IMG = "<img src=x onerror=alert(1)>"
CMD = "+cmd|' /C calc'!A0"
CUSTOMER = '<b onmouseover=alert(2)>@SUM(1+1)*cmd|" /C calc"!A0</b>'
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")
NUMERIC_COLUMNS = ("occurrences", "money_at_risk", "refunded", "credited", "age_days")


def hostile_mail_scenario(tmp_path: Path) -> Path:
    """A generated scenario whose SKUs, return points and customer names carry HTML and formulas."""
    from tests.fixtures.scenarios import scenario

    path = scenario(tmp_path, 4242, returns=120)
    document = json.loads(path.read_text())
    returns = document["reveni"]["returns"]
    returns[0]["return_items"][0]["sku"] = SCRIPT
    returns[1]["return_items"][0]["sku"] = HYPERLINK
    # returns still in transit are rewritten by the scenario's later events: plant on settled ones
    settled = [r for r in returns[2:] if r["status"] not in ("in_progress", "shipped")]
    settled[0]["return_point"] = {"id": IMG, "type": settled[0]["return_point"]["type"], "name": CMD}
    settled[1]["return_point"] = {"id": CMD, "type": settled[1]["return_point"]["type"], "name": IMG}
    for sale in document["cin7"]["sales"]:
        sale["Customer"] = CUSTOMER
    path.write_text(json.dumps(document))
    return path


def test_html_and_formulas_in_skus_return_points_and_customer_names_reach_no_mail_unescaped(
    run_dag, empty_database, simulators, smtp_sink, tmp_path
) -> None:
    from recon_simulators.generate import location_map_csv_path

    sink, smtp_env = smtp_sink
    path = hostile_mail_scenario(tmp_path)
    simulators.load(path)
    env = {
        "AIRFLOW_CONN_RECON_WAREHOUSE": empty_database.airflow_conn_json(),
        **simulators.env(),
        **smtp_env,
        "RECON_EMAIL_RECIPIENTS": json.dumps(RECIPIENTS),
        "RECON_FINANCE_ALL_CLEAR_WEEKDAY": "7",
        "RECON_LOCATION_MAP_PATH": str(location_map_csv_path(path)),
        "RECON_DATA_DOCS_DIR": str(tmp_path / "data_docs"),
    }
    result = run_dag("returns_recon_daily", **env)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    with psycopg.connect(empty_database.url) as conn:  # the values went through the pipeline into the queue
        skus = {r[0] for r in conn.execute("SELECT sku FROM recon.exceptions WHERE state = 'open'")}
        points = {
            r[0]: r[1]
            for r in conn.execute(
                "SELECT evidence ->> 'return_point_id', owner FROM recon.exceptions "
                "WHERE exception_type = 'unmapped_location' AND state = 'open'"
            )
        }
        stored = conn.execute(
            "SELECT return_id, return_point_id, status, created_at FROM staging.stg_reveni__returns "
            "WHERE return_point_id IN (%s, %s)",
            (IMG, CMD),
        ).fetchall()
    assert {SCRIPT, HYPERLINK} <= skus
    assert {IMG, CMD} <= set(points), (points, stored)
    data_mail = next(m for m in sink.messages if m["To"] == "data@example.com")
    html = next(p for p in parts(data_mail) if p.get_content_type() == "text/html").get_payload(decode=True).decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html  # the unmapped return point, shown escaped
    cells: list[str] = []
    for message in sink.messages:
        headers = email.message_from_bytes(message.as_bytes(), policy=policy.default)  # folded lines unfolded
        assert "\n" not in headers["Subject"]
        assert "\r" not in headers["Subject"]
        assert set(headers.keys()) <= {"Subject", "From", "To", "Date", "Message-ID", "MIME-Version", "Content-Type"}
        bodies = {
            p.get_content_type(): p.get_payload(decode=True).decode()
            for p in parts(message)
            if p.get_content_type() in ("text/plain", "text/html")
        }
        for value in (SCRIPT, IMG, "<img src=x", "<script"):
            assert value not in bodies["text/html"]
        everything = message.as_string() + "".join(bodies.values())
        for value in (CUSTOMER, "onmouseover", "alert(2)"):  # customer names never reach a mail, in any form
            assert value not in everything
        attachment = next(p for p in parts(message) if p.get_content_type() == "text/csv")
        rows = list(csv.DictReader(io.StringIO(attachment.get_payload(decode=True).decode())))
        for row in rows:
            for column, cell in row.items():
                if column not in NUMERIC_COLUMNS:
                    assert not (cell or "").startswith(FORMULA_STARTS), (column, cell)
                cells.append(cell or "")
    assert not [c for c in cells if "onmouseover" in c or "alert(2)" in c]
    assert "'" + HYPERLINK in cells
    assert "'" + CMD in cells


# --- issue 18, item 3: mails a person can act on without a lookup -------------------------------------------------
# The mails of a real pipeline run over a generated scenario, delivered to a real SMTP server, checked against what
# the scenario itself says (orders, refunds, credit notes, Sitoo warehouses) and the documents the simulators hold.

ACTIONABLE = {
    "order_number",
    "cin7_sale_order_number",
    "credit_note_numbers",
    "transfer_numbers",
    "sitoo_order_ids",
    "sitoo_transaction_ids",
    "money_at_risk",
    "currency",
    "return_event",
    "return_event_at",
    "age_days",
    "expected_warehouse",
    "stock_found_at",
}
FIXED_SECTION = "Fixed by the pipeline since the last mail"
# which event of the return starts the clock, for some of the types (docs/notifications.md)
CLOCKS = {
    "refund_without_credit_note": "refunded",
    "credit_note_amount_mismatch": "refunded",
    "inspected_not_released": "validated",
    "sitoo_stock_wrong_location": "validated",
    "missing_restock": "received",
    "unknown_sku_cin7": "created",
    "exchange_order_missing": "created",
}


class Scenario:
    """What the generated scenario says: the answer the mails are checked against (not the warehouse)."""

    def __init__(self, path: Path) -> None:
        document = json.loads(path.read_text())
        self.returns = {r["id"]: r for r in document["reveni"]["returns"]}
        self.sales = {s["CustomerReference"]: s for s in document["cin7"]["sales"]}
        self.transfers = document["cin7"]["stock_transfers"]
        self.warehouses = {w["warehouseid"]: w["name"] for w in document["sitoo"]["warehouses"]}
        self.transactions = document["sitoo"]["warehouse_transactions"]
        self.orders = document["sitoo"]["orders"]
        self.points = {m["return_point_id"]: m for m in document["location_map"]}
        self.expected = document["expected_exceptions"]

    def order(self, rid: str) -> str:
        return self.returns[rid]["order"]["external_id"]

    def paid(self, rid: str) -> tuple[Decimal, set[str]]:
        refunds = [f for f in self.returns[rid]["refunds"] if f["status"] == "paid"]
        return sum((Decimal(f["amount"]) for f in refunds), Decimal(0)), {f["currency"] for f in refunds}

    def notes(self, rid: str) -> tuple[list[dict], list[dict]]:
        """The AUTHORISED credit notes on the return's sale: ours (memo reveni:<return>), and made by hand."""
        sale = self.sales.get(self.order(rid)) or {"CreditNotes": []}
        authorised = [n for n in sale["CreditNotes"] if n["Status"] == "AUTHORISED"]
        return (
            [n for n in authorised if n.get("Memo") == f"reveni:{rid}"],
            [n for n in authorised if not (n.get("Memo") or "").startswith("reveni:")],
        )

    def sale_currency(self, rid: str) -> str:
        return self.sales[self.order(rid)]["CustomerCurrency"]

    def event(self, row: dict) -> datetime:
        """The return's own event that starts the exception's clock (docs/notifications.md)."""
        ret = self.returns[row["return_id"]]
        item = next((i for i in ret["return_items"] if i["item_id"] == row["item_id"]), None)
        moment = {
            "validated": item and item["validated_at"],
            "received": ret["received_at"],
            "refunded": min((f["refunded_at"] for f in ret["refunds"] if f["status"] == "paid"), default=None),
            "created": ret["created_at"],
        }[row["return_event"]]
        return datetime.fromisoformat(moment)

    def warehouse(self, warehouse_id: int) -> str:
        return f"{self.warehouses[warehouse_id]} (#{warehouse_id})"


def delivered_by_owner(sink, start: int = 0) -> dict[str, email.message.EmailMessage]:
    parsed = [email.message_from_bytes(m.as_bytes(), policy=policy.default) for m in sink.messages[start:]]
    return {next(o for o, to in RECIPIENTS.items() if to[0] == m["To"]): m for m in parsed}


def plain_text(message) -> str:
    return next(p for p in message.walk() if p.get_content_type() == "text/plain").get_content()


def attached_csv(message, prefix: str) -> list[dict]:
    part = next((p for p in message.walk() if (p.get_filename() or "").startswith(prefix)), None)
    return [] if part is None else list(csv.DictReader(io.StringIO(part.get_content())))


def lines_with(text: str, *needles: str) -> list[str]:
    return [line for line in text.splitlines() if all(n in line for n in needles)]


def whole_days(start: datetime, end: datetime) -> int:
    return math.floor((end - start).total_seconds() / 86400)


@dataclass
class Mails:
    """The mails of one pipeline run over a scenario: before any posting, after the pipeline posted its fixes, and
    the next day; with what the scenario says and the documents the simulators hold after the posting."""

    world: Scenario
    first: dict[str, email.message.EmailMessage]
    second: dict[str, email.message.EmailMessage]
    third: dict[str, email.message.EmailMessage]
    journal_currencies: set[str]
    done: list[tuple[str, str, str, str | None]]  # owner, action, return, item of each posting done
    created: dict[tuple[str, str, str | None], dict]  # (action, return, item) -> the document in the simulator
    # what finance read as recon_reader when the first mails were sent: recon.money_at_risk's rows, and the open
    # exceptions' own gaps (owner, currency, return, key, gap) in recon.exception_details
    at_risk: list[tuple] = field(default_factory=list)
    gaps: list[tuple] = field(default_factory=list)
    # every exception of the warehouse after the last mail: key -> (owner, type, return); and the warehouse itself
    exceptions: dict[str, tuple[str, str, str | None]] = field(default_factory=dict)
    db: Any = None


def _created_documents(simulators, world: Scenario, done: list) -> dict[tuple[str, str, str | None], dict]:
    """The documents the simulators hold for our postings, found by our references (not by the warehouse)."""
    cin7, sitoo = simulators.cin7_session(), simulators.sitoo_session()
    transfers = cin7.get(f"{simulators.cin7}/stockTransferList", params={"Limit": 1000}).json()["StockTransferList"]
    transactions = sitoo.get(f"{simulators.sitoo_site}/warehousetransactions.json", params={"num": 100_000}).json()
    known = {t["warehousetransactionid"] for t in world.transactions}
    created = {}
    for _, action, rid, iid in done:
        if action == "create_credit_note":
            sale = world.sales[world.order(rid)]
            notes = cin7.get(f"{simulators.cin7}/sale", params={"ID": sale["ID"]}).json()["CreditNotes"]
            document = next(n for n in notes if n.get("Memo") == f"reveni:{rid}")
            document = {**document, "currency": sale["CustomerCurrency"]}
        elif action.startswith("transfer_to_"):
            document = next(t for t in transfers if (t.get("Reference") or "").startswith(f"reveni:{rid}:{iid} "))
        elif action == "sitoo_store_stock":
            ours = [t for t in transactions["items"] if t["warehousetransactionid"] not in known]
            document = next(t for t in ours if t.get("externalid") == f"reveni:{rid}:{iid}")
        else:
            document = sitoo.get(f"{simulators.sitoo}/orders.json", params={"externalid": rid}).json()["items"][0]
        created[(action, rid, iid)] = document
    return created


@contextmanager
def mail_pipeline(embedded_server, simulators, path: Path) -> Iterator[tuple]:
    """A database of its own, the simulators serving the scenario at ``path``, a real SMTP server as
    ``smtp_default``: (database, API clients, the SMTP server's kept mails). The database is dropped after."""
    from returns_recon.warehouse.migrate import apply_migrations
    from tests.fixtures.simulators import free_port, hook_clients
    from tests.fixtures.smtp import _Keep
    from tests.fixtures.warehouse import TestDatabase

    name, password = f"t_{uuid.uuid4().hex[:12]}", uuid.uuid4().hex
    embedded_server.ensure_database(name, password, name)
    db = TestDatabase(embedded_server.host, embedded_server.port, name, password, name)
    sink, port = _Keep(), free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    smtp = {
        "conn_type": "smtp",
        "host": "127.0.0.1",
        "port": port,
        "extra": {"disable_tls": True, "disable_ssl": True, "from_email": "returns-recon@example.com"},
    }
    try:
        with pytest.MonkeyPatch.context() as env:
            for key, value in {**simulators.env(), "AIRFLOW_CONN_SMTP_DEFAULT": json.dumps(smtp)}.items():
                env.setenv(key, value)
            clients = hook_clients()
            with db.connect() as conn:
                apply_migrations(conn)
            simulators.load(path)
            yield db, clients, sink
    finally:
        controller.stop()
        with psycopg.connect(embedded_server.superuser_dsn(), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="module")
def mails(embedded_server, simulators, tmp_path_factory) -> Iterator[Mails]:
    """One database, one scenario, one SMTP server for the tests below (a pipeline run takes a while)."""
    from tests.fixtures.pipeline import cycle
    from tests.fixtures.scenarios import scenario

    path = scenario(tmp_path_factory.mktemp("mails"), 11, returns=300, event_fraction=0.0)
    world = Scenario(path)
    today = datetime.now(UTC).date()
    with mail_pipeline(embedded_server, simulators, path) as (db, clients, sink):
        cycle(db, clients, path, "mail-1", post=False)
        with db.connect(autocommit=True) as conn:
            send_mails(conn, today, "mail-1")
            journal = {
                c
                for (c,) in conn.execute(
                    "SELECT DISTINCT currency FROM recon.refund_journal WHERE day >= current_date - 14"
                )
            }
        first = delivered_by_owner(sink)
        at_risk, gaps = read_as_finance(embedded_server, db.dbname)
        # the pipeline posts its corrections, then mails the next day, and the day after
        assert cycle(db, clients, path, "mail-2").done > 0
        with db.connect(autocommit=True) as conn:
            done = conn.execute(
                "SELECT e.owner, p.action, p.return_id, p.item_id FROM recon.postings p "
                "JOIN recon.exceptions e USING (exception_key) WHERE p.status = 'done'"
            ).fetchall()
            send_mails(conn, today + timedelta(days=1), "mail-2")
            second = delivered_by_owner(sink, start=len(first))
            send_mails(conn, today + timedelta(days=2), "mail-3")
            third = delivered_by_owner(sink, start=len(first) + len(second))
            exceptions = {
                key: (owner, kind, rid)
                for key, owner, kind, rid in conn.execute(
                    "SELECT exception_key, owner, exception_type, return_id FROM recon.exceptions"
                )
            }
        yield Mails(
            world,
            first,
            second,
            third,
            journal,
            done,
            _created_documents(simulators, world, done),
            at_risk,
            gaps,
            exceptions=exceptions,
            db=db,
        )


def read_as_finance(embedded_server, dbname: str) -> tuple[list[tuple], list[tuple]]:
    """recon.money_at_risk and the open exceptions' gaps, as finance reads them: recon_reader, over the server's
    local socket (trust; the role's password stays whatever other tests set)."""
    with psycopg.connect(embedded_server.superuser_dsn(), autocommit=True) as su:
        su.execute("ALTER ROLE recon_reader LOGIN")
    with psycopg.connect(make_conninfo(embedded_server.superuser_dsn(dbname), user="recon_reader")) as reader:
        assert reader.execute("SELECT current_user").fetchone() == ("recon_reader",)
        at_risk = reader.execute(
            "SELECT owner, currency, returns, under_credited, over_credited FROM recon.money_at_risk"
        ).fetchall()
        gaps = reader.execute(
            "SELECT owner, currency, return_id, exception_key, money_at_risk FROM recon.exception_details "
            "WHERE state IN ('open', 'acknowledged') AND money_at_risk <> 0"
        ).fetchall()
    return at_risk, gaps


def send_mails(conn: psycopg.Connection, mail_date: date, run_id: str) -> dict[str, str]:
    send, from_email = smtp_sender()
    return send_digests(
        conn, send, mail_date, RECIPIENTS, from_email, run_id, all_clear_weekday=None, workbench_url=WORKBENCH
    )


def first_mail_rows(mails: Mails) -> Iterator[tuple[str, str, dict]]:
    """(owner, plain text, CSV row) of every open exception in the first mails."""
    for owner, message in mails.first.items():
        text = plain_text(message)
        for row in attached_csv(message, "open-exceptions-"):
            yield owner, text, row


def test_every_mail_has_a_date_header(mails) -> None:
    for message in [*mails.first.values(), *mails.second.values(), *mails.third.values()]:
        written = email.utils.parsedate_to_datetime(message["Date"])
        assert written.tzinfo is not None
        assert abs(written - datetime.now(UTC)) < timedelta(hours=1)


def test_the_csv_carries_the_columns_the_mail_shows(mails) -> None:
    assert set(mails.first) == set(RECIPIENTS)
    for message in mails.first.values():
        rows = attached_csv(message, "open-exceptions-")
        assert rows
        assert set(rows[0]) >= ACTIONABLE


def test_each_exception_names_its_order_and_documents(mails) -> None:
    world, checked = mails.world, set()
    for _, text, row in first_mail_rows(mails):
        rid, kind = row["return_id"], row["exception_type"]
        assert row["order_number"] == world.order(rid)
        line = lines_with(text, f"order {world.order(rid)}", f"return {rid}")
        if kind in {"credit_note_without_refund", "duplicate_credit_note", "credit_note_amount_mismatch"}:
            numbers = {n["CreditNoteNumber"] for n in world.notes(rid)[0]}
            assert numbers
            assert numbers <= set(row["credit_note_numbers"].split(", ")), row
            assert [x for x in line if all(n in x for n in numbers)], (kind, rid, numbers)
            checked.add(kind)
        if kind in {"rejected_item_in_sellable_stock", "restock_latency_breach"}:
            reference = f"reveni:{rid}:{row['item_id']}"
            numbers = {t["Number"] for t in world.transfers if t["Reference"].split(" ")[0] == reference}
            assert numbers
            assert numbers <= set(row["transfer_numbers"].split(", ")), row
            assert [x for x in lines_with(text, f"item {row['item_id']}") if all(n in x for n in numbers)]
            checked.add(kind)
        if kind in {"sitoo_stock_wrong_location", "double_refund"}:
            ids = {str(o["orderid"]) for o in world.orders if o["externalid"] == rid}
            assert ids
            assert set(row["sitoo_order_ids"].split(", ")) == ids
            assert [x for x in line if f"Sitoo order {row['sitoo_order_ids']}" in x]
            checked.add(kind)
    assert checked == {
        "credit_note_without_refund",
        "duplicate_credit_note",
        "credit_note_amount_mismatch",
        "rejected_item_in_sellable_stock",
        "restock_latency_breach",
        "sitoo_stock_wrong_location",
        "double_refund",
    }


def test_money_at_risk_is_the_gap_credited_minus_refunded_always_with_its_currency(mails) -> None:
    world, checked = mails.world, set()
    for _, text, row in first_mail_rows(mails):
        if row["money_at_risk"]:
            assert re.fullmatch(r"[A-Z]{3}", row["currency"]), row
        rid, kind = row["return_id"], row["exception_type"]
        refunded, refund_currencies = world.paid(rid)
        ours, by_hand = world.notes(rid)
        if (
            kind
            not in {
                "refund_without_credit_note",
                "credit_note_without_refund",
                "duplicate_credit_note",
                "credit_note_amount_mismatch",
            }
            or by_hand
        ):
            continue
        credited = sum((Decimal(str(n["Total"])) for n in ours), Decimal(0))
        currencies = refund_currencies | ({world.sale_currency(rid)} if ours else set())
        if len(currencies) > 1:  # a refund and a credit in two currencies are never subtracted
            assert (row["money_at_risk"], row["currency"]) == ("", ""), row
            checked.add("two currencies")
            continue
        gap, currency = credited - refunded, currencies.pop()
        assert (Decimal(row["money_at_risk"]), row["currency"]) == (gap, currency), row
        assert lines_with(text, f"order {world.order(rid)}", f"return {rid}", f"{gap:.2f} {currency}"), (kind, rid)
        checked.add(kind)
    assert checked >= {
        "refund_without_credit_note",
        "credit_note_without_refund",
        "duplicate_credit_note",
        "credit_note_amount_mismatch",
    }


def test_ages_count_from_the_returns_own_event(mails) -> None:
    world, events = mails.world, set()
    for owner, text, row in first_mail_rows(mails):
        if row["exception_type"] == "invalid_record":  # quarantined, not staged: no return event to date it by
            assert row["return_event"] == "first_seen"
            continue
        written = email.utils.parsedate_to_datetime(mails.first[owner]["Date"])
        event = world.event(row)
        assert datetime.fromisoformat(row["return_event_at"]) == event
        age = int(row["age_days"])
        assert whole_days(event, written - timedelta(minutes=1)) <= age <= whole_days(event, written), row
        assert row["return_event"] == CLOCKS.get(row["exception_type"], row["return_event"])
        events.add(row["return_event"])
        # every exception of the first mail is new: listed with its age
        assert lines_with(text, f"return {row['return_id']}", f"{age} days since {row['return_event']}"), row
    assert events == {"refunded", "validated", "received", "created"}
    # the pipeline saw them all minutes ago; the returns are days old
    assert max(int(r["age_days"]) for _, _, r in first_mail_rows(mails)) > 7


def test_wrong_location_says_where_the_stock_went(mails) -> None:
    world, seen = mails.world, 0
    for _, text, row in first_mail_rows(mails):
        if row["exception_type"] != "sitoo_stock_wrong_location":
            continue
        rid, reference = row["return_id"], f"reveni:{row['return_id']}:{row['item_id']}"
        went = {t["warehouseid"] for t in world.transactions if t["externalid"] == reference}
        expected = int(world.points[world.returns[rid]["return_point"]["id"]]["sitoo_warehouse_id"])
        assert went
        assert expected not in went
        assert row["stock_found_at"] == ", ".join(sorted(world.warehouse(w) for w in went))
        assert row["expected_warehouse"] == world.warehouse(expected)
        ids = {str(t["warehousetransactionid"]) for t in world.transactions if t["externalid"] == reference}
        assert set(row["sitoo_transaction_ids"].split(", ")) == ids
        assert lines_with(
            text, f"return {rid}", f"stock went to {row['stock_found_at']}", f"expected at {world.warehouse(expected)}"
        )
        seen += 1
    assert seen == sum(1 for e in world.expected if e["type"] == "sitoo_stock_wrong_location")


def test_one_chart_per_currency_never_summing_currencies(mails) -> None:
    assert len(mails.journal_currencies) > 1
    for owner, message in mails.first.items():
        rows = attached_csv(message, "open-exceptions-")
        gap_currencies = {r["currency"] for r in rows if r["money_at_risk"] and Decimal(r["money_at_risk"])}
        currencies = mails.journal_currencies | gap_currencies
        charts = {p.get_filename() for p in message.walk() if p.get_content_type() == "image/png"}
        assert charts == {"exceptions-by-age.png"} | {f"money-{c}.png" for c in currencies}, owner
        html = next(p for p in message.walk() if p.get_content_type() == "text/html").get_content()
        for currency in currencies:
            assert f"cid:chart-{currency}" in html


def test_the_next_mail_lists_what_the_pipeline_fixed_since_the_last_one(mails) -> None:
    world = mails.world
    # every action but the authorisation of an approved DRAFT credit note, which needs a person's approval
    unattended = {action for action, _ in ACTIONS.values()} - {"authorise_credit_note"}
    assert {action for _, action, *_ in mails.done} == unattended
    for message in mails.first.values():
        assert FIXED_SECTION not in plain_text(message)  # nothing was posted before the first mail
    for owner, action, rid, iid in mails.done:
        text = plain_text(mails.second[owner])
        fixed = text[text.index(FIXED_SECTION) :]
        document = mails.created[(action, rid, iid)]
        if action == "create_credit_note":
            amount = f"{Decimal(str(document['Total'])):.2f} {document['currency']}"
            assert lines_with(fixed, f"credit note {document['CreditNoteNumber']}", amount, f"order {world.order(rid)}")
        elif action.startswith("transfer_to_"):
            assert lines_with(fixed, f"{action.replace('_', ' ')} {document['Number']}", f"return {rid}")
        elif action == "sitoo_store_stock":
            assert lines_with(
                fixed, f"Sitoo warehouse transaction {document['warehousetransactionid']}", f"return {rid}"
            )
        else:
            refunded, currencies = world.paid(rid)
            assert lines_with(fixed, f"Sitoo return record {document['orderid']}", f"{refunded:.2f} {currencies.pop()}")
    for owner, message in mails.second.items():
        assert len(attached_csv(message, "fixed-by-pipeline-")) == sum(1 for o, *_ in mails.done if o == owner)
    # only what is new since the last mail: the mail after that lists no fix again
    assert mails.third
    for message in mails.third.values():
        assert FIXED_SECTION not in plain_text(message)
        assert not attached_csv(message, "fixed-by-pipeline-")


# "  EUR, 12 return(s): refunded more than credited -345.00 EUR, credited more than refunded 20.00 EUR"
MONEY_LINE = re.compile(
    r"^  ([A-Z]{3}), (\d+) (return|exception)\(s\): refunded more than credited (-?\d+\.\d\d) \1, "
    r"credited more than refunded (-?\d+\.\d\d) \1$",
    re.MULTILINE,
)


def cents(amount: Decimal) -> Decimal:
    return Decimal(f"{amount:.2f}")


def money_in_mail(message) -> dict[str, tuple[int, Decimal, Decimal]]:
    """The mail's money at risk per currency: (how many, refunded more than credited, credited more than refunded)."""
    found = MONEY_LINE.findall(plain_text(message))
    return {currency: (int(n), Decimal(short), Decimal(over)) for currency, n, _, short, over in found}


def finance_reads(at_risk: list[tuple]) -> dict[str, tuple[int, Decimal, Decimal]]:
    """recon.money_at_risk's rows for finance, as the mail rounds them."""
    return {
        currency: (n, cents(-(under or 0)), cents(over or 0))
        for owner, currency, n, under, over in at_risk
        if owner == "finance"
    }


def each_return_once(gaps: list[tuple]) -> dict[str, tuple[int, Decimal, Decimal]]:
    """The rule, from the open exceptions' own gaps: per currency, each return once with its largest gap (the
    lowest exception key on a tie), the negative and the positive gaps summed apart."""
    largest: dict[tuple[str, str], Decimal] = {}
    for _, currency, return_id, _, gap in sorted(gaps, key=lambda g: (-abs(g[4]), g[3])):
        largest.setdefault((currency, return_id), gap)
    totals: dict[str, tuple[int, Decimal, Decimal]] = {}
    for (currency, _), gap in largest.items():
        n, short, over = totals.get(currency, (0, Decimal(0), Decimal(0)))
        totals[currency] = (n + 1, short + min(gap, 0), over + max(gap, 0))
    return {currency: (n, cents(short), cents(over)) for currency, (n, short, over) in totals.items()}


def test_the_finance_mail_totals_are_what_finance_reads_in_money_at_risk(mails) -> None:
    """The finance mail's money at risk per currency is recon.money_at_risk's for finance, read as recon_reader
    when the mail was sent; and both follow the rule (each return once, with its largest gap)."""
    in_mail = money_in_mail(mails.first["finance"])
    assert len(in_mail) > 1, "finance has money at risk in several currencies"
    assert in_mail == finance_reads(mails.at_risk)
    assert in_mail == each_return_once([g for g in mails.gaps if g[0] == "finance"])
    assert {kind for *_, kind, _, _ in MONEY_LINE.findall(plain_text(mails.first["finance"]))} == {"return"}


@pytest.fixture(scope="module")
def two_money_exceptions(embedded_server, simulators, tmp_path_factory) -> Iterator[tuple]:
    """A pipeline run whose finance mail has returns with two money exceptions: a note made by hand of another
    total on a refunded return's sale (refund_without_credit_note and unattributed_credit_note on the return).
    (finance's mail, recon.money_at_risk's rows and the open exceptions' gaps, read as recon_reader.)"""
    from tests.fixtures.pipeline import cycle
    from tests.fixtures.scenarios import scenario

    path = scenario(
        tmp_path_factory.mktemp("two-gaps"),
        13,
        returns=80,
        event_fraction=0.0,
        messy={"note_by_hand_other_total": 0.05},
    )
    with mail_pipeline(embedded_server, simulators, path) as (db, clients, sink):
        cycle(db, clients, path, "two-gaps-1", post=False)
        with db.connect(autocommit=True) as conn:
            send_mails(conn, datetime.now(UTC).date(), "two-gaps-1")
        yield delivered_by_owner(sink)["finance"], *read_as_finance(embedded_server, db.dbname)


def test_a_return_with_two_money_exceptions_counts_once_in_the_mail_and_for_finance(two_money_exceptions) -> None:
    message, at_risk, gaps = two_money_exceptions
    finance = [g for g in gaps if g[0] == "finance"]
    per_return = Counter((currency, return_id) for _, currency, return_id, _, _ in finance)
    twice = {currency for (currency, _), n in per_return.items() if n > 1}
    assert twice, "returns with two money exceptions in one currency"
    in_mail = money_in_mail(message)
    assert in_mail == finance_reads(at_risk)
    assert in_mail == each_return_once(finance)
    for currency in twice:  # fewer returns than exceptions: each return once
        assert in_mail[currency][0] == sum(1 for c, _ in per_return if c == currency)
        assert in_mail[currency][0] < sum(n for (c, _), n in per_return.items() if c == currency)


# --- the exception workbench: every exception line of the mails links straight to its page ---------------------------
# (the HTML tables that list exceptions: the largest gaps, new since the last mail, fixed by the pipeline)
LARGEST_GAPS, NEW, FIXED = (
    ("Exception", "Order", "Return"),
    ("Exception", "Order", "Return / item"),
    ("Document created",),
)
TEXT_SECTIONS = ("Money at risk", "New since the last mail", "Fixed by the pipeline since the last mail")


def every_mail(mails: Mails) -> Iterator[tuple[str, str, email.message.EmailMessage]]:
    for when, delivered in (("first", mails.first), ("second", mails.second), ("third", mails.third)):
        for owner, message in delivered.items():
            yield when, owner, message


def linked_key(mails: Mails, url: str) -> str:
    """The key of the exception ``url`` links to, which the warehouse holds; the URL is its quoted form."""
    assert url.startswith(f"{WORKBENCH}/exceptions/"), url
    key = unquote(url.removeprefix(f"{WORKBENCH}/exceptions/"))
    assert url == f"{WORKBENCH}/exceptions/{quote(key, safe='')}"
    assert key in mails.exceptions, f"{url} links to no exception"
    return key


def test_every_exception_row_of_the_html_mails_links_to_its_page(mails) -> None:
    from tests.unit.test_workbench_links import Rows

    tables: Counter = Counter()
    for when, owner, message in every_mail(mails):
        parsed = Rows()
        parsed.feed(next(p for p in message.walk() if p.get_content_type() == "text/html").get_content())
        new_keys = set()
        for header, text, row_links in parsed.rows:
            table = next((t for t in (LARGEST_GAPS, NEW, FIXED) if tuple(header[: len(t)]) == t), None)
            if table is None:  # the totals per currency, by type, the unknown values: no exception, no link
                assert not row_links, (header, text)
                continue
            ((url, label),) = row_links
            key = linked_key(mails, url)
            exception_owner, kind, return_id = mails.exceptions[key]
            assert (exception_owner, label) == (owner, kind), (url, text)  # the type links to its own exception
            assert return_id in text
            tables[table] += 1
            if table == NEW:
                new_keys.add(key)
        if when == "first":  # every open exception is new in the first mail: each listed, each linked
            assert new_keys == {r["exception_key"] for r in attached_csv(message, "open-exceptions-")}
        if attached_csv(message, "open-exceptions-"):  # the footer: the owner's queue
            assert f"{WORKBENCH}/?owner={quote(owner).replace('%20', '+')}" in parsed.links
    assert all(tables[t] for t in (LARGEST_GAPS, NEW, FIXED)), tables


def test_every_exception_line_of_the_text_mails_ends_with_its_url(mails) -> None:
    sections: Counter = Counter()
    for when, owner, message in every_mail(mails):
        text, section, new_keys = plain_text(message), None, set()
        for line in text.splitlines():
            if not line.strip():
                section = None
            elif line.startswith(TEXT_SECTIONS):
                section = next(s for s in TEXT_SECTIONS if line.startswith(s))
            elif section and not MONEY_LINE.match(line):  # an exception's line (not a currency's totals)
                url = line.rsplit("  ", 1)[-1]
                key = linked_key(mails, url)
                exception_owner, _, return_id = mails.exceptions[key]
                assert exception_owner == owner
                assert f"return {return_id}" in line, line
                sections[section] += 1
                if section == "New since the last mail":
                    new_keys.add(key)
        if when == "first":
            assert new_keys == {r["exception_key"] for r in attached_csv(message, "open-exceptions-")}
        if attached_csv(message, "open-exceptions-"):
            assert f"exception workbench: {WORKBENCH}/?owner=" in text
    assert set(sections) == set(TEXT_SECTIONS), sections


def test_the_open_exceptions_csv_ends_with_each_ones_workbench_url(mails) -> None:
    for _, _, message in every_mail(mails):
        part = next((p for p in message.walk() if (p.get_filename() or "").startswith("open-exceptions-")), None)
        if part is None:
            continue
        header, *rows = list(csv.reader(io.StringIO(part.get_content())))
        assert header[-1] == "workbench_url"
        assert rows
        for row in rows:
            assert linked_key(mails, row[-1]) == row[0]


class Reader:
    """Airflow's auth manager as the workbench asks it, for a person who may read (a stand-in)."""

    async def person(self, request, dag_id):
        from returns_recon.workbench.security import Person

        return Person(name="auditor", may_act=False, by_bearer=False)

    def login_url(self, next_url: str) -> str:
        return "/login"

    def csrf_key(self) -> bytes:
        return b"k" * 32


def test_the_links_open_their_exceptions_page_and_the_owners_queue_in_the_workbench(mails) -> None:
    from fastapi.testclient import TestClient

    from returns_recon.workbench.app import URL_PREFIX, create_app
    from tests.unit.test_workbench_links import Rows

    urls: set[str] = set()
    for _, _, message in every_mail(mails):
        parsed = Rows()
        parsed.feed(next(p for p in message.walk() if p.get_content_type() == "text/html").get_content())
        urls |= set(parsed.links)
    assert WORKBENCH.endswith(URL_PREFIX)
    app = create_app(gatekeeper=Reader(), warehouse_dsn=lambda: mails.db.url)
    opened = Counter()
    with TestClient(app, base_url=f"http://testserver{URL_PREFIX}", root_path=URL_PREFIX) as http:
        for url in sorted(urls):
            page = http.get(url.removeprefix(WORKBENCH))
            assert page.status_code == 200, (url, page.status_code)
            if "/exceptions/" in url:
                assert f"<code>{escape(linked_key(mails, url))}</code>" in page.text, url
                opened["exception"] += 1
            else:  # the queue, the owner's exceptions only
                owner = url.split("?owner=", 1)[1].replace("+", " ")
                listed = [unescape(k) for k in re.findall(r'<tr id="row-([^"]+)"', page.text)]
                assert listed, url
                assert {mails.exceptions[k][0] for k in listed} == {owner}, url
                opened["queue"] += 1
    assert opened["exception"] > 50
    assert opened["queue"] == len(RECIPIENTS)
