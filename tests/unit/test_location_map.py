"""The location map CSV: a duplicate return point or an unknown kind stops the load, naming the file,
the line(s) and the fix; other invalid rows are still quarantined and the run goes on."""

from __future__ import annotations

from pathlib import Path

import pytest

from returns_recon.location_map import COLUMNS, LocationMapError, read_location_map

pytestmark = pytest.mark.unit

HEADER = ",".join(COLUMNS)
STORE = "rp-1,Store A,store,1,,"
WAREHOUSE = "rp-2,Main DC,warehouse,,CIN7-HOLD,CIN7-MAIN"


def write(tmp_path: Path, *rows: str) -> Path:
    path = tmp_path / "location_map.csv"
    path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    return path


def test_a_valid_file_loads(tmp_path: Path) -> None:
    mapping = read_location_map(write(tmp_path, STORE, WAREHOUSE, "rp-3,Store C,store,3,,"))
    assert [(r.return_point_id, r.kind) for r in mapping.rows] == [
        ("rp-1", "store"),
        ("rp-2", "warehouse"),
        ("rp-3", "store"),
    ]
    assert mapping.rows[0].sitoo_warehouse_id == 1
    assert mapping.invalid == []
    assert mapping.errors == []
    assert len(mapping.check_rows) == 3


def test_duplicate_return_point_names_both_lines_and_the_fix(tmp_path: Path) -> None:
    # line 1 is the header: rp-1 is on lines 3 and 5
    path = write(tmp_path, WAREHOUSE, STORE, "rp-3,Store C,store,3,,", "rp-1,Store A again,store,2,,")
    with pytest.raises(LocationMapError) as excinfo:
        read_location_map(path)
    message = str(excinfo.value)
    assert str(path) in message
    assert "lines 3 and 5: return_point_id 'rp-1' appears 2 times" in message
    assert "keep exactly one row per return point" in message
    assert "RECON_LOCATION_MAP_PATH" in message


def test_duplicate_even_when_one_copy_is_otherwise_invalid(tmp_path: Path) -> None:
    path = write(tmp_path, STORE, "rp-1,Store A,store,,,")  # the second copy also lacks sitoo_warehouse_id
    with pytest.raises(LocationMapError, match=r"lines 2 and 3: return_point_id 'rp-1'"):
        read_location_map(path)


@pytest.mark.parametrize(
    ("kind", "hint"),
    [("Store ", "did you mean 'store'?"), ("shop", None), ("WAREHOUSE", "did you mean 'warehouse'?")],
)
def test_unknown_kind_names_the_line_and_the_allowed_kinds(tmp_path: Path, kind: str, hint: str | None) -> None:
    path = write(tmp_path, WAREHOUSE, "rp-3,Store C,store,3,,", f"rp-4,Store D,{kind},4,,")
    with pytest.raises(LocationMapError) as excinfo:
        read_location_map(path)
    message = str(excinfo.value)
    assert str(path) in message
    assert f"line 4: kind {kind!r} is not 'store' or 'warehouse'" in message
    assert "write 'store' or 'warehouse' in the kind column" in message
    if hint:
        assert hint in message
    else:
        assert "did you mean" not in message


def test_every_stopping_problem_is_listed_at_once(tmp_path: Path) -> None:
    path = write(tmp_path, STORE, "rp-2,X,shop,,,", STORE)
    with pytest.raises(LocationMapError) as excinfo:
        read_location_map(path)
    message = str(excinfo.value)
    assert "2 problem(s)" in message
    assert "lines 2 and 4: return_point_id 'rp-1'" in message
    assert "line 3: kind 'shop'" in message


def test_without_stopping_the_problems_are_listed_for_the_caller(tmp_path: Path) -> None:
    mapping = read_location_map(write(tmp_path, STORE, "rp-2,X,shop,,,", STORE), stop_on_errors=False)
    assert len(mapping.errors) == 2
    assert [r.return_point_id for r in mapping.rows] == ["rp-1"]
    assert len(mapping.check_rows) == 3  # the location map suite still sees every row


def test_blank_lines_do_not_shift_line_numbers(tmp_path: Path) -> None:
    path = write(tmp_path, STORE, "", "rp-2,X,shop,,,")
    with pytest.raises(LocationMapError, match=r"line 4: kind 'shop'"):
        read_location_map(path)


def test_other_invalid_rows_are_still_quarantined_and_the_load_goes_on(tmp_path: Path) -> None:
    path = write(tmp_path, STORE, "rp-2,Main DC,warehouse,,,", "rp-5,No kind,,5,,")
    mapping = read_location_map(path)
    assert [r.return_point_id for r in mapping.rows] == ["rp-1"]
    assert [(i.key, i.error.split(":")[0]) for i in mapping.invalid] == [("rp-2", "line 3"), ("rp-5", "line 4")]
    assert "cin7_holding_location" in mapping.invalid[0].error
    assert mapping.errors == []


def test_missing_file_and_missing_columns_still_say_what_to_set(tmp_path: Path) -> None:
    with pytest.raises(LocationMapError, match="set RECON_LOCATION_MAP_PATH"):
        read_location_map(tmp_path / "absent.csv")
    path = tmp_path / "short.csv"
    path.write_text("return_point_id,kind\nrp-1,store\n")
    with pytest.raises(LocationMapError, match="lacks columns: cin7_holding_location"):
        read_location_map(path)
