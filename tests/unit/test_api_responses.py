"""How ``ApiClient`` classifies an answer (``returns_recon.apis.client``): parsed, refused for good, retried,
throttled (with ``Retry-After``), or a host that never answered; and which of those a write may repeat.

Everything goes through the real ``requests`` machinery (session, prepared request, response) with a
transport adapter that hands back canned answers or raises what ``HTTPAdapter`` raises: no network. The
retry settings wait zero seconds unless a test records the waits. Throttling follows the vendors' docs:
Cin7 Core answers 429, 503, or 400 with ``calls per 60 seconds API limit`` (cin7_core_api.md §2, detection
rule ``/calls per .* (minute|seconds) API limit/i``); Reveni and Sitoo answer 429 (sitoo_api.md §3)."""

from __future__ import annotations

import json
import logging
import socket
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
import requests
import tenacity
from requests.adapters import BaseAdapter
from urllib3.connection import HTTPSConnection
from urllib3.connectionpool import HTTPSConnectionPool
from urllib3.exceptions import MaxRetryError, NameResolutionError, NewConnectionError, ProtocolError

from returns_recon.apis.client import ApiClient, NoAnswer, RetrySettings, encode_json
from returns_recon.apis.errors import ApiError, AuthError, ThrottledError, TransientError
from returns_recon.errors import NotRetryable
from returns_recon.orchestration.hooks import Cin7CoreHook, ReveniHook, SitooHook
from returns_recon.postings.actions.sitoo import bulk_element
from returns_recon.reachability import Unreachable

pytestmark = pytest.mark.unit

HOST = "api.example.test"
SECRET = "k3y/w1th+special&chars=="  # the application key: in a header, never in a message
CIN7_LIMIT_400 = '[{"ErrorCode":400,"Exception":"You have reached 60 calls per 60 seconds API limit."}]'
CIN7_LIMIT_429 = '[{"ErrorCode":429,"Exception":"You reached 60 calls per minute API limit"}]'


def answer(status: int, body: Any = b"", content_type: str | None = "application/json", **headers: str):
    response = requests.models.Response()
    response.status_code = status
    response._content = body if isinstance(body, bytes) else (body if isinstance(body, str) else json.dumps(body))
    if isinstance(response._content, str):
        response._content = response._content.encode()
    response.encoding = "utf-8"
    if content_type:
        response.headers["Content-Type"] = content_type
    response.headers.update({name.replace("_", "-"): value for name, value in headers.items()})
    return response


class Canned(BaseAdapter):
    """A transport that answers from a list: a ``Response`` is returned, an exception raised."""

    def __init__(self, *answers: Any) -> None:
        super().__init__()
        self.answers = list(answers)
        self.sent: list[tuple[requests.PreparedRequest, Any]] = []

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        self.sent.append((request, timeout))
        reply = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(reply, BaseException):
            raise reply
        reply.request, reply.url = request, request.url
        return reply

    def close(self) -> None:
        pass


def client(*answers: Any, hook: type = Cin7CoreHook, **retry: Any) -> tuple[ApiClient, Canned]:
    adapter = Canned(*answers)
    session = requests.Session()
    session.mount("https://", adapter)
    session.headers["api-auth-applicationkey"] = SECRET
    settings = RetrySettings(**{"attempts": 3, "initial_wait": 0, "max_wait": 0, **retry})
    api = ApiClient(
        hook.service,
        hook.default_conn_name,
        session,
        f"https://{HOST}/ExternalApi/v2",
        hook.is_throttled,
        retry=settings,
    )
    return api, adapter


@pytest.fixture
def slept(monkeypatch) -> list[float]:
    """The waits between attempts (tenacity sleeps through ``time.sleep``), not waited."""
    waits: list[float] = []
    monkeypatch.setattr(tenacity.nap.time, "sleep", waits.append)
    return waits


# --- answers that are parsed ------------------------------------------------------------------------------


def test_a_json_answer_is_parsed_with_exact_amounts_and_the_call_counted() -> None:
    api, adapter = client(answer(200, b'{"Total": 19.465, "SaleList": []}', "application/json; charset=utf-8"))
    body = api.get("saleList", {"Page": 1, "Limit": 2}, label="sales")
    assert body == {"Total": Decimal("19.465"), "SaleList": []}
    assert isinstance(body["Total"], Decimal)
    (request, timeout), *_ = adapter.sent
    assert (request.method, urlsplit(request.url).path) == ("GET", "/ExternalApi/v2/saleList")
    assert parse_qs(urlsplit(request.url).query) == {"Page": ["1"], "Limit": ["2"]}
    assert timeout == (api.retry.connect_timeout, api.retry.read_timeout)
    assert api.calls == {"sales": 1}
    assert api.answered
    assert api.last_headers["Content-Type"].startswith("application/json")


# --- refusals a retry does not change ------------------------------------------------------------------------


@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials_are_not_retried_and_name_the_connection(status: int) -> None:
    api, adapter = client(answer(status, {"detail": "bad key"}))
    with pytest.raises(AuthError) as refused:
        api.get("saleList")
    assert isinstance(refused.value, NotRetryable)
    assert refused.value.status == status
    assert "cin7_core_default" in str(refused.value)
    assert len(adapter.sent) == 1


@pytest.mark.parametrize(
    ("status", "body"),
    [(404, {"detail": "Not found."}), (400, '[{"ErrorCode":400,"Exception":"Invalid SaleID"}]'), (422, "x" * 900)],
)
def test_other_4xx_are_refusals_not_retried(status: int, body: Any) -> None:
    api, adapter = client(answer(status, body))
    with pytest.raises(ApiError) as refused:
        api.get("sale", {"ID": "s-1"})
    assert not isinstance(refused.value, TransientError)
    assert refused.value.status == status
    assert str(refused.value).startswith(f"cin7 answered {status}: ")
    assert len(str(refused.value)) <= len(f"cin7 answered {status}: ") + 500  # the body is cut
    assert len(adapter.sent) == 1


# --- answers worth retrying -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "glitch",
    [
        answer(500, b"<html>oops</html>", "text/html"),
        answer(502, b""),
        answer(200, b"<html>maintenance</html>", "text/html"),  # a proxy's page with HTTP 200
        answer(200, b"{truncated", "application/json"),
        answer(200, b'{"a": 1}', None),  # no content type
    ],
    ids=["500", "502", "200 html", "200 broken json", "200 no content type"],
)
def test_a_transient_answer_is_retried_until_a_good_one(glitch: requests.Response) -> None:
    api, adapter = client(glitch, answer(200, {"ok": True}))
    assert api.get("saleList") == {"ok": True}
    assert len(adapter.sent) == 2


def test_transient_answers_give_up_after_the_attempts_with_the_last_error() -> None:
    api, adapter = client(answer(500, b"x" * 1000, "text/plain"), attempts=4)
    with pytest.raises(TransientError, match=r"^cin7 answered 500: x{200}$"):
        api.get("saleList")
    assert len(adapter.sent) == 4


def test_a_body_that_is_not_json_says_so() -> None:
    api, _ = client(answer(200, b"{truncated"), attempts=1)
    with pytest.raises(TransientError, match="not valid JSON"):
        api.get("saleList")
    api, _ = client(answer(200, b"<html/>", "text/html"), attempts=1)
    with pytest.raises(TransientError, match="with text/html, not JSON"):
        api.get("saleList")


# --- throttling ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "throttled"),
    [
        (429, CIN7_LIMIT_429, True),
        (503, CIN7_LIMIT_429, True),  # the legacy status page's form
        (503, "<html>Service Unavailable</html>", True),  # 503 is taken as the limit whatever the text
        (400, CIN7_LIMIT_400, True),  # confirmed live on /purchase (cin7_core_api.md §2)
        (400, CIN7_LIMIT_400.upper(), True),
        (400, CIN7_LIMIT_429.replace("429", "400"), True),  # the documented wording (APIB L124) on a 400
        (400, '[{"ErrorCode":400,"Exception":"calls per 60 seconds are fine; Invalid Location"}]', False),
        (400, '[{"ErrorCode":400,"Exception":"Invalid SaleID"}]', False),
        (500, CIN7_LIMIT_400, False),
        (200, CIN7_LIMIT_400, False),
    ],
    ids=[
        "429",
        "503 limit text",
        "503 other text",
        "400 limit",
        "400 limit upper case",
        "400 documented per-minute text",
        "400 other mention",
        "400 other",
        "500 limit text",
        "200 limit text",
    ],
)
def test_cin7_throttle_forms(status: int, body: str, throttled: bool) -> None:
    assert Cin7CoreHook.is_throttled(answer(status, body)) is throttled


@pytest.mark.parametrize("hook", [ReveniHook, SitooHook])
def test_reveni_and_sitoo_throttle_with_429_only(hook: type) -> None:
    assert hook.is_throttled(answer(429, {"detail": "Request was throttled."}))
    assert not hook.is_throttled(answer(503, CIN7_LIMIT_429))
    assert not hook.is_throttled(answer(400, CIN7_LIMIT_400))


@pytest.mark.parametrize(
    ("status", "body", "unprocessed"),
    [(429, CIN7_LIMIT_429, True), (400, CIN7_LIMIT_400, True), (503, CIN7_LIMIT_429, False)],
    ids=["429", "400", "503"],
)
def test_a_throttled_read_is_retried_and_says_whether_it_was_processed(status, body, unprocessed) -> None:
    api, adapter = client(answer(status, body), answer(200, {"ok": 1}))
    assert api.get("saleList") == {"ok": 1}
    assert len(adapter.sent) == 2
    api, _ = client(answer(status, body), attempts=2)
    with pytest.raises(ThrottledError) as throttled:
        api.get("saleList")
    assert throttled.value.status == status
    assert throttled.value.refused_unprocessed is unprocessed
    assert "API limit" in str(throttled.value)


def test_a_sitoo_503_is_a_5xx_not_a_throttle() -> None:
    api, adapter = client(answer(503, {"statuscode": 503, "errortext": "busy"}), hook=SitooHook, attempts=2)
    with pytest.raises(TransientError) as failed:
        api.get("orders.json")
    assert not isinstance(failed.value, ThrottledError)
    assert len(adapter.sent) == 2


def test_retry_after_is_waited_capped_at_the_longest_wait(slept: list[float]) -> None:
    throttled = answer(429, {"detail": "Request was throttled."}, Retry_After="7")
    api, _ = client(throttled, answer(200, {}), hook=SitooHook, initial_wait=1, max_wait=60)
    api.get("orders.json")
    api, _ = client(throttled, answer(200, {}), hook=SitooHook, initial_wait=1, max_wait=5)
    api.get("orders.json")
    assert slept == [7, 5]


def test_without_retry_after_the_backoff_decides(slept: list[float]) -> None:
    api, _ = client(answer(429, b"{}"), answer(429, b"{}"), answer(200, {}), initial_wait=2, max_wait=60)
    api.get("saleList")
    first, second = slept
    assert 2 <= first <= 3  # initial x 2^n, plus up to a second of jitter
    assert 4 <= second <= 5


# --- writes ------------------------------------------------------------------------------------------------------


def test_a_write_sends_exact_json_and_is_repeated_only_when_refused_unprocessed() -> None:
    body = {"Amount": Decimal("19.47"), "Rate": Decimal("0.25"), "Huge": Decimal("12345678901234567.89")}
    api, adapter = client(answer(429, CIN7_LIMIT_429), answer(400, CIN7_LIMIT_400), answer(200, {"TaskID": "t-1"}))
    assert api.send("POST", "sale/creditnote", json_body=body) == {"TaskID": "t-1"}
    requests_sent = [request for request, _ in adapter.sent]
    assert [request.method for request in requests_sent] == ["POST"] * 3
    assert requests_sent[0].body == b'{"Amount":19.47,"Rate":0.25,"Huge":"12345678901234567.89"}'
    assert requests_sent[0].headers["Content-Type"] == "application/json"


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (answer(503, CIN7_LIMIT_429), ThrottledError),  # may have been processed on the way: ambiguous
        (answer(500, b"", "text/plain"), TransientError),
        (answer(200, b"<html/>", "text/html"), TransientError),
    ],
    ids=["503", "500", "200 not json"],
)
def test_an_ambiguous_write_is_not_repeated(reply: requests.Response, error: type) -> None:
    api, adapter = client(reply, answer(200, {}), attempts=5)
    with pytest.raises(error):
        api.send("PUT", "sale/creditnote", json_body={"TaskID": "t-1"})
    assert len(adapter.sent) == 1


def test_encode_json_refuses_what_it_cannot_keep_exact() -> None:
    assert encode_json({"a": Decimal("1.10"), "b": [Decimal("-0.5")]}) == b'{"a":1.1,"b":[-0.5]}'
    with pytest.raises(TypeError, match="set is not JSON serialisable"):
        encode_json({"a": {1}})


# --- a host that does not answer ------------------------------------------------------------------------------


def refused(host: str = HOST) -> requests.ConnectionError:
    """What ``HTTPAdapter`` raises when the connection is refused (urllib3's exception chain)."""
    conn = HTTPSConnection(host, 443)
    try:
        try:
            raise ConnectionRefusedError(111, "Connection refused")
        except ConnectionRefusedError as os_error:
            raise NewConnectionError(conn, f"Failed to establish a new connection: {os_error}") from os_error
    except NewConnectionError as new:
        cause = new
    return requests.ConnectionError(MaxRetryError(HTTPSConnectionPool(host, 443), "/ExternalApi/v2/saleList", cause))


def unknown_host() -> requests.ConnectionError:
    conn = HTTPSConnection(HOST, 443)
    cause = NameResolutionError(HOST, conn, socket.gaierror(-2, "Name or service not known"))
    return requests.ConnectionError(MaxRetryError(HTTPSConnectionPool(HOST, 443), "/ExternalApi/v2/x", cause))


UNREACHABLE_BUDGET = {"attempts": 8, "connect_timeout": 1, "read_timeout": 2, "unreachable_budget": 3.5}


@pytest.mark.parametrize(
    ("failure", "reason", "attempts"),
    [
        (refused(), "connection refused", 3),  # 1 s per attempt, 0 s pauses: three fit into 3.5 s
        (unknown_host(), "host name not found", 3),
        (requests.ConnectTimeout("connect timed out"), "no connection within 1 s (connect timeout)", 3),
        (requests.ReadTimeout("read timed out"), "connected, but no answer within 2 s (read timeout)", 1),
    ],
    ids=["refused", "unknown host", "connect timeout", "read timeout"],
)
def test_a_host_that_never_answered_is_unreachable_within_the_budget(failure, reason, attempts) -> None:
    api, adapter = client(failure, **UNREACHABLE_BUDGET)
    with pytest.raises(Unreachable) as unreachable:
        api.get("saleList", {"Page": 1})
    assert len(adapter.sent) == attempts
    assert str(unreachable.value).startswith(
        f"cannot reach {HOST}:443 (Airflow connection 'cin7_core_default'): {reason}; gave up after {attempts} attempt"
    )
    assert isinstance(unreachable.value.__cause__, NoAnswer)
    assert not api.answered


def test_once_the_host_answered_no_answer_is_a_glitch_retried_like_a_5xx() -> None:
    api, adapter = client(answer(200, {}), **UNREACHABLE_BUDGET)
    api.get("saleList")
    adapter.answers = [requests.ConnectTimeout("connect timed out")]
    with pytest.raises(NoAnswer) as glitch:
        api.get("saleList")
    assert isinstance(glitch.value, TransientError)
    assert len(adapter.sent) == 1 + UNREACHABLE_BUDGET["attempts"]


def test_a_reset_connection_is_transient_not_unreachable() -> None:
    reset = requests.ConnectionError(ProtocolError("Connection aborted.", ConnectionResetError(104, "reset")))
    api, adapter = client(reset, answer(200, {"ok": 1}), **UNREACHABLE_BUDGET)
    assert api.get("saleList") == {"ok": 1}
    api, adapter = client(reset, **UNREACHABLE_BUDGET)
    with pytest.raises(TransientError, match=r"^cin7: ConnectionError: "):
        api.get("saleList")
    assert len(adapter.sent) == UNREACHABLE_BUDGET["attempts"]


# --- no secret in what is raised or logged -----------------------------------------------------------------------


FAILURES = [
    answer(401, b""),
    answer(404, {"detail": "Not found."}),
    answer(400, CIN7_LIMIT_400),
    answer(500, b"", "text/plain"),
    answer(200, b"<html/>", "text/html"),
    refused(),
    requests.ConnectionError(ProtocolError("Connection aborted.", ConnectionResetError(104, "reset"))),
    requests.ReadTimeout("read timed out"),
]


@pytest.mark.parametrize("failure", FAILURES, ids=lambda f: str(getattr(f, "status_code", "") or type(f).__name__))
def test_no_failure_message_or_log_shows_the_key(failure, caplog) -> None:
    api, adapter = client(failure, attempts=2, connect_timeout=1, read_timeout=1, unreachable_budget=2)
    with caplog.at_level(logging.DEBUG), pytest.raises(Exception) as failed:
        api.get("saleList", {"Search": "RET-1"})
    assert adapter.sent[0][0].headers["api-auth-applicationkey"] == SECRET  # it was sent, in its header
    chain, error = [], failed.value
    while error is not None and len(chain) < 10:  # the error and what it was raised from (nested text)
        chain.append(f"{error!s} {error!r}")
        error = error.__cause__ or error.__context__
    told = "\n".join(chain + [record.getMessage() for record in caplog.records])
    for form in (SECRET, quote(SECRET, safe=""), quote(SECRET)):
        assert form not in told


# --- Sitoo batch answers (schemas/batchResponse.yaml): beyond tests/unit/test_posting_actions.py ------------------


def test_sitoo_batch_element_edges() -> None:
    assert bulk_element([{"statuscode": 201, "return": 9}]) == 9
    assert bulk_element([]) == []  # no element: the answer as it is (not a batch)
    assert bulk_element(["77"]) == ["77"]
    with pytest.raises(ApiError) as no_status:  # an element without a status is not a success
        bulk_element([{"return": 5}])
    assert no_status.value.status == 0
    assert not isinstance(no_status.value, TransientError)
    with pytest.raises(ApiError) as conflict:
        bulk_element([{"statuscode": 409, "return": "externalid exists"}])
    assert not isinstance(conflict.value, TransientError)
