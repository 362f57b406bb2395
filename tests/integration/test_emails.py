"""The daily DAG mails each owner their exceptions, once a day, through a real SMTP server."""

from __future__ import annotations

import csv
import email
import io
import json
from email import policy
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

pytestmark = pytest.mark.integration

RECIPIENTS = {"finance": ["fin@example.com"], "operations": ["ops@example.com"],
              "customer service": ["care@example.com"], "data": ["data@example.com"]}  # fmt: skip


def parts(message):
    return list(message.walk())


def written_text(folder: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in folder.rglob("*") if p.is_file())


def every_table_as_text(url: str) -> str:
    with psycopg.connect(url) as conn:
        tables = conn.execute("SELECT table_schema, table_name FROM information_schema.tables "
                              "WHERE table_schema IN ('public', 'raw', 'staging', 'recon') "
                              "AND table_type = 'BASE TABLE'").fetchall()  # fmt: skip
        assert len(tables) > 20
        chunks = []
        for schema, table in tables:
            query = sql.SQL("SELECT coalesce(string_agg(t::text, E'\\n'), '') FROM {}.{} t")
            chunks.append(conn.execute(query.format(sql.Identifier(schema), sql.Identifier(table))).fetchone()[0])
    return "\n".join(chunks)


def test_daily_run_sends_one_mail_per_owner_once_and_leaks_no_secret(run_dag, airflow_home, empty_database,
                                                                     simulators, small_scenario, smtp_sink,
                                                                     tmp_path) -> None:  # fmt: skip
    sink, smtp_env = smtp_sink
    simulators.load(small_scenario)
    docs = tmp_path / "data_docs"
    env = {"AIRFLOW_CONN_RECON_WAREHOUSE": empty_database.airflow_conn_json(), **simulators.env(), **smtp_env,
           "RECON_EMAIL_RECIPIENTS": json.dumps(RECIPIENTS), "RECON_FINANCE_ALL_CLEAR_WEEKDAY": "7",
           "RECON_DATA_DOCS_DIR": str(docs)}  # fmt: skip
    result = run_dag("returns_recon_daily", **env)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert sorted(m["To"] for m in sink.messages) == sorted(a[0] for a in RECIPIENTS.values())
    with psycopg.connect(empty_database.url) as conn:
        open_keys = {}
        for owner, key in conn.execute(
            "SELECT owner, exception_key FROM recon.exceptions WHERE state IN ('open', 'acknowledged')"
        ):
            open_keys.setdefault(owner, set()).add(key)
    secrets = [empty_database.password, "reveni-demo-api-key", "sitoo-demo-password",
               "0e9c2f4b-8a1d-4c3e-b5f6-7a8b9c0d1e2f"]  # fmt: skip
    for message in sink.messages:
        owner = next(o for o, to in RECIPIENTS.items() if to[0] == message["To"])
        types = {p.get_content_type() for p in parts(message)}
        assert {"text/plain", "text/html", "image/png", "text/csv"} <= types
        attachment = next(p for p in parts(message) if p.get_content_type() == "text/csv")
        rows = list(csv.DictReader(io.StringIO(attachment.get_payload(decode=True).decode())))
        assert {r["exception_key"] for r in rows} == open_keys[owner]
        raw = message.as_string()
        for secret in secrets:
            assert secret not in raw
        html = next(p for p in parts(message) if p.get_content_type() == "text/html").get_payload(decode=True)
        assert b"cid:chart" in html
    again = run_dag("returns_recon_daily", **env)
    assert again.returncode == 0, (again.stdout + again.stderr)[-3000:]
    assert len(sink.messages) == len(RECIPIENTS)
    # the planted secrets (the warehouse password is new for this test) appear nowhere: not in the
    # task logs, the tables, the mails, nor any file the run wrote (logs, Data Docs)
    assert list(docs.rglob("*.html")), "the run wrote its Data Docs"
    places = {"output": result.stdout + result.stderr + again.stdout + again.stderr,
              "airflow logs and files": written_text(airflow_home), "data docs": written_text(docs),
              "tables": every_table_as_text(empty_database.url),
              "mails": "\n".join(m.as_string() for m in sink.messages)}  # fmt: skip
    assert "returns_recon_daily" in places["output"]
    for where, text in places.items():
        for secret in secrets:
            assert secret not in text, f"a secret appears in the {where}"


def test_a_failed_run_sends_exactly_one_alert(run_dag, empty_database, simulators, smtp_sink) -> None:
    sink, smtp_env = smtp_sink
    broken = json.dumps({"conn_type": "http", "host": "127.0.0.1", "login": "90001-1"})
    result = run_dag("returns_recon_hourly", AIRFLOW_CONN_RECON_WAREHOUSE=empty_database.airflow_conn_json(),
                     AIRFLOW_CONN_SITOO_DEFAULT=broken, RECON_EMAIL_RECIPIENTS=json.dumps(RECIPIENTS),
                     RECON_TASK_RETRIES="2", **smtp_env)  # fmt: skip
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
    env = {"AIRFLOW_CONN_RECON_WAREHOUSE": empty_database.airflow_conn_json(), **simulators.env(), **smtp_env,
           "RECON_EMAIL_RECIPIENTS": json.dumps(RECIPIENTS), "RECON_FINANCE_ALL_CLEAR_WEEKDAY": "7",
           "RECON_LOCATION_MAP_PATH": str(location_map_csv_path(path)),
           "RECON_DATA_DOCS_DIR": str(tmp_path / "data_docs")}  # fmt: skip
    result = run_dag("returns_recon_daily", **env)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    with psycopg.connect(empty_database.url) as conn:  # the values went through the pipeline into the queue
        skus = {r[0] for r in conn.execute("SELECT sku FROM recon.exceptions WHERE state = 'open'")}
        points = {r[0]: r[1] for r in conn.execute(
            "SELECT evidence ->> 'return_point_id', owner FROM recon.exceptions "
            "WHERE exception_type = 'unmapped_location' AND state = 'open'")}  # fmt: skip
        stored = conn.execute("SELECT return_id, return_point_id, status, created_at FROM staging.stg_reveni__returns "
                              "WHERE return_point_id IN (%s, %s)", (IMG, CMD)).fetchall()  # fmt: skip
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
        assert set(headers.keys()) <= {"Subject", "From", "To", "Message-ID", "MIME-Version", "Content-Type"}
        bodies = {p.get_content_type(): p.get_payload(decode=True).decode() for p in parts(message)
                  if p.get_content_type() in ("text/plain", "text/html")}  # fmt: skip
        for value in (SCRIPT, IMG, "<img src=x", "<script"):
            assert value not in bodies["text/html"]
        everything = message.as_string() + "".join(bodies.values())
        for value in (CUSTOMER, "onmouseover", "alert(2)"):  # customer names never reach a mail, in any form
            assert value not in everything
        attachment = next(p for p in parts(message) if p.get_content_type() == "text/csv")
        rows = list(csv.DictReader(io.StringIO(attachment.get_payload(decode=True).decode())))
        for row in rows:
            for column, cell in row.items():
                if column not in ("occurrences", "money_at_risk"):
                    assert not (cell or "").startswith(FORMULA_STARTS), (column, cell)
                cells.append(cell or "")
    assert not [c for c in cells if "onmouseover" in c or "alert(2)" in c]
    assert "'" + HYPERLINK in cells
    assert "'" + CMD in cells
