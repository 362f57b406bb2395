"""Links into the exception workbench, for the daily exception mails (``notify/digest.py``): every exception line
links to its page, the footer to the owner's queue.

The base is ``RECON_WORKBENCH_URL`` (``ReconSettings.workbench_url``) when set, else Airflow's own ``[api] base_url``
followed by the plugin's path (``/returns-recon-workbench``), read when the mail task runs; with neither, the mails
carry no links. Nothing here imports Airflow at import time (nor FastAPI: the app is ``workbench/app.py``).
"""

from __future__ import annotations

import logging
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

log = logging.getLogger(__name__)

# where the plugin mounts the workbench under Airflow's API server (``workbench.app.URL_PREFIX``)
WORKBENCH_PATH = "/returns-recon-workbench"
# characters a URL never carries unencoded (RFC 3986): a base with one is refused, not escaped
UNSAFE = frozenset('"<>`{}|\\^')


def redacted(url: str) -> str:
    """``url`` as an error message may show it: its login, password, query and fragment replaced by ``***``."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return "<not a URL>"
    host = parts.netloc.rpartition("@")[2]
    netloc = f"***@{host}" if "@" in parts.netloc else host
    return urlunsplit((parts.scheme, netloc, parts.path, "***" if parts.query else "", "***" if parts.fragment else ""))


def checked_base(url: str) -> str:
    """``url`` as the base of the workbench's links: an absolute http(s) URL with a host, without login,
    password, query or fragment, its trailing slashes stripped; ``''`` stays ``''`` (no links). ``ValueError``
    saying what is wrong otherwise (never repeating the URL: it could carry a secret)."""
    text = url.strip()
    if not text:
        return ""
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 or ch in UNSAFE for ch in text):
        raise ValueError('must be a URL without spaces, control characters or any of " < > ` { } | \\ ^')
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018  (a port that is not a number raises here)
    except ValueError as err:
        raise ValueError(f"is not a URL ({err})") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an absolute http:// or https:// URL with a host, e.g. https://airflow.example.com")
    if "@" in parts.netloc:
        raise ValueError("must not carry a login or password (the workbench uses Airflow's own login)")
    if parts.query or parts.fragment or text.endswith(("?", "#")):
        raise ValueError("must not carry a query or fragment (?… or #…)")
    return text.rstrip("/")


def _airflow_base_url() -> str:
    """Airflow's ``[api] base_url`` (empty when unset, or without Airflow)."""
    try:
        from airflow.configuration import conf
    except ImportError:
        return ""
    return str(conf.get("api", "base_url", fallback="") or "")


def workbench_base(configured: str = "") -> str:
    """The workbench's address the mails link to: ``configured`` (``RECON_WORKBENCH_URL``) when set, else
    Airflow's ``[api] base_url`` + ``/returns-recon-workbench``, else ``''`` (the mails carry no links). Call it
    when the task runs: Airflow's configuration is read then, not at import. An Airflow base URL that is not a
    plain http(s) URL gives no links (and a warning), rather than broken ones."""
    if configured.strip():
        return checked_base(configured)
    airflow_url = _airflow_base_url()
    if not airflow_url.strip():
        return ""
    try:
        return checked_base(airflow_url) + WORKBENCH_PATH
    except ValueError as err:
        log.warning(
            "Airflow's [api] base_url %s %s: the exception mails carry no workbench links (set RECON_WORKBENCH_URL)",
            redacted(airflow_url),
            err,
        )
        return ""


def exception_url(base: str, key: str, merchant: str = "") -> str:
    """The page of the exception ``key`` (the key URL-quoted whole, ``/`` included), of ``merchant`` when a
    merchants file names it; ``''`` without a base."""
    if not base:
        return ""
    return f"{base}/exceptions/{quote(key, safe='')}" + (f"?{urlencode({'merchant': merchant})}" if merchant else "")


def queue_url(base: str, owner: str, merchant: str = "") -> str:
    """The queue filtered by ``owner`` (of ``merchant``); ``''`` without a base."""
    query = {"merchant": merchant, "owner": owner} if merchant else {"owner": owner}
    return f"{base}/?{urlencode(query)}" if base else ""
