"""Every DAG imports cleanly and follows the project's policies; the policies catch breakage."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from tests.dags.policies import dag_violations, source_violations

pytestmark = pytest.mark.unit

DAGS_DIR = Path(__file__).resolve().parents[2] / "dags"
DAG_FILES = sorted(DAGS_DIR.glob("*.py"))
POSTING_DAGS = {"returns_recon_hourly", "returns_recon_daily", "returns_recon_events"}
EXPECTED_DAGS = {*POSTING_DAGS, "returns_recon_golive_check"}


@pytest.fixture(scope="session")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag  # airflow.models.DagBag is deprecated (#55139)

    return DagBag(dag_folder=str(DAGS_DIR))


def test_no_import_errors(dagbag) -> None:
    assert dagbag.import_errors == {}


def test_expected_dags_exist(dagbag) -> None:
    assert set(dagbag.dag_ids) == EXPECTED_DAGS


@pytest.mark.parametrize("dag_id", sorted(EXPECTED_DAGS))
def test_dag_follows_policies(dagbag, dag_id: str) -> None:
    from returns_recon.orchestration.defaults import POOLS

    assert dag_violations(dagbag.dags[dag_id], frozenset(POOLS)) == []


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_catchup_is_explicit(path: Path) -> None:
    assert source_violations(path) == []


def test_dag_files_do_no_work_at_parse_time() -> None:
    """DAG files may import only airflow.sdk, the package's DAG helpers and the standard library."""
    import ast

    allowed = (
        "airflow.sdk",
        "returns_recon.orchestration.tasks",
        "returns_recon.orchestration.defaults",
        "__future__",
        "datetime",
        "returns_recon.orchestration.structure",
        "returns_recon.orchestration.alerts",
        "returns_recon.orchestration.docs",
        "returns_recon.orchestration.assets",  # the Assets DAGs are scheduled on (no I/O at import)
        "returns_recon.merchants",  # the merchants file: a YAML read and validated, no network or database
    )
    for path in DAG_FILES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert node.module.startswith(allowed), f"{path.name} imports {node.module}"
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
                raise AssertionError(f"{path.name} imports {names}; use `from ... import`")


def test_policies_catch_a_bad_dag() -> None:
    from airflow.providers.standard.operators.empty import EmptyOperator
    from airflow.sdk import DAG

    with DAG("bad_dag", schedule=None, start_date=datetime(2026, 1, 1), max_active_runs=3) as bad:
        EmptyOperator(task_id="noop", retries=0)
        EmptyOperator(task_id="pooled", retries=1, owner="x", pool="cin7_apii")
    violations = dag_violations(bad, frozenset({"cin7_api"}))
    assert "bad_dag: has no tags" in violations
    assert "bad_dag: has no doc_md" in violations
    assert "bad_dag: posts to external systems but max_active_runs=3" in violations
    assert "bad_dag.noop: has no owner" in violations
    assert "bad_dag.noop: retries=0, needs >= 1" in violations
    assert "bad_dag.pooled: pool 'cin7_apii' is not one the package declares" in violations
    assert not any(v.startswith("bad_dag.noop: pool") for v in violations)  # the default pool is fine


def test_catchup_policy_catches_an_implicit_catchup(tmp_path: Path) -> None:
    path = tmp_path / "implicit.py"
    path.write_text("from airflow.sdk import dag\n@dag(schedule=None)\ndef x():\n    pass\n")
    assert source_violations(path) == ["implicit.py:2: DAG declared without an explicit catchup"]


@pytest.mark.parametrize("dag_id", sorted(POSTING_DAGS))
def test_postings_only_follow_the_data_quality_checks(dagbag, dag_id: str) -> None:
    """A failing critical check fails `check.data_quality`; everything that posts lies downstream of it."""
    dag = dagbag.dags[dag_id]
    post = dag.get_task("post.post_corrections")
    assert "check.data_quality" in {t.task_id for t in post.get_flat_relatives(upstream=True)}
    assert post.trigger_rule == "all_success"


def test_the_daily_mail_goes_out_when_the_postings_failed(dagbag) -> None:
    """Refused credentials fail `post.post_corrections`; finance and operations still get their queue."""
    mail = dagbag.dags["returns_recon_daily"].get_task("notify.send_exception_emails")
    assert "post.post_corrections" in mail.upstream_task_ids
    assert mail.trigger_rule == "all_done"
    watcher = dagbag.dags["returns_recon_daily"].get_task("run_failed_if_any_task_failed")
    assert {"post.post_corrections", "notify.send_exception_emails"} <= watcher.upstream_task_ids
    assert watcher.trigger_rule == "one_failed"


def test_every_dag_alerts_once_per_failed_run_and_the_hourly_one_when_late(dagbag) -> None:
    from returns_recon.orchestration.alerts import dag_failure_alert

    for dag_id in EXPECTED_DAGS:
        callbacks = dagbag.dags[dag_id].on_failure_callback
        assert callbacks == dag_failure_alert or dag_failure_alert in (callbacks or []), dag_id
    timeout = dagbag.dags["returns_recon_hourly"].dagrun_timeout
    assert timeout is not None
    assert timeout.total_seconds() <= 3600


def test_alert_says_when_a_run_was_late() -> None:
    from returns_recon.orchestration.alerts import alert_message

    message = alert_message({"reason": "timed_out"}, ["data@example.com"], "recon@example.com")
    assert "late and was stopped by its timeout" in message.get_content()
    assert message["To"] == "data@example.com"


def test_the_golive_check_is_manual_read_only_and_follows_the_preflight(dagbag) -> None:
    dag = dagbag.dags["returns_recon_golive_check"]
    assert type(dag.timetable).__name__ == "NullTimetable"  # schedule=None: triggered by hand
    assert {t.task_id for t in dag.tasks} == {
        "preflight.check_connections",
        "preflight.migrate_warehouse",
        "check.golive_check",
    }
    upstream = {t.task_id for t in dag.get_task("check.golive_check").get_flat_relatives(upstream=True)}
    assert upstream == {"preflight.check_connections", "preflight.migrate_warehouse"}


@pytest.mark.parametrize(
    ("dag_id", "names"), [("returns_recon_hourly", {"dry_run"}), ("returns_recon_daily", {"dry_run", "trailing_days"})]
)
def test_trigger_form_offers_the_run_params(dagbag, dag_id: str, names: set[str]) -> None:
    """Dry run and trailing days are fields of the trigger form, empty by default (the deployment's settings)."""
    params = dagbag.dags[dag_id].params
    assert set(params.keys()) == names
    for name in names:
        param = params.get_param(name)
        assert param.value is None
        assert param.schema.get("title"), f"{name} has no title in the trigger form"
        assert "null" in param.schema["type"]


def test_the_events_dag_runs_on_the_inbox_watcher_and_posts_after_its_checks(dagbag) -> None:
    """Scheduled on the webhook inbox, whose watcher's trigger the triggerer imports from the package; unpaused
    on creation (a paused DAG's watcher is not run); the batch runs' stages over what the events name."""
    from airflow.triggers.base import BaseEventTrigger

    from returns_recon.orchestration.assets import WEBHOOK_INBOX
    from returns_recon.orchestration.triggers import InboxPendingTrigger

    dag = dagbag.dags["returns_recon_events"]
    assert dag.is_paused_upon_creation is False
    assert list(dag.timetable.asset_condition.objects) == [WEBHOOK_INBOX]
    (watcher,) = WEBHOOK_INBOX.watchers
    assert isinstance(watcher.trigger, InboxPendingTrigger)
    assert isinstance(watcher.trigger, BaseEventTrigger)
    classpath, kwargs = watcher.trigger.serialize()
    assert classpath == "returns_recon.orchestration.triggers.InboxPendingTrigger"
    assert InboxPendingTrigger(**kwargs).serialize() == (classpath, kwargs)
    assert {t.task_id for t in dag.tasks} == {
        "read.read_events",
        "check.data_quality",
        "reconcile.reconcile_events",
        "post.post_corrections",
    }
    reconcile = dag.get_task("reconcile.reconcile_events")
    assert {"read.read_events", "check.data_quality"} <= reconcile.upstream_task_ids
    assert "reconcile.reconcile_events" in dag.get_task("post.post_corrections").upstream_task_ids
