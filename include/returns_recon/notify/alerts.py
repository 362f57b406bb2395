"""Failure alerts for the data team: one mail per failed DAG run (a DAG-level callback runs once,
after the failing task has used up its retries), never one per task."""

from __future__ import annotations

import logging
from email.message import EmailMessage
from typing import Any

log = logging.getLogger(__name__)


def alert_message(context: dict[str, Any], recipients: list[str], from_email: str) -> EmailMessage:
    dag_run = context.get("dag_run")
    dag_id = getattr(dag_run, "dag_id", None) or getattr(context.get("dag"), "dag_id", "?")
    run_id = getattr(dag_run, "run_id", "?")
    reason = context.get("reason") or "a task failed after its retries"
    if "timed_out" in str(reason) or "timeout" in str(reason).lower():
        reason = f"the run was late and was stopped by its timeout ({reason})"
    failed = []
    if dag_run is not None and hasattr(dag_run, "get_task_instances"):
        try:
            failed = [ti.task_id for ti in dag_run.get_task_instances(state=["failed", "upstream_failed"])]
        except Exception:
            failed = []
    message = EmailMessage()
    message["Subject"] = f"[returns recon] {dag_id} failed ({run_id})"
    message["From"] = from_email
    message["To"] = ", ".join(recipients)
    message.set_content(
        f"The DAG run {run_id} of {dag_id} failed: {reason}.\n"
        f"Failed or skipped tasks: {', '.join(failed) or 'see the Airflow UI'}.\n"
        "Each task's log says what failed and what to do; see docs/operations.md.\n"
    )
    return message


def dag_failure_alert(context: dict[str, Any]) -> None:
    """``on_failure_callback`` of the DAGs: mail the data team once for this failed run."""
    from returns_recon.notify.digest import smtp_sender
    from returns_recon.settings import load_settings

    recipients = load_settings().email_recipients.get("data") or []
    if not recipients:
        log.warning("DAG run failed; no data-team recipients configured (RECON_EMAIL_RECIPIENTS)")
        return
    send, from_email = smtp_sender()
    send(alert_message(context, recipients, from_email))


def late_run_alert(**kwargs: Any) -> None:
    """Deadline callback of the hourly DAG: a run still not done well past its schedule (one alert per run)."""
    from returns_recon.notify.digest import smtp_sender
    from returns_recon.settings import load_settings

    recipients = load_settings().email_recipients.get("data") or []
    if not recipients:
        log.warning("hourly run is late; no data-team recipients configured (RECON_EMAIL_RECIPIENTS)")
        return
    send, from_email = smtp_sender()
    message = EmailMessage()
    message["Subject"] = "[returns recon] returns_recon_hourly is running late"
    message["From"] = from_email
    message["To"] = ", ".join(recipients)
    message.set_content(
        "An hourly run has not finished 45 minutes after it was queued. Check the Airflow UI for a stuck or "
        f"throttled task (details: {kwargs.get('context', {}).get('dag_run', '')}).\n"
    )
    send(message)
