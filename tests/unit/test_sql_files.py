"""The .sql files (reconcile/sql, quality/sql): each is one statement that parses as PostgreSQL, takes only named
parameters and declares exactly those it uses; the engine's declarations and the suites name every file."""

from __future__ import annotations

import re

import pytest
import sqlfluff

from returns_recon import sqlfiles
from returns_recon.quality import suites
from returns_recon.reconcile import detect, models, publish
from returns_recon.reconcile.sql import ROOT, SqlFileError, load, names, parse

pytestmark = pytest.mark.unit

FILES = names()
EVERY_FILE = [(ROOT, name) for name in FILES] + [(suites.SQL, name) for name in sqlfiles.names(suites.SQL)]


def test_the_folder_holds_the_models_checks_and_queries() -> None:
    assert {name.split("/")[0] for name in FILES} == {"models", "detect", "queue", "publish", "audits", "engine"}


@pytest.mark.parametrize(("root", "name"), EVERY_FILE, ids=[f"{r.parent.name}/{n}" for r, n in EVERY_FILE])
def test_each_file_is_one_postgres_statement_with_its_parameters_declared(root, name: str) -> None:
    statement = sqlfiles.load(root, name)  # refuses undeclared, unused or positional parameters
    text = statement.render(dict.fromkeys(statement.parameters, "1"))
    tree = sqlfluff.parse(text, dialect="postgres")  # raises on anything it cannot parse
    body = tree["file"]
    parts = body if isinstance(body, list) else [body]
    statements = [part for part in parts if "statement" in part]
    assert len(statements) == 1, f"{name}.sql holds {len(statements)} statements"
    assert not re.search(r";\s*$", statement.text), f"{name}.sql ends with a semicolon: one statement, none needed"


def test_every_model_file_is_built_and_every_built_model_has_its_file() -> None:
    built = [m.file for m in models.MODELS] + [detect.FOUND.file]
    built += [r.file for r in (*publish.BUILD, *publish.VIEW_BUILD)] + list(publish.AUDITS.values())
    expected = [name for name in FILES if name.split("/")[0] in {"models", "detect", "publish", "audits"}]
    assert sorted(built) == expected


def test_every_quality_file_is_an_asset_of_the_suites() -> None:
    assets = {check.asset.name for check in suites.mismatch_checks() + suites.structural_checks(("EUR",), 24)}
    assert set(sqlfiles.names(suites.SQL)) <= assets


def test_the_declared_exception_types_are_the_ones_found_sql_raises() -> None:
    raised = set(re.findall(r"SELECT\s+'(\w+)',", load("detect/found").text))
    declared = {c.exception_type for c in (*detect.RETURN_CHECKS, *detect.ITEM_CHECKS, *detect.OTHER_CHECKS)}
    assert raised == declared


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("-- parameters: a\nSELECT %(a)s, %(b)s", "uses"),
        ("-- parameters: a, b\nSELECT %(a)s", "uses"),
        ("SELECT %(a)s", "uses"),
        ("-- parameters:\nSELECT %s", "neither"),
        ("-- parameters:\nSELECT 'reveni:%'", "neither"),
        ("-- parameters: a\n-- parameters: a\nSELECT %(a)s", "twice"),
    ],
)
def test_a_file_breaking_the_conventions_is_refused(text: str, problem: str) -> None:
    with pytest.raises(SqlFileError, match=problem):
        parse("example", text)


def test_render_writes_the_values_in_as_literals_and_percent_signs_as_themselves() -> None:
    statement = parse("example", "-- parameters: sla, name\nSELECT x + %(sla)s, %(name)s, 'reveni:%%' LIKE y")
    rendered = statement.render({"sla": "48 hours", "name": "O'Brien", "unused": 1})
    assert rendered.endswith("SELECT x + '48 hours', 'O''Brien', 'reveni:%' LIKE y")
    assert statement.values({"sla": 1, "name": 2, "unused": 3}) == {"sla": 1, "name": 2}
    with pytest.raises(SqlFileError, match="needs name"):
        statement.values({"sla": 1})


def test_no_file_restates_the_reference_format_with_offsets() -> None:
    for root, name in EVERY_FILE:
        text = (root / f"{name}.sql").read_text()
        assert not re.search(r"substr\([^)]*,\s*\d+\)", text), f"{name}.sql cuts a reference at a magic offset"
        assert "'reveni:" not in text, f"{name}.sql spells out a reference"
        assert "'reveni-exchange:" not in text, f"{name}.sql spells out a reference"
