"""The merchants file (RECON_MERCHANTS_PATH, returns_recon.merchants): what a valid file means, and that every
mistake is reported at its file, line and column, with the field."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from returns_recon.merchants import (
    ENV_VAR,
    POOL_SLOTS,
    MerchantsFile,
    MerchantsFileError,
    load_merchants,
    parse_merchants,
)
from returns_recon.settings import ReconSettings

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "include" / "merchants.example.yaml"

# line numbers, as the errors count them, are on the right
VALID = """\
merchants:                              # 1
  - id: acme                            # 2
    name: Acme Outdoor                  # 3
    connections:                        # 4
      warehouse: recon_warehouse_acme   # 5
      reveni: reveni_acme               # 6
      cin7: cin7_core_acme              # 7
      sitoo: sitoo_acme                 # 8
      cin7_webhook: cin7_webhook_acme   # 9
    location_map: maps/acme.csv         # 10
    events: true                        # 11
    settings:                           # 12
      credit_note_approval_threshold: 500   # 13
      postings_dry_run: true            # 14
      email_recipients: {finance: [finance@acme.example]}   # 15
      restock_sla_hours: 12             # 16
  - id: bee                             # 17
    connections:                        # 18
      warehouse: recon_warehouse_bee    # 19
      reveni: reveni_bee                # 20
      cin7: cin7_core_acme              # 21
    location_map: /srv/maps/bee.csv     # 22
"""


def write(tmp_path: Path, text: str, name: str = "merchants.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def problems(tmp_path: Path, text: str) -> list[str]:
    path = write(tmp_path, text)
    with pytest.raises(MerchantsFileError) as caught:
        load_merchants(path)
    assert str(caught.value) == "\n".join(caught.value.problems)
    assert all(p.startswith(f"{path} line ") for p in caught.value.problems), caught.value.problems
    return [p.removeprefix(f"{path} ") for p in caught.value.problems]


@pytest.fixture
def base(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ReconSettings:
    """The environment's settings: some set, the rest defaults."""
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow"))
    monkeypatch.delenv("RECON_DATA_DOCS_DIR", raising=False)
    monkeypatch.setenv("RECON_RESTOCK_SLA_HOURS", "30")
    monkeypatch.setenv("RECON_TRAILING_DAYS", "5")
    monkeypatch.setenv("RECON_POSTINGS_DRY_RUN", "false")
    monkeypatch.setenv("RECON_EMAIL_RECIPIENTS", '{"finance": ["f@env.example"], "data": ["d@env.example"]}')
    return ReconSettings()


# --- a valid file ------------------------------------------------------------------------------------------------


def test_a_valid_file_and_its_defaults(tmp_path: Path) -> None:
    merchants = load_merchants(write(tmp_path, VALID))
    assert merchants is not None
    acme, bee = merchants.merchants
    assert merchants.ids == ("acme", "bee")
    assert merchants.by_id("bee") is bee
    assert (acme.name, bee.name) == ("Acme Outdoor", "bee")  # the name defaults to the id
    assert acme.connections.sitoo == "sitoo_acme"
    assert acme.has_stores
    assert acme.events
    # sitoo, smtp, cin7_webhook and events are optional
    assert bee.connections.sitoo is None
    assert not bee.has_stores
    assert bee.connections.smtp == "smtp_default"
    assert bee.connections.cin7_webhook is None
    assert bee.events is False
    assert bee.overrides == {}
    # a relative map is beside the file, an absolute one stays
    assert acme.location_map == tmp_path / "maps" / "acme.csv"
    assert bee.location_map == Path("/srv/maps/bee.csv")
    assert set(acme.overrides) == {
        "credit_note_approval_threshold",
        "postings_dry_run",
        "email_recipients",
        "restock_sla_hours",
    }


def test_the_effective_settings_are_the_environment_with_the_merchants_overrides(
    tmp_path: Path, base: ReconSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    merchants = load_merchants(write(tmp_path, VALID))
    assert merchants is not None
    acme, bee = merchants.merchants
    monkeypatch.setenv("RECON_MAX_POSTINGS_PER_RUN", "3")  # set after base was read: not read again
    mine = acme.settings_for(base)
    assert type(mine) is ReconSettings
    assert mine.credit_note_approval_threshold == 500
    assert mine.postings_dry_run is True  # the file wins over RECON_POSTINGS_DRY_RUN=false
    assert mine.restock_sla_hours == 12  # ... and over RECON_RESTOCK_SLA_HOURS=30
    assert mine.email_recipients == {"finance": ["finance@acme.example"]}  # replaces RECON_EMAIL_RECIPIENTS
    assert mine.trailing_days == 5  # the rest is the environment's
    assert mine.max_postings_per_run == base.max_postings_per_run == 200
    assert mine.location_map_path == tmp_path / "maps" / "acme.csv"
    assert mine.data_docs_dir == tmp_path / "airflow" / "data_docs" / "acme"
    # what the environment or the file set is marked set (migrate.py asks), the rest is not
    assert {"restock_sla_hours", "trailing_days", "postings_dry_run", "location_map_path"} <= mine.model_fields_set
    assert "reader_idle_timeout_seconds" not in mine.model_fields_set
    # another merchant's overrides never leak
    theirs = bee.settings_for(base)
    assert theirs.restock_sla_hours == 30
    assert theirs.postings_dry_run is False
    assert theirs.credit_note_approval_threshold == 1000
    assert theirs.email_recipients == base.email_recipients
    assert theirs.data_docs_dir == tmp_path / "airflow" / "data_docs" / "bee"
    assert base.location_map_path != theirs.location_map_path  # and the environment's settings are untouched
    assert base.restock_sla_hours == 30


def test_a_merchant_may_set_its_data_docs_dir_beside_the_file(tmp_path: Path, base: ReconSettings) -> None:
    text = VALID.replace("      restock_sla_hours: 12", "      data_docs_dir: docs/acme")
    merchants = load_merchants(write(tmp_path, text))
    assert merchants is not None
    assert merchants.merchants[0].settings_for(base).data_docs_dir == tmp_path / "docs" / "acme"


def test_settings_that_do_not_fit_the_environment_fail_naming_the_file_line(tmp_path: Path) -> None:
    # RECON_PUBLISH_LOCK_WAIT_SECONDS (420) must outlast the reader timeout: checked with the environment's values
    text = VALID.replace("      restock_sla_hours: 12", "      reader_idle_timeout_seconds: 3000")
    merchants = load_merchants(write(tmp_path, text))
    assert merchants is not None
    with pytest.raises(MerchantsFileError) as caught:
        merchants.merchants[0].settings_for(ReconSettings(publish_lock_wait_seconds=420))
    (problem,) = caught.value.problems
    assert problem.startswith(f"{tmp_path / 'merchants.yaml'} line 12, column 5 (merchants[0].settings): ")
    assert "RECON_PUBLISH_LOCK_WAIT_SECONDS (420)" in problem
    assert "merchant 'acme'" in problem
    fits = merchants.merchants[0].settings_for(ReconSettings(publish_lock_wait_seconds=3100))
    assert fits.reader_idle_timeout_seconds == 3000


# --- loading and caching -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [None, "", "  "])
def test_without_the_variable_there_is_one_merchant_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, value: str | None
) -> None:
    if value is None:
        monkeypatch.delenv(ENV_VAR, raising=False)
    else:
        monkeypatch.setenv(ENV_VAR, value)
    assert load_merchants() is None


def test_the_variable_names_the_file_and_a_load_is_cached_until_the_file_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, VALID)
    monkeypatch.setenv(ENV_VAR, str(path))
    first = load_merchants()
    assert first is not None
    assert first.ids == ("acme", "bee")
    assert load_merchants() is first  # parsed once
    path.write_text(VALID.replace("id: bee", "id: cee"))
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    second = load_merchants()
    assert second is not None
    assert second.ids == ("acme", "cee")


def test_a_missing_file_is_an_error_naming_it_and_the_variable(tmp_path: Path) -> None:
    with pytest.raises(MerchantsFileError, match=rf"^{tmp_path / 'nowhere.yaml'}: the merchants file \({ENV_VAR}\)"):
        load_merchants(tmp_path / "nowhere.yaml")
    assert issubclass(MerchantsFileError, ValueError)


# --- mistakes, at their line -------------------------------------------------------------------------------------


def test_a_wrong_type_is_named_at_its_value(tmp_path: Path) -> None:
    text = VALID.replace("postings_dry_run: true ", "postings_dry_run: maybe")
    assert problems(tmp_path, text) == [
        "line 14, column 25 (merchants[0].settings.postings_dry_run): "
        "Input should be a valid boolean, unable to interpret input"
    ]


def test_a_setting_breaking_its_constraint_is_named(tmp_path: Path) -> None:
    text = VALID.replace("restock_sla_hours: 12", "detail_workers: 99   ")
    assert problems(tmp_path, text) == [
        "line 16, column 23 (merchants[0].settings.detail_workers): Input should be less than or equal to 16"
    ]


def test_an_unknown_setting_names_the_close_matches(tmp_path: Path) -> None:
    text = VALID.replace("postings_dry_run: true ", "postings_dryrun: true  ")
    (problem,) = problems(tmp_path, text)
    assert problem.startswith(
        "line 14, column 7 (merchants[0].settings.postings_dryrun): 'postings_dryrun' is not a setting; "
        "did you mean 'postings_dry_run'"
    )


def test_the_location_map_is_not_a_setting(tmp_path: Path) -> None:
    text = VALID.replace("restock_sla_hours: 12", "location_map_path: x.csv")
    (problem,) = problems(tmp_path, text)
    assert problem.startswith("line 16, column 7 (merchants[0].settings.location_map_path): ")
    assert "location_map" in problem.split(": ", 1)[1].removeprefix("'location_map_path'")


def test_an_unknown_field_names_the_close_matches(tmp_path: Path) -> None:
    text = VALID.replace("      sitoo: sitoo_acme", "      sito: sitoo_acme ")
    assert problems(tmp_path, text) == [
        "line 8, column 7 (merchants[0].connections.sito): unknown field 'sito'; did you mean 'sitoo'?"
    ]


def test_duplicate_ids_are_named_at_the_second(tmp_path: Path) -> None:
    text = VALID.replace("id: bee", "id: acme")
    assert problems(tmp_path, text) == [
        "line 17, column 9 (merchants[1].id): duplicate merchant id 'acme' (merchants[0] has it too)"
    ]


def test_two_merchants_may_not_share_a_warehouse(tmp_path: Path) -> None:
    text = VALID.replace("warehouse: recon_warehouse_bee", "warehouse: recon_warehouse_acme")
    (problem,) = problems(tmp_path, text)
    assert problem.startswith(
        "line 19, column 18 (merchants[1].connections.warehouse): warehouse connection 'recon_warehouse_acme' is "
        "merchants[0]'s too"
    )


def test_merchants_may_share_an_api_account_and_so_its_pool(tmp_path: Path) -> None:
    merchants = load_merchants(write(tmp_path, VALID))  # both use cin7_core_acme
    assert merchants is not None
    acme, bee = merchants.merchants
    assert acme.pool("cin7") == bee.pool("cin7") == "cin7__cin7_core_acme"
    assert merchants.pools() == {
        "reveni__reveni_acme": 2,
        "cin7__cin7_core_acme": 1,
        "sitoo__sitoo_acme": 2,
        "reveni__reveni_bee": 2,
    }


def test_a_duplicate_yaml_key_is_an_error(tmp_path: Path) -> None:
    text = VALID.replace("      cin7: cin7_core_acme              # 7", "      reveni: reveni_other")
    assert problems(tmp_path, text) == [
        "line 4, column 5 (merchants[0].connections.cin7): Field required",  # the line it replaced
        "line 7, column 7 (merchants[0].connections.reveni): duplicate key 'reveni' (first at line 6, column 7; "
        "YAML would keep only the last)",
    ]


def test_a_missing_connection_is_named_at_the_mapping_that_lacks_it(tmp_path: Path) -> None:
    text = VALID.replace("      reveni: reveni_bee", "")
    assert problems(tmp_path, text) == ["line 18, column 5 (merchants[1].connections.reveni): Field required"]


def test_a_missing_field_of_a_merchant_is_named_at_the_merchant(tmp_path: Path) -> None:
    text = VALID.replace("    location_map: /srv/maps/bee.csv", "")
    assert problems(tmp_path, text) == ["line 17, column 5 (merchants[1].location_map): Field required"]


@pytest.mark.parametrize("bad_id", ["Acme", "a", "9lives", "acme-outdoor", "x" * 31])
def test_a_bad_id_is_named(tmp_path: Path, bad_id: str) -> None:
    text = VALID.replace("id: bee", f"id: {bad_id}")
    (problem,) = problems(tmp_path, text)
    assert problem.startswith("line 17, column 9 (merchants[1].id): String should match pattern")


def test_several_mistakes_are_listed_one_a_line_in_file_order(tmp_path: Path) -> None:
    text = VALID.replace("id: bee", "id: acme").replace("postings_dry_run: true ", "postings_dry_run: maybe")
    text = text.replace("      sitoo: sitoo_acme", "      sito: sitoo_acme ")
    found = problems(tmp_path, text)
    assert [p.split(" (")[0] for p in found] == ["line 8, column 7", "line 14, column 25", "line 17, column 9"]


def test_bad_yaml_is_named_at_its_line(tmp_path: Path) -> None:
    text = VALID.replace("      restock_sla_hours: 12", "      restock_sla_hours: [12")
    (problem,) = problems(tmp_path, text)
    assert problem.startswith("line 17, column 3: not valid YAML: ")


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("- id: acme\n", "a YAML list"),
        ("", "an empty file"),
        ("# nothing\n", "an empty file"),
        ("acme\n", "a YAML str"),
    ],
)
def test_the_top_must_be_a_mapping(tmp_path: Path, text: str, found: str) -> None:
    assert problems(tmp_path, text) == [f"line 1, column 1: {found}, expected a mapping with a 'merchants' list"]


def test_an_empty_list_of_merchants_is_an_error(tmp_path: Path) -> None:
    (problem,) = problems(tmp_path, "# no one yet\nmerchants: []\n")
    assert problem.startswith(f"line 2, column 12 (merchants): no merchants: list at least one (or unset {ENV_VAR}")


def test_the_merchants_list_is_required(tmp_path: Path) -> None:
    assert problems(tmp_path, "merchant:\n  - id: acme\n") == [
        "line 1, column 1 (merchants): Field required",
        "line 1, column 1 (merchant): unknown field 'merchant'; did you mean 'merchants'?",
    ]


def test_the_model_checks_the_same_without_a_file() -> None:
    data = parse_merchants(VALID).model_dump()
    data["merchants"][1]["id"] = "acme"
    with pytest.raises(ValidationError) as caught:
        MerchantsFile.model_validate(data)
    assert [(e["loc"], e["type"]) for e in caught.value.errors()] == [(("merchants", 1, "id"), "duplicate_id")]


# --- names ------------------------------------------------------------------------------------------------------


def test_names_derived_from_the_id_and_the_connections(tmp_path: Path) -> None:
    merchants = load_merchants(write(tmp_path, VALID))
    assert merchants is not None
    acme, bee = merchants.merchants
    assert acme.reader_role == "recon_reader_acme"
    assert acme.dag_id("hourly") == "returns_recon_acme_hourly"
    assert acme.dag_ids() == (
        "returns_recon_acme_hourly",
        "returns_recon_acme_daily",
        "returns_recon_acme_golive_check",
        "returns_recon_acme_events",
    )
    assert "returns_recon_bee_events" not in bee.dag_ids()  # events: false
    assert (acme.pool("reveni"), acme.pool("sitoo")) == ("reveni__reveni_acme", "sitoo__sitoo_acme")
    with pytest.raises(ValueError, match="no sitoo connection"):
        bee.pool("sitoo")
    with pytest.raises(ValueError, match="no pool for 'smtp'"):
        acme.pool("smtp")  # type: ignore[arg-type]


def test_a_merchants_pools_have_the_single_merchants_slots() -> None:
    from returns_recon.orchestration.defaults import CIN7_POOL, POOLS, REVENI_POOL, SITOO_POOL

    single = {"reveni": POOLS[REVENI_POOL], "cin7": POOLS[CIN7_POOL], "sitoo": POOLS[SITOO_POOL]}
    assert single == POOL_SLOTS


# --- the example -------------------------------------------------------------------------------------------------


def test_the_example_file_loads_and_its_maps_fit(base: ReconSettings) -> None:
    merchants = load_merchants(EXAMPLE)
    assert merchants is not None
    with_stores, without = merchants.merchants
    assert with_stores.has_stores
    assert with_stores.events
    assert not without.has_stores
    assert not without.events
    for merchant in merchants.merchants:
        settings = merchant.settings_for(base)
        assert settings.location_map_path.is_file(), settings.location_map_path
        assert settings.location_map_path.parent == EXAMPLE.parent
    with (without.location_map).open(newline="") as rows:
        kinds = {row["kind"] for row in csv.DictReader(rows)}
    assert kinds == {"warehouse"}  # no stores: nothing returned at a store


def test_the_readmes_example_is_a_valid_merchants_file() -> None:
    section = (ROOT / "README.md").read_text().split("### Several merchants", 1)[1]
    block = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    shown = parse_merchants(block, "README.md")
    example = load_merchants(EXAMPLE)
    assert example is not None
    assert shown.ids == example.ids
    assert [m.connections for m in shown.merchants] == [m.connections for m in example.merchants]
