"""`make reader-url`: finance's libpq URL, recon_reader on the warehouse of AIRFLOW_CONN_RECON_WAREHOUSE, every part
escaped so any password survives, schema recon first on the search path; no password, no URL."""

from __future__ import annotations

import json

import pytest
from psycopg.conninfo import conninfo_to_dict

from local_stack.__main__ import main

pytestmark = pytest.mark.unit

WAREHOUSE = {
    "conn_type": "postgres",
    "host": "db.internal",
    "port": 6543,
    "login": "recon",
    "password": "pipeline-secret",
    "schema": "recon wh",
}


def test_reader_url_names_the_reader_and_escapes_its_password(monkeypatch, capsys) -> None:
    password = "p@ss:/w rd%?#&="
    monkeypatch.setenv("AIRFLOW_CONN_RECON_WAREHOUSE", json.dumps(WAREHOUSE))
    monkeypatch.setenv("RECON_READER_PASSWORD", password)
    assert main(["reader-url"]) == 0
    url = capsys.readouterr().out.strip()
    expected = {
        "user": "recon_reader",
        "password": password,
        "host": "db.internal",
        "port": "6543",
        "dbname": "recon wh",
        "options": "-csearch_path=recon",
    }
    assert conninfo_to_dict(url) == expected
    assert "pipeline-secret" not in url


def test_reader_url_without_a_reader_password_says_how_to_give_one(monkeypatch, capsys) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_RECON_WAREHOUSE", json.dumps(WAREHOUSE))
    monkeypatch.setenv("RECON_READER_PASSWORD", "")
    with pytest.raises(SystemExit, match="RECON_READER_PASSWORD is not set"):
        main(["reader-url"])
    assert capsys.readouterr().out == ""
