"""Run the suites through Great Expectations, store every result in ``recon.dq_results``,
render Data Docs, and say in a few lines what failed."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from returns_recon.errors import NotRetryable
from returns_recon.quality import data_docs
from returns_recon.quality.suites import LOCATION_MAP_CHECKS, Check

log = logging.getLogger(__name__)
# GX's own INFO lines are noise in a task log: importing it alone logs dozens of "Skipping registering
# function ..." (its public-API bookkeeping). Set before the first import of great_expectations, which
# only this module does; GX's warnings and errors still show.
logging.getLogger("great_expectations").setLevel(logging.WARNING)
URL_VARIABLE = "RECON_GX_WAREHOUSE_URL"  # the datasource names the variable, never the password
SAMPLE = 20


class DataQualityFailed(NotRetryable):
    """A critical expectation failed: the data is not trustworthy; nothing downstream may post."""


@dataclass
class Outcome:
    suite: str
    expectation: str
    severity: str
    success: bool
    observed_value: Any = None
    element_count: int | None = None
    unexpected_count: int | None = None
    unexpected_sample: list[Any] = field(default_factory=list)

    def evidence(self, shown: int = 3) -> str:
        """What failed, in a few words: the observed value, or the count and the first offending rows."""
        parts = [] if self.observed_value is None else [f"observed {self.observed_value}"]
        if self.unexpected_count:
            parts.append(f"{self.unexpected_count} unexpected")
        rows = [_describe(row) for row in self.unexpected_sample[:shown]]
        if rows:
            more = ", …" if (self.unexpected_count or 0) > len(rows) else ""
            parts.append("e.g. " + "; ".join(rows) + more)
        return ", ".join(parts) or "failed"


def _describe(row: Any) -> str:
    if isinstance(row, dict):  # a sampled row: its key columns and the offending value, if any
        return " ".join(f"{key}={value}" for key, value in row.items() if value is not None)
    return str(row)


@dataclass
class Report:
    outcomes: list[Outcome]
    docs_index: Path | None

    @property
    def critical_failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.success and o.severity == "critical"]

    @property
    def warnings(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.success and o.severity == "warning"]

    def summary(self) -> str:
        by_suite: dict[str, list[Outcome]] = defaultdict(list)
        for outcome in self.outcomes:
            by_suite[outcome.suite].append(outcome)
        lines = [
            f"data quality: {len(self.outcomes)} expectations in {len(by_suite)} suites, "
            f"{len(self.critical_failures)} critical failures, {len(self.warnings)} warnings"
        ]
        for suite, outcomes in sorted(by_suite.items()):
            failed = [o for o in outcomes if not o.success]
            lines.append(f"  {suite}: {len(outcomes) - len(failed)}/{len(outcomes)} passed")
            for outcome in failed:
                lines.append(f"    [{outcome.severity}] {outcome.expectation}: {outcome.evidence()}")
        if self.docs_index:
            lines.append(f"  Data Docs: {self.docs_index}")
        return "\n".join(lines)


def _context(docs_dir: Path | None):
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")  # no calls home
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    # GX sets this module's logger to INFO itself; it announces the temporary site we never build
    logging.getLogger("great_expectations.data_context.types.base").setLevel(logging.WARNING)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    if docs_dir is not None:
        docs_dir.mkdir(parents=True, exist_ok=True)
        context.add_data_docs_site(data_docs.SITE, data_docs.site_config(docs_dir))
    return context


def _run_identifier(run_name: str | None):
    """Names the Airflow run on every Data Docs page (and in the pages' paths)."""
    from great_expectations.core.run_identifier import RunIdentifier

    return RunIdentifier(run_name=run_name, run_time=dt.datetime.now(dt.UTC))


def _keep_for_docs(context, checkpoint_result, docs_dir: Path | None) -> None:
    if docs_dir is None:
        return
    for key, result in checkpoint_result.run_results.items():
        data_docs.show_sampled_rows(result)
        context.validation_results_store.set(key, result)


def _result_format(index_columns: Iterable[str]) -> dict[str, Any]:
    fmt: dict[str, Any] = {"result_format": "SUMMARY", "partial_unexpected_count": SAMPLE}
    if index_columns:
        fmt["unexpected_index_column_names"] = list(index_columns)
    return fmt


def _outcomes(suite: str, checkpoint_result, checks: list[Check]) -> list[Outcome]:
    outcomes = []
    for validation in checkpoint_result.run_results.values():
        for result in validation.results:
            check = checks[result.expectation_config.meta["check"]]
            detail = result.result or {}
            sample = detail.get("partial_unexpected_index_list") or detail.get("partial_unexpected_list") or []
            outcomes.append(
                Outcome(
                    suite=suite,
                    expectation=check.label,
                    severity=check.severity,
                    success=bool(result.success),
                    observed_value=detail.get("observed_value"),
                    element_count=detail.get("element_count"),
                    unexpected_count=detail.get("unexpected_count"),
                    unexpected_sample=sample[:SAMPLE],
                )
            )
    return outcomes


def run_checks(warehouse_url: str, checks: list[Check], docs_dir: Path | None, run_name: str | None = None) -> Report:
    """Validate ``checks`` against the warehouse; the SQL runs in Postgres, not in pandas.

    A GX suite validates one batch, so each (suite, asset) pair becomes a GX suite named
    ``<suite>.<asset>``; results are reported under ``<suite>``.
    """
    import great_expectations as gx
    import great_expectations.expectations as gxe

    os.environ[URL_VARIABLE] = warehouse_url
    context = _context(docs_dir)
    source = context.data_sources.add_postgres("recon_warehouse", connection_string="${" + URL_VARIABLE + "}")
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for index, check in enumerate(checks):
        groups[(check.suite, check.asset.name)].append(index)
    run_id = _run_identifier(run_name)
    outcomes: list[Outcome] = []
    for (suite_name, asset_name), indexes in groups.items():
        key = f"{suite_name}.{asset_name}"
        asset = checks[indexes[0]].asset
        batch = source.add_query_asset(key, query=asset.query).add_batch_definition_whole_table("all")
        suite = context.suites.add(gx.ExpectationSuite(key))
        for index in indexes:
            check = checks[index]
            suite.add_expectation(
                getattr(gxe, check.expectation)(**check.kwargs, meta={"check": index, "severity": check.severity})
            )
        definition = context.validation_definitions.add(gx.ValidationDefinition(name=key, data=batch, suite=suite))
        checkpoint = context.checkpoints.add(
            gx.Checkpoint(
                name=key,
                validation_definitions=[definition],
                result_format=_result_format(asset.index_columns),
            )
        )
        result = checkpoint.run(run_id=run_id)
        _keep_for_docs(context, result, docs_dir)
        outcomes += _outcomes(suite_name, result, checks)
    source.get_engine().dispose()  # no pooled connection outlives the check
    return Report(outcomes, data_docs.build(context, docs_dir) if docs_dir else None)


def run_location_map_checks(rows: list[dict[str, Any]], docs_dir: Path | None, run_name: str | None = None) -> Report:
    """The location map CSV itself, before anything uses it (pandas datasource: it is a small file)."""
    import great_expectations as gx
    import great_expectations.expectations as gxe
    import pandas as pd

    frame = pd.DataFrame(rows, columns=["return_point_id", "kind", "complete"])
    context = _context(docs_dir)
    batch = (
        context.data_sources.add_pandas("location_map_csv")
        .add_dataframe_asset("location_map")
        .add_batch_definition_whole_dataframe("file")
    )
    suite = context.suites.add(gx.ExpectationSuite("location_map_csv"))
    for kind, kwargs, severity in LOCATION_MAP_CHECKS:
        label = f"{kind}({', '.join(f'{k}={v}' for k, v in sorted(kwargs.items()))}) on location_map.csv"
        suite.add_expectation(getattr(gxe, kind)(**kwargs, meta={"severity": severity, "label": label}))
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name="location_map_csv", data=batch, suite=suite)
    )
    checkpoint = context.checkpoints.add(
        gx.Checkpoint(
            name="location_map_csv",
            validation_definitions=[definition],
            result_format=_result_format(["return_point_id"]),
        )
    )
    checkpoint_result = checkpoint.run(batch_parameters={"dataframe": frame}, run_id=_run_identifier(run_name))
    _keep_for_docs(context, checkpoint_result, docs_dir)
    outcomes = []
    for validation in checkpoint_result.run_results.values():
        for result in validation.results:
            detail = result.result or {}
            meta = result.expectation_config.meta
            outcomes.append(
                Outcome(
                    "location_map_csv",
                    meta["label"],
                    meta["severity"],
                    bool(result.success),
                    detail.get("observed_value"),
                    detail.get("element_count"),
                    detail.get("unexpected_count"),
                    (detail.get("partial_unexpected_index_list") or [])[:SAMPLE],
                )
            )
    return Report(outcomes, data_docs.build(context, docs_dir) if docs_dir else None)


def store(conn: psycopg.Connection, run_id: str, report: Report) -> None:
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            """INSERT INTO recon.dq_results (run_id, suite, expectation, severity, success, observed_value,
                                            element_count, unexpected_count, unexpected_sample)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
               ON CONFLICT (run_id, suite, expectation) DO UPDATE SET
                 severity = EXCLUDED.severity, success = EXCLUDED.success, observed_value = EXCLUDED.observed_value,
                 element_count = EXCLUDED.element_count, unexpected_count = EXCLUDED.unexpected_count,
                 unexpected_sample = EXCLUDED.unexpected_sample, checked_at = now()""",
            [
                (
                    run_id,
                    o.suite,
                    o.expectation,
                    o.severity,
                    o.success,
                    None if o.observed_value is None else str(o.observed_value),
                    o.element_count,
                    o.unexpected_count,
                    json.dumps(o.unexpected_sample, default=str),
                )
                for o in report.outcomes
            ],
        )


def enforce(report: Report) -> None:
    if report.critical_failures:
        reasons = "; ".join(o.expectation for o in report.critical_failures)
        raise DataQualityFailed(
            f"{len(report.critical_failures)} critical data-quality checks failed, so nothing will be posted "
            f"this run: {reasons}. See recon.dq_results and the Data Docs ({report.docs_index})."
        )
