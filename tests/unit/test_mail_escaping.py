"""Mail content is escaped (issue 16, item 7): the HTML part autoescapes every value, the CSV attachment
neutralises every text cell a spreadsheet would execute (OWASP CSV injection: a leading single quote),
numbers stay numbers, and no value can break a header or forge lines of the plain-text part."""

from __future__ import annotations

import csv
import email
import io
from datetime import UTC, date, datetime
from decimal import Decimal
from email import policy
from types import SimpleNamespace

import pytest

from returns_recon.notify.digest import Digest, render
from returns_recon.orchestration.alerts import alert_message

pytestmark = pytest.mark.unit

SCRIPT = "<script>alert(1)</script>"
HYPERLINK = '=HYPERLINK("http://x","y")'
IMG = "<img src=x onerror=alert(1)>"
CMD = "+cmd|' /C calc'!A0"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")
SEEN = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def exception_row(n: int, **values) -> dict:
    row = {
        "exception_key": f"unknown_sku_cin7:r{n}:i{n}",
        "exception_type": "unknown_sku_cin7",
        "severity": "warning",
        "state": "open",
        "return_id": f"r{n}",
        "item_id": f"i{n}",
        "sku": f"SKU-{n}",
        "first_seen_at": SEEN,
        "last_seen_at": SEEN,
        "occurrences": 1,
        "money_at_risk": Decimal("0"),
        "currency": "EUR",
        "age_days": 1,
        "return_point_id": None,
        "detail": None,
    }
    row.update(values)
    return row


UNMAPPED = {"exception_type": "unmapped_location", "item_id": None, "sku": None}
HOSTILE_ROWS = [
    exception_row(1, sku=SCRIPT, money_at_risk=Decimal("25.00"), order_number=HYPERLINK, credit_note_numbers=IMG),
    exception_row(
        2, sku=HYPERLINK, item_id="@SUM(1+1)*cmd|' /C calc'!A0", stock_found_at=CMD, expected_warehouse=SCRIPT
    ),
    exception_row(3, **UNMAPPED, exception_key="unmapped_location:r3", return_point_id=IMG, detail=CMD),
    exception_row(4, **UNMAPPED, exception_key="unmapped_location:r4", return_point_id=CMD, detail="\tx=1"),
    exception_row(
        5,
        exception_type="credit_note_amount_mismatch",
        exception_key="credit_note_amount_mismatch:r5:i5",
        sku="-2+3",
        return_id="r5\r\nFORGED LINE",
        money_at_risk=Decimal("-12.50"),
        occurrences=3,
    ),
]


def delivered(message) -> email.message.EmailMessage:
    """The mail as a receiver parses it (what the SMTP sink keeps)."""
    return email.message_from_bytes(message.as_bytes(), policy=policy.default)


def part(message, content_type: str):
    return next(p for p in message.walk() if p.get_content_type() == content_type)


# a document the pipeline created, as the target system named it
HOSTILE_FIX = {
    "fixed_at": SEEN,
    "action": "transfer_to_sellable",
    "system": "cin7",
    "document": HYPERLINK,
    "target_ref": CMD,
    "amount": None,
    "currency": None,
    "sku": SCRIPT,
    "quantity": Decimal("1"),
    "from_location": IMG,
    "to_location": "-1 hold",
    "order_number": "1001",
    "return_id": "r1",
    "item_id": "i1",
    "exception_key": "inspected_not_released:r1:i1",
    "exception_type": "inspected_not_released",
    "status": "done",
}


def hostile_mail() -> email.message.EmailMessage:
    digest = Digest(
        "data",
        date(2026, 12, 2),
        HOSTILE_ROWS,
        HOSTILE_ROWS,
        chart_png=b"\x89PNG fake chart",
        recipients=["data@example.com"],
        fixed=[HOSTILE_FIX],
    )
    return delivered(render(digest, "returns-recon@example.com"))


def test_the_html_part_escapes_every_value() -> None:
    html = part(hostile_mail(), "text/html").get_content()
    for value in (SCRIPT, IMG, "<script", "<img src=x"):
        assert value not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    # the return point of an unmapped location is shown (the data team maps it), escaped
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "cid:chart" in html  # the template's own markup is kept


def test_csv_cells_a_spreadsheet_would_execute_are_neutralised_and_numbers_stay_numbers() -> None:
    attachment = part(hostile_mail(), "text/csv").get_content()
    rows = list(csv.DictReader(io.StringIO(attachment)))
    assert [r["exception_key"] for r in rows] == [r["exception_key"] for r in HOSTILE_ROWS]
    numeric = {"occurrences", "money_at_risk", "refunded", "credited", "age_days"}
    for row in rows:
        for column, cell in row.items():
            if column not in numeric:
                assert not cell.startswith(FORMULA_STARTS), (column, cell)
    by_key = {r["exception_key"]: r for r in rows}
    assert by_key["unknown_sku_cin7:r1:i1"]["sku"] == SCRIPT  # HTML is harmless in a CSV: kept as is
    assert by_key["unknown_sku_cin7:r2:i2"]["sku"] == "'" + HYPERLINK
    assert by_key["unknown_sku_cin7:r2:i2"]["item_id"] == "'@SUM(1+1)*cmd|' /C calc'!A0"
    assert by_key["unmapped_location:r3"]["return_point_id"] == IMG  # not a formula: kept
    assert by_key["unmapped_location:r3"]["detail"] == "'" + CMD
    assert by_key["unmapped_location:r4"]["return_point_id"] == "'" + CMD
    assert by_key["unmapped_location:r4"]["detail"] == "'\tx=1"
    mismatch = by_key["credit_note_amount_mismatch:r5:i5"]
    assert mismatch["sku"] == "'-2+3"  # a text column is neutralised even when it looks like a number
    assert mismatch["money_at_risk"] == "-12.50"  # a numeric column keeps its sign: it is a number
    assert mismatch["occurrences"] == "3"
    # the columns that name orders, documents and warehouses are text like any other
    assert by_key["unknown_sku_cin7:r1:i1"]["order_number"] == "'" + HYPERLINK
    assert by_key["unknown_sku_cin7:r1:i1"]["credit_note_numbers"] == IMG
    assert by_key["unknown_sku_cin7:r2:i2"]["stock_found_at"] == "'" + CMD


def test_the_fixes_csv_and_section_treat_document_names_as_data() -> None:
    message = hostile_mail()
    fixes = next(p for p in message.walk() if (p.get_filename() or "").startswith("fixed-by-pipeline-"))
    (row,) = csv.DictReader(io.StringIO(fixes.get_content()))
    assert (row["document"], row["target_ref"], row["to_location"]) == ("'" + HYPERLINK, "'" + CMD, "'-1 hold")
    assert row["quantity"] == "1"
    html = part(message, "text/html").get_content()
    assert "Fixed by the pipeline since the last mail" in html
    for value in (SCRIPT, IMG):
        assert value not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html  # the transfer's origin, shown escaped


def money_row(n: int, amount: str | None, currency: str | None) -> dict:
    kind = "refund_without_credit_note"
    return exception_row(
        n,
        exception_type=kind,
        exception_key=f"{kind}:r{n}",
        item_id=None,
        sku=None,
        money_at_risk=None if amount is None else Decimal(amount),
        currency=currency,
    )


def test_money_is_shown_per_currency_never_summed_across_and_never_without_its_currency() -> None:
    rows = [
        money_row(10, "-10.00", "EUR"),
        money_row(11, "-20.00", "EUR"),
        money_row(12, "5.00", "EUR"),
        money_row(13, "-300.00", "SEK"),
        money_row(14, "99.00", None),
    ]
    # recon.money_at_risk's and recon.money_at_risk_by_return's rows for these (an amount without currency has none)
    at_risk = [
        {"currency": "EUR", "returns": 3, "under_credited": Decimal("30.00"), "over_credited": Decimal("5.00")},
        {"currency": "SEK", "returns": 1, "under_credited": Decimal("300.00"), "over_credited": Decimal(0)},
    ]
    chosen = [
        {"currency": r["currency"], "return_id": r["return_id"], "exception_key": r["exception_key"]}
        for r in sorted(rows[:4], key=lambda r: -abs(r["money_at_risk"]))
    ]
    digest = Digest(
        "finance",
        date(2026, 12, 2),
        rows,
        rows,
        recipients=["fin@example.com"],
        at_risk=at_risk,
        returns_at_risk=chosen,
    )
    text = part(delivered(render(digest, "returns-recon@example.com")), "text/plain").get_content()
    assert "EUR, 3 return(s): refunded more than credited -30.00 EUR, credited more than refunded 5.00 EUR" in text
    assert "SEK, 1 return(s): refunded more than credited -300.00 SEK, credited more than refunded 0.00 SEK" in text
    for summed in ("-330.00", "-325.00", "-25.00", "-315.00"):  # no total across currencies, nor across signs
        assert summed not in text
    assert "99.00" not in text  # an amount without its currency is not shown as a bare number


def test_the_money_totals_are_the_views_rows_each_return_once_with_its_largest_gap() -> None:
    """Two money exceptions of one return: the mail shows recon.money_at_risk's one return and lists the return
    once among the largest gaps, with the gap recon.money_at_risk_by_return chose."""
    no_note = money_row(20, "-25.00", "EUR")
    by_hand = {
        **money_row(20, "-10.00", "EUR"),
        "exception_type": "unattributed_credit_note",
        "exception_key": "unattributed_credit_note:r20",
    }
    rows = [by_hand, no_note]
    at_risk = [{"currency": "EUR", "returns": 1, "under_credited": Decimal("25.00"), "over_credited": Decimal(0)}]
    chosen = [{"currency": "EUR", "return_id": "r20", "exception_key": no_note["exception_key"]}]
    digest = Digest(
        "finance", date(2026, 12, 2), rows, [], recipients=["fin@example.com"], at_risk=at_risk, returns_at_risk=chosen
    )
    message = delivered(render(digest, "returns-recon@example.com"))
    text = part(message, "text/plain").get_content()
    assert "EUR, 1 return(s): refunded more than credited -25.00 EUR, credited more than refunded 0.00 EUR" in text
    money = text[text.index("Money at risk") : text.index("Still open")]
    (listed,) = [line for line in money.splitlines() if "return r20" in line]
    assert "refund_without_credit_note" in listed
    assert "-25.00 EUR" in listed
    assert "-10.00 EUR" not in money
    html = part(message, "text/html").get_content()
    assert "(one per return)" in html
    assert html.count("-25.00 EUR") == 2  # the total and the one listed return


def test_the_mail_has_a_date_header() -> None:
    written = datetime(2026, 12, 2, 6, 30, tzinfo=UTC)
    digest = Digest("data", date(2026, 12, 2), HOSTILE_ROWS, HOSTILE_ROWS, recipients=["data@example.com"])
    message = delivered(render(digest, "returns-recon@example.com", now=written))
    assert message["Date"].datetime == written


def test_no_value_forges_a_line_of_the_plain_text_part() -> None:
    text = part(hostile_mail(), "text/plain").get_content()
    assert "r5 FORGED LINE" in text or "r5  FORGED LINE" in text
    assert not [line for line in text.splitlines() if line.startswith("FORGED")]


def test_a_run_id_with_a_line_break_neither_breaks_the_alert_nor_adds_a_header() -> None:
    dag_run = SimpleNamespace(dag_id="returns_recon_hourly", run_id="manual__x\r\nBcc: attacker@example.com")
    message = delivered(
        alert_message({"dag_run": dag_run, "reason": "task_failure"}, ["data@example.com"], "returns-recon@example.com")
    )
    assert message["Bcc"] is None
    assert "\n" not in message["Subject"]
    assert "\r" not in message["Subject"]
    assert message["Subject"].startswith("[returns recon] returns_recon_hourly failed (manual__x")
    assert message["To"] == "data@example.com"
