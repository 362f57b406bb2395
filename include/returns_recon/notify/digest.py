"""One exception email per owner per day: what is new since the last mail, what is still open and
how old, the money at risk per currency, what the pipeline fixed since the last mail, charts, and a CSV of
the owner's open exceptions (and one of the fixes).

Each exception comes with what a person needs to act on it without a lookup (``recon.exception_details``,
migration 0016): the order number, the credit note, transfer and Sitoo ids, the gap (credited − refunded)
always with its currency, its age from the return's own event, and where misplaced Sitoo stock went; and a link to
its page in the exception workbench (``workbench/links.py``: ``RECON_WORKBENCH_URL``, else Airflow's ``[api]
base_url``; with neither, the mails carry no links).
Money is never summed across currencies: totals and charts are per currency. The money at risk is the owner's rows
of ``recon.money_at_risk`` and ``recon.money_at_risk_by_return`` (migration 0018: each return once, with its
largest gap), the very rows finance reads: a mail's totals are finance's.

No mail to an owner with nothing open and nothing fixed, except a weekly all-clear for finance
(``RECON_FINANCE_ALL_CLEAR_WEEKDAY``), and none with nothing new or fixed on a day already mailed. A re-run of
the same day sends nothing twice (``recon.email_log``); "fixed since the last mail" counts from the owner's last
mail sent. Only exception data goes into a mail: no credentials, no customer data.

Every value is data, never markup or a formula: the HTML part autoescapes (the autoescape rule names the
templates' ``.html.j2`` suffix, and any template not named as text is escaped too), no value can break a
header or a line of the plain-text part (control characters become spaces), and the CSV attachments
neutralise each text cell a spreadsheet would execute (OWASP CSV injection: a leading ``'``); numeric
columns stay numbers, negative ones included.

SMTP failing fails the task with a ``DigestNotSent`` naming the SMTP host and port and the error (no
secret); what was not sent is sent by the next run, once (``orchestration/alerts.py`` tells the fallback channel).
"""

from __future__ import annotations

import csv
import io
import logging
import smtplib
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any

import psycopg
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from psycopg.rows import dict_row

from returns_recon.notify.fallback import one_line, redact
from returns_recon.warehouse.rows import one_row
from returns_recon.workbench.links import exception_url, queue_url

log = logging.getLogger(__name__)
TEMPLATES = Path(__file__).with_name("templates")
OWNERS = ("finance", "operations", "customer service", "data")
# the open exceptions' CSV: the columns of recon.exception_details a mail row shows, and the rest of the row
CSV_COLUMNS = (
    "exception_key",
    "exception_type",
    "severity",
    "state",
    "order_number",
    "return_id",
    "item_id",
    "sku",
    "cin7_sale_id",
    "cin7_sale_order_number",
    "cin7_exchange_order_number",
    "credit_note_numbers",
    "transfer_numbers",
    "sitoo_order_ids",
    "sitoo_transaction_ids",
    "money_at_risk",
    "currency",
    "refunded",
    "refund_currency",
    "credited",
    "credit_currency",
    "return_event",
    "return_event_at",
    "age_days",
    "expected_warehouse",
    "stock_found_at",
    "return_point_id",
    "first_seen_at",
    "last_seen_at",
    "occurrences",
    "detail",
)
# the open exceptions' CSV has one more: the exception's page in the workbench (empty when the mails have no links)
OPEN_CSV_COLUMNS = (*CSV_COLUMNS, "workbench_url")
# the fixes' CSV: one row per document the pipeline created since the last mail
FIXED_COLUMNS = (
    "fixed_at",
    "action",
    "system",
    "document",
    "target_ref",
    "amount",
    "currency",
    "sku",
    "quantity",
    "from_location",
    "to_location",
    "order_number",
    "return_id",
    "item_id",
    "exception_key",
    "exception_type",
    "status",
)
# a cell starting with one of these is a formula to a spreadsheet (OWASP "CSV Injection")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")
# the documents beside an exception, as a mail row names them
DOCUMENTS = (
    ("Cin7 sale", "cin7_sale_order_number"),
    ("exchange order", "cin7_exchange_order_number"),
    ("credit note", "credit_note_numbers"),
    ("transfer", "transfer_numbers"),
    ("Sitoo order", "sitoo_order_ids"),
    ("Sitoo transaction", "sitoo_transaction_ids"),
)
ACTIONS = {
    "create_credit_note": "credit note",
    "authorise_credit_note": "authorised credit note",
    "transfer_to_sellable": "transfer to sellable",
    "transfer_to_holding": "transfer to holding",
    "sitoo_store_stock": "Sitoo warehouse transaction",
    "sitoo_return_record": "Sitoo return record",
}
AGE_BUCKETS = (("< 1 day", 0), ("1–7 days", 7), ("8–30 days", 30), ("> 30 days", None))

OPEN = f"""
SELECT {", ".join(CSV_COLUMNS)}
FROM recon.exception_details
WHERE owner = %s AND recon.is_open(state)
ORDER BY first_seen_at, exception_key
"""

# the owner's money at risk per currency (migration 0018: each return once, with its largest gap)
MONEY_AT_RISK = """
SELECT currency, returns, under_credited, over_credited FROM recon.money_at_risk WHERE owner = %s ORDER BY currency
"""
# the returns behind it, largest gap first: the exception whose gap counts for each
RETURNS_AT_RISK = """
SELECT currency, return_id, exception_key FROM recon.money_at_risk_by_return WHERE owner = %s
ORDER BY currency, abs(gap) DESC, return_id
"""

# The data team's: Reveni values outside the documented sets, kept in staging (read leniently, models/reveni.py), as
# the data-quality warnings of the latest check sampled them (recon.dq_results; quality/sql/reveni_*statuses.sql)
UNKNOWN_VALUES = """
SELECT d.expectation, d.unexpected_count, d.unexpected_sample
FROM recon.dq_results d
WHERE d.run_id = (SELECT r.run_id FROM recon.dq_results r WHERE r.suite = 'reveni_structure'
                  ORDER BY r.checked_at DESC LIMIT 1)
  AND d.suite = 'reveni_structure' AND d.severity = 'warning' AND NOT d.success
  AND d.expectation LIKE %s
ORDER BY d.expectation
"""
UNKNOWN_FIELDS = {"status": "return status", "validation_status": "item validation status"}

# The documents our postings created (done, or adopted: created by an earlier attempt) since the owner's last sent
# mail (all of them before the first), by the time the posting log recorded it, with amount and currency.
FIXED = """
SELECT done.at AS fixed_at, p.action, p.system, coalesce(p.target_number, p.target_ref) AS document, p.target_ref,
       p.amount,
       CASE WHEN p.amount IS NOT NULL
            THEN coalesce(p.payload ->> 'currencycode', c.currency, s.customer_currency, r.currency) END AS currency,
       e.sku,
       coalesce(p.payload -> 'Lines' -> 0 ->> 'TransferQuantity',
                p.payload -> 'items' -> 0 ->> 'decimalquantity')::numeric AS quantity,
       p.payload ->> 'FromLocation' AS from_location,
       coalesce(p.payload ->> 'ToLocation', w.name || ' (#' || w.warehouse_id || ')',
                '#' || (p.payload ->> 'warehouseid')) AS to_location,
       r.order_external_id AS order_number, p.return_id, p.item_id, p.exception_key, e.exception_type, p.status
FROM recon.postings p
JOIN recon.exceptions e ON e.exception_key = p.exception_key
CROSS JOIN LATERAL (
    SELECT max(l.at) AS at FROM recon.posting_log l
    WHERE l.posting_key = p.posting_key AND l.outcome IN ('done', 'adopted')
) done
LEFT JOIN staging.stg_reveni__returns r ON r.return_id = p.return_id
LEFT JOIN staging.stg_cin7__credit_notes c ON p.action = 'create_credit_note' AND c.task_id = p.target_ref
LEFT JOIN staging.stg_cin7__sales s ON s.sale_id = p.payload ->> 'SaleID'
LEFT JOIN staging.stg_sitoo__warehouses w
       ON p.system = 'sitoo' AND w.warehouse_id = (p.payload ->> 'warehouseid')::bigint
WHERE e.owner = %(owner)s AND p.status IN ('done', 'adopted')
  AND (%(since)s::timestamptz IS NULL OR done.at > %(since)s::timestamptz)
ORDER BY done.at, p.posting_key
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
        super().__init__(
            f"exception emails not sent for {what} ({sent} sent). A re-run (clear the task, or the next "
            "daily run) sends only the mails not yet sent today."
        )
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


def money(amount: Any, currency: Any) -> str:
    """An amount as a mail shows it: always with its currency, never a bare number ('' without a currency)."""
    if amount is None or not currency:
        return ""
    return f"{Decimal(amount):.2f} {currency}"


def quantity(value: Any) -> str:
    """A quantity without trailing zeros: 1.000 → '1'."""
    return "" if value is None else f"{Decimal(value).normalize():f}"


def documents(row: dict[str, Any]) -> str:
    """The documents beside an exception: 'Cin7 sale SO-1; credit note CR-2; transfer TR-3'."""
    return "; ".join(f"{label} {row[key]}" for label, key in DOCUMENTS if row.get(key))


def _printable(value: Any) -> Any:
    """Jinja ``finalize``: every printed value on one line (control characters become spaces)."""
    if isinstance(value, Markup) or not isinstance(value, str):
        return value
    return one_line(value)


def environment() -> Environment:
    """The templates' environment: ``digest.html.j2`` is autoescaped, ``digest.txt.j2`` is not, and a
    template named neither way is escaped (``default=True``): a new template cannot start unescaped."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(
            enabled_extensions=("html", "html.j2", "htm"),
            disabled_extensions=("txt", "txt.j2"),
            default_for_string=True,
            default=True,
        ),
        finalize=_printable,
    )
    env.filters["money"] = money
    env.filters["documents"] = documents
    env.filters["quantity"] = quantity
    env.filters["action"] = lambda action: ACTIONS.get(action, action)
    return env


@dataclass
class Digest:
    owner: str
    mail_date: date
    open: list[dict[str, Any]]
    new: list[dict[str, Any]]
    all_clear: bool = False
    chart_png: bytes = b""  # open exceptions by age (counts)
    currency_charts: dict[str, bytes] = field(default_factory=dict)  # one per currency, never summed
    recipients: list[str] = field(default_factory=list)
    fixed: list[dict[str, Any]] = field(default_factory=list)  # documents the pipeline created since the last mail
    at_risk: list[dict[str, Any]] = field(default_factory=list)  # recon.money_at_risk's rows of the owner
    returns_at_risk: list[dict[str, Any]] = field(default_factory=list)  # recon.money_at_risk_by_return's
    unknown_values: list[dict[str, Any]] = field(default_factory=list)  # the data team's: unknown Reveni values
    merchant: str = ""  # the merchant's name, with a merchants file (in the subject and the heading)
    merchant_id: str = ""  # its id (in the workbench links)

    @property
    def money(self) -> list[dict[str, Any]]:
        return money_by_currency(self.at_risk, self.returns_at_risk, self.open)

    @property
    def subject(self) -> str:
        fixed = f", {len(self.fixed)} fixed by the pipeline" if self.fixed else ""
        tag = f"[returns recon · {self.merchant}]" if self.merchant else "[returns recon]"
        if self.all_clear:
            return one_line(f"{tag} {self.owner}: all clear{fixed} ({self.mail_date})", 200)
        return one_line(
            f"{tag} {self.owner}: {len(self.open)} open exceptions, {len(self.new)} new{fixed} ({self.mail_date})",
            200,
        )


def _last_sent(conn: psycopg.Connection, owner: str) -> Any:
    row = one_row(
        conn.execute("SELECT max(sent_at) FROM recon.email_log WHERE owner = %s AND status = 'sent'", (owner,))
    )
    return row[0]


def build(conn: psycopg.Connection, owner: str, mail_date: date, all_clear_weekday: int | None) -> Digest | None:
    since = _last_sent(conn, owner)
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(OPEN, (owner,)).fetchall()
        fixed = cur.execute(FIXED, {"owner": owner, "since": since}).fetchall()
        at_risk = cur.execute(MONEY_AT_RISK, (owner,)).fetchall()
        returns_at_risk = cur.execute(RETURNS_AT_RISK, (owner,)).fetchall()
    new = [r for r in rows if since is None or r["first_seen_at"] > since]
    if not rows:
        weekly = owner == "finance" and all_clear_weekday is not None and mail_date.weekday() == all_clear_weekday
        return Digest(owner, mail_date, [], [], all_clear=True, fixed=fixed) if weekly or fixed else None
    if not new and not fixed and since is not None and since.date() == mail_date:
        return None
    digest = Digest(owner, mail_date, rows, new, fixed=fixed, at_risk=at_risk, returns_at_risk=returns_at_risk)
    digest.chart_png, digest.currency_charts = charts(conn, rows, digest.money)
    if owner == "data":
        digest.unknown_values = unknown_values(conn)
    return digest


def unknown_values(conn: psycopg.Connection) -> list[dict[str, Any]]:
    """The Reveni statuses outside the documented sets the latest data-quality check found, as it sampled them: one
    row per return (or item) with the field and the value."""
    rows = conn.execute(UNKNOWN_VALUES, ("%on reveni_%statuses",)).fetchall()
    found = []
    for _expectation, _count, sample in rows:
        for entry in sample or []:
            if not isinstance(entry, dict):
                continue
            name = next((n for n in UNKNOWN_FIELDS if n in entry), None)
            if name is not None:
                found.append(
                    {
                        "field": UNKNOWN_FIELDS[name],
                        "value": entry[name],
                        "return_id": entry.get("return_id"),
                        "item_id": entry.get("item_id"),
                    }
                )
    return found


def age_bucket(age_days: int | None) -> str:
    age = age_days or 0
    return next(name for name, upto in AGE_BUCKETS if upto is None or age <= upto)


def _png(figure: Any) -> bytes:
    from matplotlib import pyplot as plt

    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    plt.close(figure)
    return buffer.getvalue()


def charts(
    conn: psycopg.Connection, rows: list[dict[str, Any]], money: list[dict[str, Any]]
) -> tuple[bytes, dict[str, bytes]]:
    """Open exceptions by the age of their return's event (a count, no money); and one chart per currency,
    never summing currencies: refunded against credited over the last 14 days (``recon.refund_journal``),
    and the owner's money at risk by age (``money``: each return once, with its largest gap)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    names = [name for name, _ in AGE_BUCKETS]
    counts = dict.fromkeys(names, 0)
    for row in rows:
        counts[age_bucket(row["age_days"])] += 1
    # per currency and age: the returns' gaps below zero (refunded more than credited) and above, each summed apart
    gaps: dict[str, dict[str, list[Decimal]]] = {}
    for group in money:
        per_age = gaps.setdefault(group["currency"], {name: [Decimal(0), Decimal(0)] for name in names})
        for row in group["returns"]:
            per_age[age_bucket(row["age_days"])][row["money_at_risk"] > 0] += row["money_at_risk"]
    figure, axes = plt.subplots(figsize=(5, 3))
    axes.bar(names, list(counts.values()), color=["#4c9be8", "#f0a030", "#e07030", "#d9534f"])
    axes.set_title("Open exceptions by age of the return's event")
    axes.tick_params(axis="x", labelsize=8)
    by_age = _png(figure)

    journal: dict[str, list[tuple[date, Decimal, Decimal]]] = {}
    if one_row(conn.execute("SELECT to_regclass('recon.refund_journal')"))[0]:
        for currency, day, refunded, credited in conn.execute(
            """SELECT currency, day, reveni_refunded, cin7_credited FROM recon.refund_journal
               WHERE day >= current_date - 14 ORDER BY currency, day"""
        ):
            journal.setdefault(currency, []).append((day, refunded, credited))
    per_currency = {}
    for currency in sorted(set(journal) | set(gaps)):
        figure, (left, right) = plt.subplots(1, 2, figsize=(9, 3.2))
        days = journal.get(currency, [])
        at = list(range(len(days)))
        left.plot(at, [float(r) for _, r, _ in days], marker="o", label="refunded (Reveni)")
        left.plot(at, [float(c) for _, _, c in days], marker="s", label="credited (Cin7 Core)")
        left.set_xticks(at, [d.strftime("%d %b") for d, _, _ in days])
        left.set_title(f"Refunded vs credited, last 14 days ({currency})")
        left.tick_params(axis="x", labelrotation=45, labelsize=7)
        left.legend(fontsize=7)
        at_risk = gaps.get(currency, {name: [Decimal(0), Decimal(0)] for name in names})
        right.bar(
            names, [float(short) for short, _ in at_risk.values()], color="#d9534f", label="refunded more than credited"
        )
        right.bar(
            names, [float(over) for _, over in at_risk.values()], color="#f0a030", label="credited more than refunded"
        )
        right.axhline(0, color="#555", linewidth=0.8)
        right.legend(fontsize=7)
        right.set_title(f"Money at risk by age, credited − refunded ({currency})")
        right.tick_params(axis="x", labelsize=7)
        per_currency[currency] = _png(figure)
    return by_age, per_currency


def money_by_currency(
    at_risk: list[dict[str, Any]], returns_at_risk: list[dict[str, Any]], rows: list[dict[str, Any]], top: int = 5
) -> list[dict[str, Any]]:
    """Per currency (never summed across), ``recon.money_at_risk``'s row: how many returns, the gaps below zero
    (refunded more than credited, shown negative) and above zero, each summed on its own so that one never hides
    the other; and the returns behind it (``recon.money_at_risk_by_return``, largest gap first) as the exception
    rows whose gap counts, the ``top`` largest listed."""
    details = {row["exception_key"]: row for row in rows}
    returns: dict[str, list[dict[str, Any]]] = {}
    for chosen in returns_at_risk:
        if chosen["exception_key"] in details:  # always, unless the queue changed between the two reads
            returns.setdefault(chosen["currency"], []).append(details[chosen["exception_key"]])
    return [
        {
            "currency": t["currency"],
            "n": t["returns"],
            "short": 0 - t["under_credited"],
            "over": t["over_credited"],
            "returns": returns.get(t["currency"], []),
            "top": returns.get(t["currency"], [])[:top],
        }
        for t in at_risk
    ]


def _csv(columns: tuple[str, ...], rows: list[dict[str, Any]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([csv_cell(row.get(c)) for c in columns])
    return buffer.getvalue().encode()


def render(digest: Digest, from_email: str, now: datetime | None = None, *, workbench_url: str = "") -> EmailMessage:
    """The mail: text and HTML parts, the charts inline, the CSVs attached. With ``workbench_url`` (the workbench's
    base, ``workbench/links.py``), every exception line links to its page and the footer to the owner's queue;
    without, the mail has no links."""
    env = environment()
    by_type: dict[str, dict[str, Any]] = {}
    for row in digest.open:
        entry = by_type.setdefault(
            row["exception_type"], {"exception_type": row["exception_type"], "n": 0, "oldest_days": 0}
        )
        entry["n"] += 1
        entry["oldest_days"] = max(entry["oldest_days"], row["age_days"] or 0)
    context = {
        "owner": digest.owner,
        "merchant": digest.merchant,
        "mail_date": digest.mail_date,
        "open": digest.open,
        "new": digest.new,
        "fixed": digest.fixed,
        "money": digest.money,
        "currency_charts": sorted(digest.currency_charts),
        "by_type": sorted(by_type.values(), key=lambda e: -e["n"]),
        "all_clear": digest.all_clear,
        "unknown_values": digest.unknown_values,
        "link": lambda key: exception_url(workbench_url, key, digest.merchant_id),
        "queue": queue_url(workbench_url, digest.owner, digest.merchant_id),
    }
    message = EmailMessage()
    message["Subject"] = digest.subject
    message["From"] = one_line(from_email)
    message["To"] = one_line(", ".join(digest.recipients))
    message["Date"] = format_datetime(now or datetime.now().astimezone())
    sender = f"recon-{digest.merchant_id + '-' if digest.merchant_id else ''}{digest.owner.replace(' ', '-')}"
    message["Message-ID"] = make_msgid(idstring=f"{sender}-{digest.mail_date}")
    message.set_content(env.get_template("digest.txt.j2").render(context))
    message.add_alternative(env.get_template("digest.html.j2").render(context), subtype="html")
    html = message.get_body(preferencelist=("html",))  # the HTML alternative, where the charts go inline
    assert html is not None
    if digest.chart_png:
        html.add_related(digest.chart_png, "image", "png", cid="<chart>", filename="exceptions-by-age.png")
    for currency, png in sorted(digest.currency_charts.items()):
        html.add_related(png, "image", "png", cid=f"<chart-{currency}>", filename=f"money-{currency}.png")
    name = f"{digest.owner.replace(' ', '-')}-{digest.mail_date}.csv"
    if digest.open:
        message.add_attachment(
            _csv(
                OPEN_CSV_COLUMNS,
                [
                    {**row, "workbench_url": exception_url(workbench_url, row["exception_key"], digest.merchant_id)}
                    for row in digest.open
                ],
            ),
            maintype="text",
            subtype="csv",
            filename=f"open-exceptions-{name}",
        )
    if digest.fixed:
        message.add_attachment(
            _csv(FIXED_COLUMNS, digest.fixed), maintype="text", subtype="csv", filename=f"fixed-by-pipeline-{name}"
        )
    return message


def send_digests(
    conn: psycopg.Connection,
    send: Sender,
    mail_date: date,
    recipients: dict[str, list[str]],
    from_email: str,
    run_id: str,
    all_clear_weekday: int | None = 0,
    *,
    workbench_url: str,
    merchant: tuple[str, str] = ("", ""),
) -> dict[str, str]:
    """Send each owner's mail once per day; returns what happened per owner. A mail SMTP did not take is
    left to the next run (its ``email_log`` row stays ``sending``); once every owner has been tried (or
    the server is unreachable), ``DigestNotSent`` fails the task, naming the server and the error.
    ``workbench_url``: the workbench the exception lines link to (``workbench/links.py``), ``''`` for no links;
    ``merchant``: (id, name) of a merchants file's merchant, named in the subject and the links."""
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
        digest.merchant_id, digest.merchant = merchant
        message = render(digest, from_email, workbench_url=workbench_url)
        conn.execute(
            """INSERT INTO recon.email_log (owner, mail_date, status, recipients, open_count, new_count, fixed_count,
                                           subject, run_id) VALUES (%s, %s, 'sending', %s, %s, %s, %s, %s, %s)
               ON CONFLICT (owner, mail_date) DO UPDATE SET status = 'sending', run_id = EXCLUDED.run_id,
                   open_count = EXCLUDED.open_count, new_count = EXCLUDED.new_count,
                   fixed_count = EXCLUDED.fixed_count, subject = EXCLUDED.subject""",
            (owner, mail_date, to, len(digest.open), len(digest.new), len(digest.fixed), digest.subject, run_id),
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
        outcome[owner] = (
            f"sent to {len(to)} recipient(s): {len(digest.open)} open, {len(digest.new)} new, "
            f"{len(digest.fixed)} fixed by the pipeline"
        )
        log.info("exception email for %s: %s", owner, outcome[owner])
    if not_sent:
        raise DigestNotSent(not_sent, sent=sum(1 for o in outcome.values() if o.startswith("sent")))
    return outcome


# errors of reaching the server (as opposed to the server refusing one mail)
_UNREACHABLE = (
    ConnectionError,
    TimeoutError,
    socket.gaierror,
    smtplib.SMTPConnectError,
    smtplib.SMTPServerDisconnected,
    smtplib.SMTPHeloError,
)


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
                client = connected._smtp_client
                assert isinstance(client, smtplib.SMTP)  # connected synchronously (SMTP_SSL is an SMTP)
                client.send_message(message)
        except (OSError, smtplib.SMTPException) as exc:  # SMTPException is an OSError; both named for clarity
            unreachable = isinstance(exc, _UNREACHABLE)
            why = one_line(redact(f"{type(exc).__name__}: {exc}", [connection.password or ""]), 300)  # redact, then cut
            raise MailDeliveryError(
                f"{server} {'is unreachable' if unreachable else 'did not take the mail'}: {why}", unreachable
            ) from exc
        except AirflowException as exc:  # the hook's own wrapping, e.g. "Unable to connect to smtp server"
            why = one_line(redact(f"{type(exc).__name__}: {exc}", [connection.password or ""]), 300)  # redact, then cut
            raise MailDeliveryError(f"{server} failed: {why}", unreachable=True) from exc

    from_email = connection.extra_dejson.get("from_email") or "returns-recon@localhost"
    return send, from_email
