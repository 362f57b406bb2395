"""Who may see and act in the workbench, and the CSRF guard on its forms.

Identity is Airflow's: the JWT the Airflow UI keeps in its ``_token`` cookie (or an ``Authorization: Bearer``
header), checked by Airflow's auth manager; nothing here issues or stores credentials. Permissions are the
auth manager's on the pipeline's hourly DAG (a merchants file's merchant: its own, ``returns_recon_<id>_hourly``):
reading the workbench needs read access to it, acting needs edit access (``PUT``). With the simple auth manager
that is: viewer reads; user, op and admin act. With the FAB auth manager: grant "can read" / "can edit" on
``DAG:returns_recon_hourly`` (or the merchant's) to the roles of finance and operations.

CSRF: a signed double-submit token. The page sets a random cookie (HttpOnly, SameSite=Strict, path of the
workbench) and puts HMAC(key, cookie | user) in each form; a POST authenticated by the cookie must carry the
matching token, and a cross-site ``Origin`` is refused outright. A POST authenticated by a bearer header carries
no ambient credential and needs no token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from starlette.requests import Request

AIRFLOW_COOKIE = "_token"
CSRF_COOKIE = "recon_workbench_csrf"
CSRF_FIELD = "csrf_token"


@dataclass(frozen=True)
class Person:
    """An authenticated Airflow user, as the workbench needs them."""

    name: str
    may_act: bool
    by_bearer: bool  # authenticated by a header, not the browser's cookie


class NotAuthenticated(Exception):
    """No valid Airflow credential on the request."""


class Forbidden(Exception):
    """Authenticated, but not allowed to read the workbench."""


class Gatekeeper(Protocol):
    async def person(self, request: Request, dag_id: str) -> Person:
        """The request's user, by their permissions on ``dag_id`` (the merchant's hourly DAG), or
        ``NotAuthenticated`` / ``Forbidden``."""
        ...

    def login_url(self, next_url: str) -> str: ...

    def csrf_key(self) -> bytes: ...


def _bearer(request: Request) -> str | None:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    return credentials.strip() or None if scheme.lower() == "bearer" else None


class AirflowGatekeeper:
    """Airflow's auth manager, as the API server that mounts the workbench has it configured."""

    def __init__(self) -> None:
        self._key: bytes | None = None

    async def person(self, request: Request, dag_id: str) -> Person:
        from airflow.api_fastapi.app import get_auth_manager
        from airflow.api_fastapi.auth.managers.models.resource_details import DagDetails
        from fastapi import HTTPException

        bearer = _bearer(request)
        token = bearer or request.cookies.get(AIRFLOW_COOKIE)
        if not token:
            raise NotAuthenticated
        manager = get_auth_manager()
        try:
            from airflow.api_fastapi.core_api.security import resolve_user_from_token

            user = await resolve_user_from_token(token)
        except HTTPException as err:  # expired, malformed or revoked
            raise NotAuthenticated from err
        details = DagDetails(id=dag_id)
        if not manager.is_authorized_dag(method="GET", user=user, details=details):
            raise Forbidden
        may_act = manager.is_authorized_dag(method="PUT", user=user, details=details)
        return Person(name=user.get_name(), may_act=may_act, by_bearer=bearer is not None)

    def login_url(self, next_url: str) -> str:
        from airflow.api_fastapi.app import get_auth_manager

        return get_auth_manager().get_url_login(next_url=next_url)

    def csrf_key(self) -> bytes:
        if self._key is None:
            from airflow.api_fastapi.auth.tokens import get_signing_key

            # the API server's own secret (the same on every API server of a deployment), kept apart by a label
            secret = get_signing_key("api", "secret_key").encode()
            self._key = hmac.new(secret, b"returns-recon workbench csrf", hashlib.sha256).digest()
        return self._key


def new_csrf_cookie() -> str:
    return secrets.token_urlsafe(32)


def csrf_token(key: bytes, cookie: str, person: Person) -> str:
    return hmac.new(key, f"{cookie}|{person.name}".encode(), hashlib.sha256).hexdigest()


def same_origin(request: Request) -> bool:
    """No ``Origin`` (an old browser, a same-origin form in some browsers), or the request's own host."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == request.headers.get("host", "")


def csrf_ok(request: Request, key: bytes, person: Person, submitted: str | None) -> bool:
    if person.by_bearer:
        return True
    if not same_origin(request):
        return False
    cookie = request.cookies.get(CSRF_COOKIE)
    if not cookie or not submitted:
        return False
    return hmac.compare_digest(csrf_token(key, cookie, person), submitted)
