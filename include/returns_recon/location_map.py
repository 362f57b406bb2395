"""The merchant's location map: which Reveni return point is a store or a warehouse, and where
its returns belong in Sitoo and Cin7 Core. Loaded from CSV, versioned by content hash."""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import psycopg
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from returns_recon.errors import NotRetryable
from returns_recon.warehouse.loader import Invalid, quarantine
from returns_recon.warehouse.rows import one_row

COLUMNS = (
    "return_point_id",
    "return_point_name",
    "kind",
    "sitoo_warehouse_id",
    "cin7_holding_location",
    "cin7_sellable_location",
)


class LocationMapError(NotRetryable):
    pass


class LocationMapRow(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    return_point_id: str = Field(min_length=1)
    return_point_name: str | None = None
    kind: Literal["store", "warehouse"]
    sitoo_warehouse_id: int | None = None
    cin7_holding_location: str | None = None
    cin7_sellable_location: str | None = None

    @field_validator("*", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @model_validator(mode="after")
    def _complete(self) -> LocationMapRow:
        if self.kind == "store" and self.sitoo_warehouse_id is None:
            raise ValueError("a store needs sitoo_warehouse_id")
        if self.kind == "warehouse" and not (self.cin7_holding_location and self.cin7_sellable_location):
            raise ValueError("a warehouse needs cin7_holding_location and cin7_sellable_location")
        return self


KINDS = ("store", "warehouse")


@dataclass
class LocationMap:
    version: str
    rows: list[LocationMapRow] = field(default_factory=list)
    invalid: list[Invalid] = field(default_factory=list)
    check_rows: list[dict] = field(default_factory=list)  # what the location map suite validates
    errors: list[str] = field(default_factory=list)  # what stops the load: duplicates, unknown kinds


def _kind_error(number: int, kind: str) -> str:
    allowed = " or ".join(f"'{k}'" for k in KINDS)
    near = next((k for k in KINDS if kind.strip().lower() == k), None)
    hint = f" (did you mean '{near}'? kinds are lower case, without spaces)" if near else ""
    return f"line {number}: kind {kind!r} is not {allowed}{hint}; write {allowed} in the kind column"


def _duplicate_error(return_point_id: str, numbers: list[int]) -> str:
    lines = ", ".join(str(n) for n in numbers[:-1]) + f" and {numbers[-1]}"
    return (
        f"lines {lines}: return_point_id {return_point_id!r} appears {len(numbers)} times; "
        "keep exactly one row per return point (delete or merge the others)"
    )


def read_location_map(path: Path, *, stop_on_errors: bool = True) -> LocationMap:
    """Parse the CSV. A duplicate return_point_id or a kind other than store/warehouse stops the load
    (LocationMapError naming the file and lines; with ``stop_on_errors=False`` they are only listed in
    ``errors``): quarantining such a row would silently turn a store into an unmapped location. Other
    invalid rows are quarantined (``invalid``) and the run goes on."""
    if not path.is_file():
        raise LocationMapError(
            f"location map not found at {path}: set RECON_LOCATION_MAP_PATH to the merchant's CSV "
            f"(columns: {', '.join(COLUMNS)})"
        )
    content = path.read_bytes()
    result = LocationMap(hashlib.sha256(content).hexdigest()[:16])
    reader = csv.DictReader(content.decode("utf-8-sig").splitlines())
    missing = set(COLUMNS) - set(reader.fieldnames or [])
    if missing:
        raise LocationMapError(f"location map {path} lacks columns: {', '.join(sorted(missing))}")
    seen: set[str] = set()
    lines_of: dict[str, list[int]] = {}
    for raw in reader:
        number = reader.line_num  # the file's line (blank lines are skipped but counted)
        check = {
            "return_point_id": raw.get("return_point_id") or None,
            "kind": raw.get("kind") or None,
            "complete": True,
        }
        result.check_rows.append(check)
        return_point_id = (raw.get("return_point_id") or "").strip()
        if return_point_id:
            lines_of.setdefault(return_point_id, []).append(number)
        kind = raw.get("kind") or ""
        if kind.strip() and kind.strip() not in KINDS:
            result.errors.append(_kind_error(number, kind))
            check["complete"] = None
            continue
        try:
            row = LocationMapRow.model_validate({k: raw.get(k) for k in COLUMNS})
        except ValidationError as err:
            reason = "; ".join(e["msg"] for e in err.errors(include_url=False))
            result.invalid.append(Invalid(raw.get("return_point_id") or None, raw, f"line {number}: {reason}"))
            check["complete"] = None
            continue
        if row.return_point_id in seen:
            continue  # reported below: the load stops
        seen.add(row.return_point_id)
        result.rows.append(row)
    duplicates = [_duplicate_error(rp, numbers) for rp, numbers in lines_of.items() if len(numbers) > 1]
    result.errors[:0] = duplicates
    if stop_on_errors:
        raise_errors(path, result)
    return result


def raise_errors(path: Path, mapping: LocationMap) -> None:
    if mapping.errors:
        raise LocationMapError(
            f"location map {path} cannot be loaded ({len(mapping.errors)} problem(s); nothing was loaded):\n- "
            + "\n- ".join(mapping.errors)
            + "\nFix the file (RECON_LOCATION_MAP_PATH), then clear the task."
        )


def load_location_map(
    conn: psycopg.Connection, path: Path, run_id: str, docs_dir: Path | None = None
) -> dict[str, object]:
    """Check the file (location map suite), then replace ``staging.dim_location_map`` when its content
    changed; quarantine bad rows. Duplicate return points and unknown kinds fail the load (a
    LocationMapError naming the lines): the map cannot be trusted. The suite's results are stored
    either way."""
    from returns_recon.quality.runner import enforce, run_location_map_checks, store

    mapping = read_location_map(path, stop_on_errors=False)
    report = run_location_map_checks(mapping.check_rows, docs_dir, run_name=run_id)
    store(conn, run_id, report)
    raise_errors(path, mapping)
    enforce(report)
    with conn.transaction():
        current = one_row(conn.execute("SELECT max(map_version) FROM staging.dim_location_map"))[0]
        if current != mapping.version:
            conn.execute("DELETE FROM staging.dim_location_map")
            with conn.cursor().copy(
                "COPY staging.dim_location_map (return_point_id, return_point_name, kind, sitoo_warehouse_id, "
                "cin7_holding_location, cin7_sellable_location, map_version) FROM STDIN"
            ) as copy:
                for row in mapping.rows:
                    copy.write_row((*[getattr(row, c) for c in COLUMNS], mapping.version))
        if mapping.invalid:
            quarantine(conn, "merchant", "location_map", mapping.invalid, run_id)
    return {
        "version": mapping.version,
        "rows": len(mapping.rows),
        "invalid": len(mapping.invalid),
        "reloaded": current != mapping.version,
    }
