"""The data-quality stage of a run: every warehouse suite, results stored, docs rendered."""

from __future__ import annotations

from pathlib import Path

import psycopg

from returns_recon.quality.runner import Report, run_checks, store
from returns_recon.quality.suites import mismatch_checks, structural_checks
from returns_recon.settings import ReconSettings


def check_warehouse(
    conn: psycopg.Connection, warehouse_url: str, run_id: str, settings: ReconSettings, docs_dir: Path | None
) -> Report:
    checks = mismatch_checks() + structural_checks(settings.currencies, settings.freshness_hours)
    report = run_checks(warehouse_url, checks, docs_dir, run_name=run_id)
    store(conn, run_id, report)
    return report
