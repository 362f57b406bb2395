"""Failure alerts for the data team: one mail per failed DAG run (a DAG-level callback runs once,
after the failing task has used up its retries), never one per task.

When mail is what is down (SMTP unreachable or refusing, ``smtp_default`` missing, or no data-team
recipients), the same alert goes to the second channel, ``notify/fallback.py`` (the http provider's
``HttpNotifier`` through ``RECON_ALERT_FALLBACK_CONN_ID``); so does a daily digest SMTP did not take
(``digest_failure_alert``, the digest task's own failure callback: once, after its last retry)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from email.message import EmailMessage
from typing import Any

from returns_recon.notify.fallback import one_line, send_fallback

log = logging.getLogger(__name__)
# the daily DAG's last task: fails the run when a task failed although the mail (all_done) went out
WATCHER = "run_failed_if_any_task_failed"


def _run_of(context: Mapping[str, Any]) -> tuple[str, str]:
    dag_run = context.get("dag_run")
    dag_id = getattr(dag_run, "dag_id", None) or getattr(context.get("dag"), "dag_id", "?")
    return one_line(dag_id, 250), one_line(getattr(dag_run, "run_id", "?"), 250)


def failed_tasks(ti: Any) -> list[str]:
    """The failed (or upstream-failed) tasks of ``ti``'s run, asked through the task SDK; [] if it cannot say."""
    try:
        states = ti.get_task_states(dag_id=ti.dag_id, run_ids=[ti.run_id]).get(ti.run_id, {})
    except Exception:  # outside a task's runtime (no supervisor to ask)
        log.info("the run's task states are not available here")
        return []
    return sorted(t for t, state in states.items() if state in ("failed", "upstream_failed") and t != WATCHER)


def failure_text(context: Mapping[str, Any]) -> tuple[str, str]:
    """Subject and body of the alert for a failed run (one line each value: nothing breaks a header)."""
    dag_run = context.get("dag_run")
    dag_id, run_id = _run_of(context)
    reason = one_line(context.get("reason") or "a task failed after its retries", 500)
    if "timed_out" in reason or "timeout" in reason.lower():
        reason = f"the run was late and was stopped by its timeout ({reason})"
    failed = []
    if dag_run is not None and hasattr(dag_run, "get_task_instances"):
        try:
            failed = [ti.task_id for ti in dag_run.get_task_instances(state=["failed", "upstream_failed"])]
        except Exception:
            failed = []
    # Airflow 3 passes the failed run's callback the context of the task instance that decided it (the
    # SDK's DagRun there has no get_task_instances); the daily run's last task decides it when the mail ran
    ti = context.get("ti") or context.get("task_instance")
    if not failed and ti is not None and getattr(ti, "task_id", None):
        failed = failed_tasks(ti) if ti.task_id == WATCHER else [ti.task_id]
    failed = [one_line(task_id, 250) for task_id in failed]
    subject = f"[returns recon] {dag_id} failed ({run_id})"
    body = (
        f"The DAG run {run_id} of {dag_id} failed: {reason}.\n"
        f"Failed or skipped tasks: {', '.join(failed) or 'see the Airflow UI'}.\n"
        "Each task's log says what failed and what to do; see docs/operations.md.\n"
    )
    return one_line(subject, 250), body


def _message(subject: str, body: str, recipients: list[str], from_email: str) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = one_line(from_email)
    message["To"] = one_line(", ".join(recipients))
    message.set_content(body)
    return message


def alert_message(context: Mapping[str, Any], recipients: list[str], from_email: str) -> EmailMessage:
    return _message(*failure_text(context), recipients, from_email)


def _mail_or_fallback(event: str, subject: str, body: str, build, **fields: Any) -> None:
    """Mail the data team (of the DAG's merchant, with a merchants file); when that cannot be done, send the same
    alert through the fallback channel."""
    from returns_recon.orchestration.merchant import connection_ids, merchant_for
    from returns_recon.settings import load_settings

    try:
        merchant = merchant_for(fields.get("dag_id"))
    except Exception as exc:  # a merchant gone from the file: the environment's data team still hears of it
        log.warning("alert %s: %s", event, one_line(exc, 300))
        merchant = None
    base = load_settings()
    # the merchant's own data team, else the deployment's (an agency's data team runs every merchant)
    own = merchant.settings_for(base).email_recipients.get("data") if merchant else None
    recipients = own or base.email_recipients.get("data") or []
    if recipients:
        try:
            from returns_recon.notify.digest import smtp_sender

            send, from_email = smtp_sender(connection_ids(merchant).smtp)
            send(build(recipients, from_email))
            return
        except Exception as exc:  # a callback: the alert must still go out, by the other channel
            why = one_line(exc, 500)
            log.error("alert %s could not be mailed: %s", event, why)
    else:
        why = "no data-team recipients are configured (RECON_EMAIL_RECIPIENTS)"
        log.warning("alert %s: %s", event, why)
    send_fallback(event, f"{subject}\n{body}\nThe alert mail could not be sent: {why}\n", **fields)


def dag_failure_alert(context: Mapping[str, Any]) -> None:
    """``on_failure_callback`` of the DAGs: alert the data team once for this failed run."""
    ti = context.get("ti") or context.get("task_instance")
    if getattr(ti, "task_id", None) == WATCHER and not context.get("alert_from_watcher"):
        log.info("this run's alert was sent by its last task, %s, which could name the failed tasks", WATCHER)
        return
    subject, body = failure_text(context)
    dag_id, run_id = _run_of(context)
    _mail_or_fallback(
        "dag_run_failed",
        subject,
        body,
        lambda to, sender: alert_message(context, to, sender),
        dag_id=dag_id,
        run_id=run_id,
    )


def digest_failure_alert(context: Mapping[str, Any]) -> None:
    """``on_failure_callback`` of ``notify.send_exception_emails`` (after its last retry): when SMTP did not
    take the digests, tell the data team through the fallback channel (mail is what is down)."""
    from returns_recon.notify.digest import DigestNotSent

    error = context.get("exception")
    if not isinstance(error, DigestNotSent):
        return  # another failure (e.g. the warehouse): the run's failure alert reports it, by mail
    dag_id, run_id = _run_of(context)
    text = (
        f"[returns recon] the exception emails of {dag_id} ({run_id}) could not be sent\n{one_line(error, 2000)}\n"
        "They are sent by the next run that reaches the SMTP server, once per owner and day.\n"
    )
    task = context.get("task_instance") or context.get("ti")
    send_fallback(
        "digest_not_sent",
        text,
        dag_id=dag_id,
        run_id=run_id,
        task_id=getattr(task, "task_id", None),
        owners=", ".join(error.reasons),
    )
