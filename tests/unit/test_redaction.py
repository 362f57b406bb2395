"""What is kept out of what the pipeline stores, sends and raises.

- Personal data: ``returns_recon.privacy`` keeps only the allowed fields of a stored payload, at any depth,
  for payloads shaped like the vendors' (shared/reference: Sitoo order customer fields ``email namefirst
  namelast personalid company phone invoice_* delivery_*`` and free-form ``additionaldata``; Reveni customer
  and bank details; Cin7 Core addresses and line comments). Complements tests/unit/test_privacy_allowlist.py.
- Secrets: ``notify.fallback`` scrubs the pipeline's passwords (and a webhook URL) from every value of an alert
  and never logs the webhook's address; ``notify.digest`` names the SMTP server, never its password; an
  unreachable API is named by host:port, never by the user info of its URL.
"""

from __future__ import annotations

import copy
import json
import logging
import smtplib
from email.message import EmailMessage
from typing import Any, ClassVar

import pytest
import requests

from returns_recon import privacy
from returns_recon.apis.client import ApiClient, RetrySettings
from returns_recon.notify import fallback
from returns_recon.notify.fallback import one_line, redact
from returns_recon.reachability import Unreachable

pytestmark = pytest.mark.unit

# --- personal data in stored payloads ----------------------------------------------------------------------------

PERSONAL = {
    "email": "ana.garcia@example.org",
    "name": "Ana García",
    "phone": "+34 600 000 000",
    "street": "Calle Mayor 1",
    "iban": "ES9121000418450200051332",
    "personalid": "19850101-1234",
    "note": "call me after 6, my neighbour has the parcel",
}


def planted(text: str) -> list[str]:
    """The personal values found in ``text``."""
    return [value for value in PERSONAL.values() if value in text]


SITOO_ORDER = {
    "orderid": 11512,
    "creditorderid": 11490,
    "externalid": "reveni-refund:r-1",
    "orderdate": 1717172100,
    "orderstateid": 10,
    "paymentstateid": 20,
    "ordertypeid": 10,
    "warehouseid": 1,
    "currencycode": "EUR",
    "moneytotal_gross_all": "-399.00",
    "email": PERSONAL["email"],
    "namefirst": "Ana",
    "namelast": PERSONAL["name"],
    "personalid": PERSONAL["personalid"],
    "phone": PERSONAL["phone"],
    "delivery_address": PERSONAL["street"],
    "invoice_address": PERSONAL["street"],
    "additionaldata": {
        "reveni-return-id": "r-1",
        "source": "returns_recon",
        "refundreasoncode-comment": PERSONAL["note"],
        "crm-customer": PERSONAL["email"],
    },
    "orderitems": [
        {
            "sku": "14785-5",
            "productname": "Shirt blue",
            "quantity": -1,
            "moneyitemtotal_net": "-319.20",
            "moneyitemtotal_vat": "-79.80",
            "additionaldata": {"engraving": PERSONAL["name"]},
        }
    ],
    "payments": [{"name": "Card", "moneyamount": "-399.00", "refid": "PSP123", "cardholder": PERSONAL["name"]}],
    "orderlogitems": [{"text": PERSONAL["note"]}],
}

REVENI_RETURN = {
    "id": "r-1",
    "type": "refund",
    "instant": True,
    "status": "received",
    "amount": "44.0000",
    "currency": "EUR",
    "refund_method": "bank_transfer",
    "updated_at": "2026-03-01T10:00:00Z",
    "customer": {"name": PERSONAL["name"], "email": PERSONAL["email"], "address": {"street": PERSONAL["street"]}},
    "order": {"id": "o-1", "external_id": "#1001", "customer_email": PERSONAL["email"]},
    "return_items": [
        {
            "item_id": "i-1",
            "sku": "TEE-BLK-M",
            "quantity": 1,
            "price": "44.0000",
            "return_reason": "size",
            "comment": PERSONAL["note"],
            "exchange": {"sku": "TEE-BLK-L", "ship_to": PERSONAL["street"]},
        }
    ],
    "refunds": [{"id": "f-1", "amount": "44.0000", "status": "paid", "iban": PERSONAL["iban"], "holder": "Ana"}],
}

CIN7_SALE = {
    "ID": "sale-1",
    "Customer": PERSONAL["name"],
    "Email": PERSONAL["email"],
    "Phone": PERSONAL["phone"],
    "CustomerReference": "#1001",
    "Status": "COMPLETED",
    "ShippingAddress": {"Line1": PERSONAL["street"], "City": "Madrid"},
    "BillingAddress": {"Line1": PERSONAL["street"]},
    "Note": PERSONAL["note"],
    "Order": {"SaleOrderNumber": "SO-1", "Lines": [{"SKU": "TEE-BLK-M", "Total": 44, "Comment": PERSONAL["note"]}]},
    "Invoices": [{"InvoiceNumber": "INV-1", "BillingAddress": {"Line1": PERSONAL["street"]}, "Lines": []}],
    "CreditNotes": [
        {
            "TaskID": "t-1",
            "Memo": "reveni:r-1",
            "Lines": [{"SKU": "TEE-BLK-M", "Comment": PERSONAL["note"]}],
            "Restock": [{"SKU": "TEE-BLK-M", "Quantity": 1, "Comment": PERSONAL["name"]}],
            "Refunds": [{"Reference": "RET-1", "Account": PERSONAL["iban"]}],
        }
    ],
}


@pytest.mark.parametrize(
    ("entity", "payload"),
    [(("sitoo", "orders"), SITOO_ORDER), (("reveni", "returns"), REVENI_RETURN), (("cin7", "sales"), CIN7_SALE)],
    ids=["sitoo order", "reveni return", "cin7 sale"],
)
def test_no_personal_value_survives_minimising_at_any_depth(entity: tuple[str, str], payload: dict) -> None:
    original = copy.deepcopy(payload)
    shape = privacy.allowed(*entity)
    kept = privacy.minimise(payload, shape)
    assert planted(json.dumps(kept, ensure_ascii=False)) == []
    assert payload == original, "the payload read is not changed"
    quarantined = privacy.minimise_invalid(payload, shape)
    assert planted(json.dumps(quarantined, ensure_ascii=False)) == []
    assert quarantined[privacy.DROPPED_KEYS], "the names of what was dropped are kept"


def test_what_is_allowed_is_kept_as_it_was() -> None:
    kept = privacy.minimise(SITOO_ORDER, privacy.allowed("sitoo", "orders"))
    assert kept == {
        "orderid": 11512,
        "creditorderid": 11490,
        "externalid": "reveni-refund:r-1",
        "orderdate": 1717172100,
        "orderstateid": 10,
        "paymentstateid": 20,
        "ordertypeid": 10,
        "warehouseid": 1,
        "currencycode": "EUR",
        "moneytotal_gross_all": "-399.00",
        "additionaldata": {"reveni-return-id": "r-1", "source": "returns_recon"},
        "orderitems": [
            {
                "sku": "14785-5",
                "productname": "Shirt blue",
                "quantity": -1,
                "moneyitemtotal_net": "-319.20",
                "moneyitemtotal_vat": "-79.80",
            }
        ],
        "payments": [{"name": "Card", "moneyamount": "-399.00"}],
    }


def test_nested_lists_and_a_vendors_new_fields_are_filtered_like_the_rest() -> None:
    shape = privacy.fields("id", lines=[privacy.fields("sku")])
    payload = {
        "id": 1,
        "lines": [[{"sku": "A", "owner": PERSONAL["email"]}], {"sku": "B", "new_field": {"x": PERSONAL["name"]}}],
        "new_block": [{"email": PERSONAL["email"]}],
    }
    assert privacy.minimise(payload, shape) == {"id": 1, "lines": [[{"sku": "A"}], {"sku": "B"}]}
    assert privacy.minimise([payload, "x"], shape) == [{"id": 1, "lines": [[{"sku": "A"}], {"sku": "B"}]}, "x"]


def test_dropped_key_names_are_bounded_merged_and_never_values() -> None:
    shape = privacy.fields("id")
    many = {"id": 1, **{f"k{n:03d}": PERSONAL["email"] for n in range(250)}, "a" * 300: PERSONAL["name"]}
    names = privacy.minimise_invalid(many, shape)[privacy.DROPPED_KEYS]
    assert len(names) == privacy.MAX_DROPPED_NAMES
    assert names == sorted(names)
    assert names[:2] == ["a" * privacy.MAX_NAME_LENGTH, "k000"]
    assert planted(json.dumps(names)) == []
    # minimised before under an earlier allow-list: its names are kept, a non-name is not
    earlier = {"id": 1, "phone": PERSONAL["phone"], privacy.DROPPED_KEYS: ["email", {"v": PERSONAL["name"]}, 7]}
    assert privacy.minimise_invalid(earlier, shape) == {"id": 1, privacy.DROPPED_KEYS: ["email", "phone"]}


# --- secrets in alerts ----------------------------------------------------------------------------------------------


def test_redact_replaces_every_occurrence_longest_secret_first() -> None:
    assert redact("key=abcd1234, again abcd1234.", ["abcd1234"]) == "key=***, again ***."
    # a secret that contains another is replaced whole, not leaving its tail
    assert redact("token abcd1234efgh", ["abcd", "abcd1234efgh"]) == "token ***"
    # empty, missing and very short values are not secrets to look for (they would blank ordinary words)
    assert redact("a b abc", ["", "abc", "b"]) == "a b abc"


def test_one_line_removes_what_could_forge_a_line_or_reorder_it() -> None:
    assert one_line("a\r\nb\x00c\x85d\u202ee\u2066f\tg") == "a b c d e f g"
    assert one_line("x" * 20, 10) == "x" * 9 + "…"
    assert one_line("short", 10) == "short"


def test_a_failed_webhook_is_described_without_its_address() -> None:
    url = "https://hooks.example.com/services/T000/B000/webhook-secret-path"
    down = requests.ConnectionError(f"HTTPSConnectionPool(host='hooks.example.com', port=443): Max retries: {url}")
    assert fallback._why(down) == "ConnectionError"
    refused = requests.HTTPError(f"404 Client Error: Not Found for url: {url}", response=requests.Response())
    refused.response.status_code = 404
    assert fallback._why(refused) == "HTTPError (HTTP 404)"
    assert fallback._why(ValueError("bad\npayload")) == "ValueError: bad payload"


WEBHOOK = "https://hooks.example.com/services/T000/B000/webhook-secret-path"
WAREHOUSE_PASSWORD = "p@ss/w:rd#1-warehouse"
SITOO_PASSWORD = "sitoo-planted-secret-7f3a"
FALLBACK_PASSWORD = "fallback-planted-secret-9e2b"


class Notifier:
    """Stands in for the http provider's ``HttpNotifier``: keeps what would be posted."""

    posted: ClassVar[list[dict[str, Any]]] = []
    fails: ClassVar[Exception | None] = None

    def __init__(self, *, http_conn_id: str, method: str, json: dict[str, Any], extra_options: dict) -> None:
        self.payload = json

    def notify(self, context: dict) -> None:
        if Notifier.fails:
            raise Notifier.fails
        Notifier.posted.append(self.payload)


@pytest.fixture
def webhook(monkeypatch) -> type[Notifier]:
    import airflow.providers.http.notifications as notifications

    conn = {"conn_type": "http", "host": WEBHOOK, "password": FALLBACK_PASSWORD}
    monkeypatch.setenv("RECON_ALERT_FALLBACK_CONN_ID", "recon_alert_fallback")
    monkeypatch.setenv("AIRFLOW_CONN_RECON_ALERT_FALLBACK", json.dumps(conn))
    monkeypatch.setenv(
        "AIRFLOW_CONN_RECON_WAREHOUSE",
        json.dumps({"conn_type": "postgres", "host": "db", "login": "recon", "password": WAREHOUSE_PASSWORD}),
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_SITOO_DEFAULT",
        json.dumps({"conn_type": "http", "host": "127.0.0.1", "login": "90001-1", "password": SITOO_PASSWORD}),
    )
    monkeypatch.setattr(notifications, "HttpNotifier", Notifier)
    monkeypatch.setattr(Notifier, "posted", [])
    monkeypatch.setattr(Notifier, "fails", None)
    return Notifier


def test_every_value_of_a_fallback_alert_is_scrubbed_of_the_pipelines_secrets(webhook) -> None:
    error = f"psycopg: password {WAREHOUSE_PASSWORD} refused; sitoo said {SITOO_PASSWORD}; posted to {WEBHOOK}"
    cut_at_the_limit = "x" * 490 + SITOO_PASSWORD  # the secret runs across the 500 characters a field keeps
    assert fallback.send_fallback(
        "dag_run_failed", f"run failed\n{error}\n", dag_id=error, run_id=cut_at_the_limit, task_id=None
    )
    (payload,) = webhook.posted
    assert set(payload) == {"text", "event", "source", "dag_id", "run_id"}
    told = json.dumps(payload, ensure_ascii=False)
    for secret in (WAREHOUSE_PASSWORD, SITOO_PASSWORD, WEBHOOK, FALLBACK_PASSWORD):
        assert secret not in told
    assert SITOO_PASSWORD[:6] not in payload["run_id"], "not even the start of a secret the limit cut short"
    assert payload["dag_id"] == "psycopg: password *** refused; sitoo said ***; posted to ***"
    assert len(payload["run_id"]) <= 500


def test_a_failing_webhook_is_logged_without_its_address(webhook, caplog) -> None:
    webhook.fails = requests.ConnectionError(f"Max retries exceeded with url: {WEBHOOK}")
    with caplog.at_level(logging.ERROR, logger=fallback.log.name):
        assert fallback.send_fallback("digest_not_sent", "the digest was not sent") is False
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "ConnectionError" in logged
    assert "webhook-secret-path" not in logged


@pytest.mark.parametrize("padding", [0, 258], ids=["short error", "password across the 300-character cut"])
def test_smtp_errors_name_the_server_never_its_password(monkeypatch, padding: int) -> None:
    import airflow.providers.smtp.hooks.smtp as smtp_hooks

    from returns_recon.notify.digest import MailDeliveryError, smtp_sender

    password = "smtp-planted-secret-31c7"
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMTP_DEFAULT",
        json.dumps({"conn_type": "smtp", "host": "mail.example.test", "port": 587, "password": password}),
    )

    class Refusing:
        """Stands in for ``SmtpHook``: the server refuses the login and quotes what it got."""

        def __init__(self, **kwargs: Any) -> None:
            pass

        def __enter__(self):
            said = f"5.7.8 {'x' * padding} credentials user:{password} rejected"
            raise smtplib.SMTPAuthenticationError(535, said.encode())

        def __exit__(self, *exc: Any) -> None:
            return None

    monkeypatch.setattr(smtp_hooks, "SmtpHook", Refusing)
    send, _ = smtp_sender()
    with pytest.raises(MailDeliveryError) as failed:
        send(EmailMessage())
    assert "SMTP server mail.example.test:587 (connection smtp_default) did not take the mail" in str(failed.value)
    assert "SMTPAuthenticationError" in str(failed.value)
    assert password not in str(failed.value)
    assert password[:6] not in str(failed.value)  # not even its start, where the message is cut
    assert not failed.value.unreachable


# --- an unreachable API names host:port only --------------------------------------------------------------------------


class NoConnection(requests.adapters.BaseAdapter):
    def send(self, request, **kwargs):
        raise requests.ConnectTimeout(f"connect to {request.url} timed out")

    def close(self) -> None:
        pass


def test_an_unreachable_api_is_named_without_the_user_info_of_its_url() -> None:
    session = requests.Session()
    session.mount("https://", NoConnection())
    base_url = "https://merchant:url-planted-secret@api.example.test:8443/v2/accounts/1"
    settings = RetrySettings(initial_wait=0, max_wait=0, connect_timeout=1, unreachable_budget=1)
    api = ApiClient("sitoo", "sitoo_default", session, base_url, lambda r: False, retry=settings)
    with pytest.raises(Unreachable) as unreachable:
        api.get("orders.json")
    assert str(unreachable.value).startswith("cannot reach api.example.test:8443 (Airflow connection 'sitoo_default')")
    assert "url-planted-secret" not in str(unreachable.value)
