"""Is a webhook delivery authentic? Pure functions: no I/O, no clock (the caller passes ``now``), no Airflow.

Reveni (reference/reveni_api.md §1 "Webhooks", from reveni.readme.io/reference/security): the header
``X-REVENI-SIGNATURE: t=<timestamp>,v1=<hex>`` where ``v1`` is HMAC-SHA256 with the merchant's API key over
``f"{t}.{raw_body}"``; ``t`` may be fractional (``1654594965.749773``); schemes other than ``v1`` are to be ignored,
and the timestamp tolerance is the receiver's own. Several ``v1`` entries may be present (a key being rotated):
one match is enough. The signature is checked first, then the timestamp, so "stale" always means an authentic
delivery that is too old (a replay, or a clock off) and a forgery is always "bad_signature".

Cin7 Core (apib L27912-L27950, reference/cin7_core_api.md §4.11) signs nothing: a webhook sends the
``ExternalAuthorizationType`` it was created with, ``bearerauth`` (``Authorization: Bearer <token>``) or
``basicauth`` (``Authorization: Basic base64(user:password)``). Every secret comparison is
``hmac.compare_digest``; no message names a secret or the value received.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
from dataclasses import dataclass

SIGNATURE_HEADER = "X-REVENI-SIGNATURE"
SCHEME = "v1"
MAX_HEADER_LENGTH = 2_048  # a t= and a few v1= fit many times over
MAX_SIGNATURES = 8


class Unverified(Exception):
    """The delivery cannot be trusted; ``reason`` is what is counted (ops.webhook_rejections.reason)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True)
class Signature:
    timestamp: str  # exactly as sent: the signed message starts with it
    signed_at: float  # seconds since the epoch
    v1: tuple[str, ...]  # lower-case hex


def parse_signature_header(value: str | None) -> Signature:
    """``t=<timestamp>,v1=<hex>[,v1=<hex>...][,<other>=...]``: other schemes are ignored, ``t`` must be
    given once, at least one ``v1``. Raises Unverified(missing_signature | malformed_signature)."""
    if value is None or not value.strip():
        raise Unverified("missing_signature")
    if len(value) > MAX_HEADER_LENGTH:
        raise Unverified("malformed_signature", "header too long")
    timestamps: list[str] = []
    signatures: list[str] = []
    for part in value.split(","):
        name, sep, item = part.partition("=")
        name, item = name.strip(), item.strip()
        if not sep or not name:
            raise Unverified("malformed_signature", "an entry is not name=value")
        if name == "t":
            timestamps.append(item)
        elif name == SCHEME:
            signatures.append(item.lower())
        # any other scheme (v0, v2, ...) is ignored, as Reveni documents
    if len(timestamps) != 1:
        raise Unverified("malformed_signature", "t= must be given once")
    if not signatures:
        raise Unverified("malformed_signature", "no v1 signature")
    if len(signatures) > MAX_SIGNATURES:
        raise Unverified("malformed_signature", "too many v1 signatures")
    if not all(_is_sha256_hex(sig) for sig in signatures):
        raise Unverified("malformed_signature", "a v1 signature is not 64 hex digits")
    timestamp = timestamps[0]
    try:
        signed_at = float(timestamp)
    except ValueError:
        raise Unverified("malformed_signature", "t= is not a number") from None
    if not (math.isfinite(signed_at) and timestamp.isascii() and timestamp.replace(".", "", 1).isdigit()):
        raise Unverified("malformed_signature", "t= is not seconds since the epoch")
    return Signature(timestamp, signed_at, tuple(signatures))


def _is_sha256_hex(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)


def reveni_signature(key: str, timestamp: str, body: bytes) -> str:
    """The v1 signature Reveni computes: HMAC-SHA256(key, f"{t}.{raw_body}"), hex."""
    return hmac.new(key.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def reveni_header(key: str, timestamp: str, body: bytes) -> str:
    """The ``X-REVENI-SIGNATURE`` value for ``body`` signed at ``timestamp`` (what Reveni sends; for tests)."""
    return f"t={timestamp},{SCHEME}={reveni_signature(key, timestamp, body)}"


def verify_reveni(header: str | None, body: bytes, key: str, *, now: float, tolerance: float) -> Signature:
    """The parsed signature of an authentic, fresh delivery. Raises Unverified with reason
    missing_signature, malformed_signature, bad_signature or stale."""
    signature = parse_signature_header(header)
    expected = reveni_signature(key, signature.timestamp, body).encode()
    matched = False
    for candidate in signature.v1:  # every one compared, in constant time each
        matched |= hmac.compare_digest(expected, candidate.encode())
    if not matched:
        raise Unverified("bad_signature")
    if abs(now - signature.signed_at) > tolerance:
        raise Unverified("stale", "t= outside the tolerance")
    return signature


@dataclass(frozen=True)
class Cin7Credentials:
    """What Cin7 Core must send: ``login`` empty = bearer token ``password``; else basic auth login:password."""

    login: str
    password: str

    @property
    def scheme(self) -> str:
        return "basic" if self.login else "bearer"


def verify_cin7(authorization: str | None, credentials: Cin7Credentials) -> None:
    """Raises Unverified(missing_auth | bad_auth) unless ``authorization`` carries ``credentials``."""
    if not credentials.password:
        raise ValueError("Cin7 Core webhook credentials without a password")
    if authorization is None or not authorization.strip():
        raise Unverified("missing_auth")
    scheme, _, value = authorization.strip().partition(" ")
    value = value.strip()
    if scheme.lower() != credentials.scheme or not value:
        raise Unverified("bad_auth", f"expected {credentials.scheme} authorization")
    if credentials.scheme == "bearer":
        ok = hmac.compare_digest(value.encode(), credentials.password.encode())
    else:
        try:
            decoded = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise Unverified("bad_auth", "basic credentials are not base64") from None
        login, sep, password = decoded.partition(b":")
        # both compared whatever the first gives, so the time taken does not tell which was wrong
        ok_login = hmac.compare_digest(login, credentials.login.encode())
        ok_password = hmac.compare_digest(password, credentials.password.encode())
        ok = bool(sep) and ok_login and ok_password
    if not ok:
        raise Unverified("bad_auth")
