"""Is a webhook delivery authentic (returns_recon.webhooks.verify): Reveni's X-REVENI-SIGNATURE (HMAC-SHA256 of
f"{t}.{raw_body}" with the API key, reference/reveni_api.md §1) and Cin7 Core's bearer or basic credentials."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from returns_recon.webhooks import verify
from returns_recon.webhooks.verify import Cin7Credentials, Unverified, verify_cin7, verify_reveni

pytestmark = pytest.mark.unit

KEY = "reveni-test-api-key"
NOW = 1_717_172_400.0
BODY = json.dumps(
    {
        "id": "c6927a921708466da5ed2b4ebadf0bdf",
        "event": "return.updated",
        "created": 1717172400,
        "data": {"resource": "return", "resource_id": "4e26c9f08f2a468fabc16af12ae0209b", "object": {}},
    }
).encode()


def signed(body: bytes = BODY, t: str = "1717172400", key: str = KEY) -> str:
    """Written out independently of the module: HMAC-SHA256(key, "t.body"), hex."""
    return f"t={t},v1=" + hmac.new(key.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()


def check(header: str | None, body: bytes = BODY, now: float = NOW, tolerance: float = 300) -> verify.Signature:
    return verify_reveni(header, body, KEY, now=now, tolerance=tolerance)


def reason(header: str | None, **kwargs) -> str:
    with pytest.raises(Unverified) as excinfo:
        check(header, **kwargs)
    return excinfo.value.reason


def test_a_valid_signature_is_accepted() -> None:
    signature = check(signed())
    assert signature.signed_at == NOW
    assert signature.timestamp == "1717172400"
    assert verify.reveni_header(KEY, "1717172400", BODY) == signed()


def test_the_documented_fractional_timestamp_is_signed_as_sent() -> None:
    """t=1654594965.749773 (Reveni's own example): the message starts with the text of t, not a re-formatted float."""
    t = "1717172400.749770"  # float() would print 1717172400.74977
    assert str(float(t)) != t
    signature = check(signed(t=t))
    assert signature.signed_at == pytest.approx(NOW + 0.74977)
    assert reason(signed(t=t).replace(t, str(float(t)), 1)) == "bad_signature"


@pytest.mark.parametrize(
    ("header", "why"),
    [
        (signed(key="another-key"), "another key"),
        (signed(body=BODY + b" "), "another body"),
        (signed().replace("t=1717172400", "t=1717172401"), "t changed after signing"),
        ("t=1717172400,v1=" + "0" * 64, "zeros"),
    ],
)
def test_a_wrong_signature_is_refused(header: str, why: str) -> None:
    assert reason(header) == "bad_signature", why


def test_the_body_is_the_raw_bytes_not_reencoded_json() -> None:
    reencoded = json.dumps(json.loads(BODY), separators=(",", ":")).encode()
    assert reencoded != BODY
    assert reason(signed(), body=reencoded) == "bad_signature"


@pytest.mark.parametrize("offset", [-301, 301, -86_400, 86_400])
def test_a_stale_or_future_timestamp_is_refused_after_the_signature(offset: float) -> None:
    t = str(int(NOW + offset))
    assert reason(signed(t=t)) == "stale"
    # a forgery with an old t is a bad signature, not "stale": stale means authentic but too old (a replay)
    assert reason(f"t={t},v1=" + "a" * 64) == "bad_signature"


@pytest.mark.parametrize("offset", [-300, 0, 299.5, 300])
def test_within_the_tolerance_either_way_is_fresh(offset: float) -> None:
    t = repr(NOW + offset)
    assert check(signed(t=t)).signed_at == NOW + offset


def test_other_schemes_are_ignored_and_any_v1_may_match() -> None:
    good = signed().split(",v1=")[1]
    t = "t=1717172400"
    assert check(f"{t},v0=deadbeef,v1={good},v2=whatever").signed_at == NOW
    assert check(f"v0=nothex, {t} , v1={'b' * 64},v1={good.upper()}").signed_at == NOW  # spaces, case, rotation
    assert reason(f"{t},v0={good}") == "malformed_signature"  # the right HMAC under another scheme is not v1
    assert reason(f"{t},v2={good},v1={'c' * 64}") == "bad_signature"


@pytest.mark.parametrize("header", [None, "", "   "])
def test_a_missing_header_is_refused(header: str | None) -> None:
    assert reason(header) == "missing_signature"


@pytest.mark.parametrize(
    "header",
    [
        "garbage",
        "t=1717172400",  # no v1
        "v1=" + "a" * 64,  # no t
        "t=1717172400,t=1717172400,v1=" + "a" * 64,  # t twice
        "t=,v1=" + "a" * 64,
        "t=abc,v1=" + "a" * 64,
        "t=nan,v1=" + "a" * 64,
        "t=inf,v1=" + "a" * 64,
        "t=-1717172400,v1=" + "a" * 64,
        "t=1.7e9,v1=" + "a" * 64,
        "t=１７１７１７２４００,v1=" + "a" * 64,  # full-width digits, which float() reads
        "t=1717172400,v1=xyz",
        "t=1717172400,v1=" + "a" * 63,
        "t=1717172400,=x,v1=" + "a" * 64,
        "t=1717172400," + ",".join(["v1=" + "a" * 64] * 9),
        "t=1717172400,v1=" + "a" * 64 + ",v0=" + "x" * 3000,
    ],
)
def test_a_malformed_header_is_refused(header: str) -> None:
    assert reason(header) == "malformed_signature"


def test_the_signature_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    compare = hmac.compare_digest

    def recording(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return compare(a, b)

    monkeypatch.setattr(verify.hmac, "compare_digest", recording)
    good = signed().split(",v1=")[1]
    check(f"t=1717172400,v1={'d' * 64},v1={good}")
    assert [b for _, b in calls] == [b"d" * 64, good.encode()], "every v1 compared with compare_digest"
    calls.clear()
    assert reason(f"t=1717172400,v1={good},v1={'e' * 64}".replace(good, "f" * 64)) == "bad_signature"
    assert len(calls) == 2


def test_no_refusal_names_the_key_or_the_signature() -> None:
    good = signed().split(",v1=")[1]
    for header in (signed(key="other"), signed(t="1"), "t=x,v1=" + good):
        with pytest.raises(Unverified) as excinfo:
            check(header)
        assert KEY not in str(excinfo.value)
        assert good not in str(excinfo.value)


# --- Cin7 Core: bearer or basic, as the webhook was created (ExternalAuthorizationType) ---------------------

TOKEN = "cin7-test-webhook-token"
BEARER = Cin7Credentials("", TOKEN)
BASIC = Cin7Credentials("cin7hooks", "basic-secret-pw")


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def cin7_reason(header: str | None, credentials: Cin7Credentials) -> str:
    with pytest.raises(Unverified) as excinfo:
        verify_cin7(header, credentials)
    assert TOKEN not in str(excinfo.value)
    assert BASIC.password not in str(excinfo.value)
    return excinfo.value.reason


def test_cin7_bearer_and_basic_are_accepted() -> None:
    verify_cin7(f"Bearer {TOKEN}", BEARER)
    verify_cin7(f"bearer  {TOKEN} ", BEARER)
    verify_cin7(basic("cin7hooks", "basic-secret-pw"), BASIC)
    verify_cin7(
        basic("cin7hooks", "pw:with:colons").replace("Basic", "basic"), Cin7Credentials("cin7hooks", "pw:with:colons")
    )


@pytest.mark.parametrize(
    ("header", "credentials", "expected"),
    [
        (None, BEARER, "missing_auth"),
        ("", BEARER, "missing_auth"),
        ("Bearer", BEARER, "bad_auth"),
        ("Bearer wrong-token", BEARER, "bad_auth"),
        (f"Bearer {TOKEN}x", BEARER, "bad_auth"),
        (f"Token {TOKEN}", BEARER, "bad_auth"),
        (basic("", TOKEN), BEARER, "bad_auth"),  # basic where bearer is configured
        (f"Bearer {BASIC.password}", BASIC, "bad_auth"),  # bearer where basic is configured
        (basic("cin7hooks", "wrong"), BASIC, "bad_auth"),
        (basic("someone", "basic-secret-pw"), BASIC, "bad_auth"),
        ("Basic " + base64.b64encode(b"cin7hooksbasic-secret-pw").decode(), BASIC, "bad_auth"),  # no colon
        ("Basic not*base64", BASIC, "bad_auth"),
    ],
)
def test_cin7_wrong_or_missing_credentials_are_refused(header, credentials, expected) -> None:
    assert cin7_reason(header, credentials) == expected


def test_cin7_credentials_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    compare = hmac.compare_digest

    def recording(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return compare(a, b)

    monkeypatch.setattr(verify.hmac, "compare_digest", recording)
    verify_cin7(f"Bearer {TOKEN}", BEARER)
    assert calls == [(TOKEN.encode(), TOKEN.encode())]
    calls.clear()
    assert cin7_reason(basic("nobody", "basic-secret-pw"), BASIC) == "bad_auth"
    assert len(calls) == 2, "login and password both compared, whichever is wrong"


def test_cin7_without_a_configured_password_never_accepts() -> None:
    with pytest.raises(ValueError, match="without a password"):
        verify_cin7("Bearer ", Cin7Credentials("", ""))
