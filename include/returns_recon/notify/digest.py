"""One exception email per owner per day: what is new since the last mail, what is still open and
how old, the most money at risk, a chart, and a CSV of the owner's open exceptions.

No mail to an owner with nothing new or open, except a weekly all-clear for finance
(``RECON_FINANCE_ALL_CLEAR_WEEKDAY``). A re-run of the same day sends nothing twice
(``recon.email_log``). Only exception data goes into a mail: no credentials, no customer data.

Every value is data, never markup or a formula: the HTML part autoescapes (the autoescape rule names the
templates' ``.html.j2`` suffix, and any template not named as text is escaped too), no value can break a
header or a line of the plain-text part (control characters become spaces), and the CSV attachment
neutralises each text cell a spreadsheet would execute (OWASP CSV injection: a leading ``'``); numeric
columns stay numbers, negative ones included.

SMTP failing fails the task with a ``DigestNotSent`` naming the SMTP host and port and the error (no
secret); what was not sent is sent by the next run, once (``notify/alerts.py`` tells the fallback channel).
"""

from __future__ import annotations

import csv
import io
import logging
import smtplib
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import psycopg
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from psycopg.rows import dict_row

from returns_recon.notify.fallback import one_line, redact

log = logging.getLogger(__name__)
TEMPLATES = Path(__file__).with_name("templates")
OWNERS = ("finance", "operations", "customer service", "data")
CSV_COLUMNS = ("exception_key", "exception_type", "severity", "state", "return_id", "item_id", "sku",
               "first_seen_at", "last_seen_at", "occurrences", "money_at_risk", "currency", "return_point_id",
               "detail")  # fmt: skip
# a cell starting with one of these is a formula to a spreadsheet (OWASP "CSV Injection")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")

OPEN = """
SELECT exception_key, exception_type, severity, state, return_id, item_id, sku, first_seen_at, last_seen_at,
       occurrences,
       coalesce(nullif(evidence ->> 'refunded', '')::numeric, nullif(evidence ->> 'credited', '')::numeric,
                nullif(evidence ->> 'reveni_refunded', '')::numeric, 0) AS money_at_risk,
       coalesce(evidence ->> 'currency', evidence ->> 'refund_currency', evidence ->> 'credit_currency') AS currency,
       evidence ->> 'return_point_id' AS return_point_id,
       coalesce(evidence ->> 'steps', evidence ->> 'hint') AS detail,
       floor(extract(epoch FROM now() - first_seen_at) / 86400)::int AS age_days
FROM recon.exceptions
WHERE owner = %s AND state IN ('open', 'acknowledged')
ORDER BY first_seen_at, exception_key
"""

Sender = Callable[[EmailMessage], None]


class MailDeliveryError(RuntimeError):
    """The SMTP server could not be reached or did not take a mail; the message names the server and the
    error, never a credential."""

    def __init__(self, message: str, unreachable: bool) -> None:
        super().__init__(message)
        self.unreachable = unreachable


class DigestNotSent(RuntimeError):
    """Some owners' mails were not sent; the next run sends them (``recon.email_log``)."""

    def __init__(self, reasons: dict[str, str], sent: int) -> None:
        by_reason: dict[str, list[str]] = {}
        for owner, reason in reasons.items():
            by_reason.setdefault(reason, []).append(owner)
        what = "; ".join(f"{', '.join(owners)}: {reason}" for reason, owners in by_reason.items())
        super().__init__(f"exception emails not sent for {what} ({sent} sent). A re-run (clear the task, or the next "
                         "daily run) sends only the mails not yet sent today.")  # fmt: skip
        self.reasons = reasons


def csv_cell(value: Any) -> Any:
    """A value as a CSV cell a spreadsheet shows and never executes: numbers stay numbers (a negative
    amount is a number, not a formula); text starting with a formula character gets a leading ``'``."""
    if value is None:
        return ""
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return value
    text = str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def _printable(value: Any) -> Any:
    """Jinja ``finalize``: every printed value on one line (control characters become spaces)."""
    if isinstance(value, Markup) or not isinstance(value, str):
        return value
    return one_line(value)


def environment() -> Environment:
    """The templates' environment: ``digest.html.j2`` is autoescaped, ``digest.txt.j2`` is not, and a
    template named neither way is escaped (``default=True``): a new template cannot start unescaped."""
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(
            enabled_extensions=("html", "html.j2", "htm"),
            disabled_extensions=("txt", "txt.j2"),
            default_for_string=True,
            default=True,
        ),
        finalize=_printable,
    )


@dataclass
class Digest:
    owner: str
    mail_date: date
    open: list[dict[str, Any]]
    new: list[dict[str, Any]]
    all_clear: bool = False
    chart_png: bytes = b""
    recipients: list[str] = field(default_factory=list)

    @property
    def subject(self) -> str:
        if self.all_clear:
            return one_line(f"[returns recon] {self.owner}: all clear ({self.mail_date})", 200)
        return one_line(f"[returns recon] {self.owner}: {len(self.open)} open exceptions, {len(self.new)} new "
                        f"({self.mail_date})", 200)  # fmt: skip


def _last_sent(conn: psycopg.Connection, owner: str) -> Any:
    row = conn.execute(
        "SELECT max(sent_at) FROM recon.email_log WHERE owner = %s AND status = 'sent'", (owner,)
    ).fetchone()
    return row[0]


def build(conn: psycopg.Connection, owner: str, mail_date: date, all_clear_weekday: int | None) -> Digest | None:
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(OPEN, (owner,)).fetchall()
    since = _last_sent(conn, owner)
    new = [r for r in rows if since is None or r["first_seen_at"] > since]
    if not rows:
        if owner == "finance" and all_clear_weekday is not None and mail_date.weekday() == all_clear_weekday:
            return Digest(owner, mail_date, [], [], all_clear=True)
        return None
    if not new and since is not None and since.date() == mail_date:
        return None
    digest = Digest(owner, mail_date, rows, new)
    digest.chart_png = chart(conn, rows)
    return digest


def chart(conn: psycopg.Connection, rows: list[dict[str, Any]]) -> bytes:
    """Open exceptions by age bucket, and refunded against credited money over the last 14 days."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    buckets = {"< 1 day": 0, "1–7 days": 0, "> 7 days": 0}
    for row in rows:
        age = row["age_days"]
        buckets["< 1 day" if age < 1 else "1–7 days" if age <= 7 else "> 7 days"] += 1
    journal = (
        conn.execute(
            """SELECT day, sum(reveni_refunded), sum(cin7_credited) FROM recon.refund_journal
           WHERE day >= current_date - 14 GROUP BY day ORDER BY day"""
        ).fetchall()
        if conn.execute("SELECT to_regclass('recon.refund_journal')").fetchone()[0]
        else []
    )
    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 3.2))
    left.bar(list(buckets), list(buckets.values()), color=["#4c9be8", "#f0a030", "#d9534f"])
    left.set_title("Open exceptions by age")
    days = [d.strftime("%d %b") for d, _, _ in journal]
    right.plot(days, [float(r) for _, r, _ in journal], marker="o", label="refunded (Reveni)")
    right.plot(days, [float(c) for _, _, c in journal], marker="s", label="credited (Cin7 Core)")
    right.set_title("Refunded vs credited, last 14 days")
    right.tick_params(axis="x", labelrotation=45, labelsize=7)
    right.legend(fontsize=7)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    plt.close(figure)
    return buffer.getvalue()


def render(digest: Digest, from_email: str) -> EmailMessage:
    env = environment()
    by_type: dict[str, dict[str, Any]] = {}
    for row in digest.open:
        entry = by_type.setdefault(row["exception_type"], {"exception_type": row["exception_type"], "n": 0,
                                                            "oldest_days": 0})  # fmt: skip
        entry["n"] += 1
        entry["oldest_days"] = max(entry["oldest_days"], row["age_days"])
    top = sorted((r for r in digest.open if r["money_at_risk"]), key=lambda r: -r["money_at_risk"])[:10]
    context = {
        "owner": digest.owner,
        "mail_date": digest.mail_date,
        "open": digest.open,
        "new": digest.new,
        "top": top,
        "by_type": sorted(by_type.values(), key=lambda e: -e["n"]),
        "all_clear": digest.all_clear,
    }
    message = EmailMessage()
    message["Subject"] = digest.subject
    message["From"] = one_line(from_email)
    message["To"] = one_line(", ".join(digest.recipients))
    message["Message-ID"] = make_msgid(idstring=f"recon-{digest.owner.replace(' ', '-')}-{digest.mail_date}")
    message.set_content(env.get_template("digest.txt.j2").render(context))
    message.add_alternative(env.get_template("digest.html.j2").render(context), subtype="html")
    if digest.chart_png:
        message.get_payload()[1].add_related(digest.chart_png, "image", "png", cid="<chart>",
                                             filename="exceptions.png")  # fmt: skip
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(CSV_COLUMNS)
        for row in digest.open:
            writer.writerow([csv_cell(row.get(c)) for c in CSV_COLUMNS])
        filename = f"open-exceptions-{digest.owner.replace(' ', '-')}-{digest.mail_date}.csv"
        message.add_attachment(buffer.getvalue().encode(), maintype="text", subtype="csv", filename=filename)
    return message


def send_digests(conn: psycopg.Connection, send: Sender, mail_date: date, recipients: dict[str, list[str]],
                 from_email: str, run_id: str, all_clear_weekday: int | None = 0) -> dict[str, str]:  # fmt: skip
    """Send each owner's mail once per day; returns what happened per owner. A mail SMTP did not take is
    left to the next run (its ``email_log`` row stays ``sending``); once every owner has been tried (or
    the server is unreachable), ``DigestNotSent`` fails the task, naming the server and the error."""
    outcome: dict[str, str] = {}
    not_sent: dict[str, str] = {}
    unreachable: MailDeliveryError | None = None
    for owner in OWNERS:
        done = conn.execute(
            "SELECT status FROM recon.email_log WHERE owner = %s AND mail_date = %s", (owner, mail_date)
        ).fetchone()
        if done and done[0] in ("sent", "nothing_to_send"):
            outcome[owner] = f"already {done[0]} today"
            continue
        to = recipients.get(owner) or []
        digest = build(conn, owner, mail_date, all_clear_weekday)
        if digest is None or not to:
            outcome[owner] = "nothing to send" if digest is None else "no recipients configured"
            continue
        digest.recipients = to
        message = render(digest, from_email)
        conn.execute(
            """INSERT INTO recon.email_log (owner, mail_date, status, recipients, open_count, new_count, subject,
                                           run_id) VALUES (%s, %s, 'sending', %s, %s, %s, %s, %s)
               ON CONFLICT (owner, mail_date) DO UPDATE SET status = 'sending', run_id = EXCLUDED.run_id""",
            (owner, mail_date, to, len(digest.open), len(digest.new), digest.subject, run_id),
        )
        if unreachable is not None:  # no point knocking again on a server that is down
            not_sent[owner] = outcome[owner] = str(unreachable)
            continue
        try:
            send(message)
        except MailDeliveryError as exc:
            not_sent[owner] = outcome[owner] = str(exc)
            unreachable = exc if exc.unreachable else None
            log.error("exception email for %s not sent: %s", owner, exc)
            continue
        conn.execute(
            "UPDATE recon.email_log SET status = 'sent', sent_at = now() WHERE owner = %s AND mail_date = %s",
            (owner, mail_date),
        )
        outcome[owner] = f"sent to {len(to)} recipient(s): {len(digest.open)} open, {len(digest.new)} new"
        log.info("exception email for %s: %s", owner, outcome[owner])
    if not_sent:
        raise DigestNotSent(not_sent, sent=sum(1 for o in outcome.values() if o.startswith("sent")))
    return outcome


# errors of reaching the server (as opposed to the server refusing one mail)
_UNREACHABLE = (ConnectionError, TimeoutError, socket.gaierror, smtplib.SMTPConnectError,
                smtplib.SMTPServerDisconnected, smtplib.SMTPHeloError)  # fmt: skip


def smtp_sender(conn_id: str = "smtp_default") -> tuple[Sender, str]:
    """Send through the SMTP provider's hook and the ``smtp_default`` connection."""
    from airflow.providers.common.compat.sdk import AirflowException
    from airflow.providers.smtp.hooks.smtp import SmtpHook
    from airflow.sdk import BaseHook

    hook = SmtpHook(smtp_conn_id=conn_id)
    connection = BaseHook.get_connection(conn_id)
    server = f"SMTP server {connection.host}:{connection.port or 'default port'} (connection {conn_id})"

    def send(message: EmailMessage) -> None:
        # the hook's own send_email_smtp builds HTML-only mails; we need text + HTML + inline chart + CSV
        try:
            with hook as connected:
                connected._smtp_client.send_message(message)
        except (OSError, smtplib.SMTPException) as exc:  # SMTPException is an OSError; both named for clarity
            unreachable = isinstance(exc, _UNREACHABLE)
            why = redact(f"{type(exc).__name__}: {one_line(exc, 300)}", [connection.password or ""])
            raise MailDeliveryError(f"{server} {'is unreachable' if unreachable else 'did not take the mail'}: {why}",
                                    unreachable) from exc  # fmt: skip
        except AirflowException as exc:  # the hook's own wrapping, e.g. "Unable to connect to smtp server"
            why = redact(f"{type(exc).__name__}: {one_line(exc, 300)}", [connection.password or ""])
            raise MailDeliveryError(f"{server} failed: {why}", unreachable=True) from exc

    from_email = connection.extra_dejson.get("from_email") or "returns-recon@localhost"
    return send, from_email
