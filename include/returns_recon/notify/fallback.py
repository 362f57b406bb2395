"""The second alert channel, used when mail is what is down: the http provider's ``HttpNotifier`` posting
a small JSON alert through the Airflow connection named by ``RECON_ALERT_FALLBACK_CONN_ID`` (empty: no
fallback). The webhook's address and credentials live in that connection only, never in code.

The payload carries the alert's text and a few identifiers (event, DAG, run, task); every value is
scrubbed of the passwords of the pipeline's connections before it leaves, and a failure of the fallback
is logged without the webhook's address (its path is often the secret, as in Slack's webhooks).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any

log = logging.getLogger(__name__)

# C0 and C1 control characters, and the bidirectional overrides and isolates (a value must not forge
# a header, a line of a plain-text part, or reorder what a reader sees)
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]+")


def one_line(value: Any, limit: int | None = None) -> str:
    """``value`` as one printable line: control characters become a space; cut to ``limit`` characters."""
    text = _CONTROL.sub(" ", str(value))
    return text if limit is None or len(text) <= limit else text[: limit - 1] + "…"


def connection_secrets(conn_ids: Iterable[str]) -> list[str]:
    """The passwords of these connections (and a host that is a whole URL: a webhook's path is often its
    secret), to scrub from alerts."""
    from returns_recon.orchestration.connections import lookup_connection

    secrets: list[str] = []
    for conn_id in conn_ids:
        try:
            conn = lookup_connection(conn_id)
        except Exception:  # a broken secrets backend must not stop an alert
            conn = None
        if conn is None:
            continue
        secrets += [conn.password] if conn.password else []
        secrets += [conn.host] if conn.host and "://" in conn.host else []
    return secrets


def redact(text: str, secrets: Iterable[str]) -> str:
    for secret in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def _known_secrets(fallback_conn_id: str) -> list[str]:
    from returns_recon.connections import ALL_CONNECTIONS, OPTIONAL_CONNECTIONS

    return connection_secrets([c.conn_id for c in (*ALL_CONNECTIONS, *OPTIONAL_CONNECTIONS)] + [fallback_conn_id])


def _why(exc: BaseException) -> str:
    """What went wrong with the fallback, without the URL (requests puts it in its messages)."""
    import requests

    if isinstance(exc, requests.RequestException):
        status = getattr(getattr(exc, "response", None), "status_code", None)
        return type(exc).__name__ + (f" (HTTP {status})" if status else "")
    return f"{type(exc).__name__}: {one_line(exc, 300)}"


def fallback_conn_id() -> str:
    from returns_recon.settings import load_settings

    return load_settings().alert_fallback_conn_id.strip()


def send_fallback(event: str, text: str, **fields: Any) -> bool:
    """Post one alert through the fallback connection; True when it was accepted. Never raises: it runs
    in failure paths (callbacks, a task already failing) whose own error must stay the one reported."""
    conn_id = fallback_conn_id()
    if not conn_id:
        log.error(
            "alert %s not delivered by mail and no fallback channel is configured (RECON_ALERT_FALLBACK_CONN_ID): %s",
            event,
            one_line(text, 500),
        )
        return False
    from airflow.providers.http.notifications import HttpNotifier

    from returns_recon.orchestration.connections import lookup_connection

    try:
        conn = lookup_connection(conn_id)
    except Exception as exc:
        log.error("fallback alert connection %r could not be read: %s", conn_id, type(exc).__name__)
        return False
    if conn is None:
        log.error(
            "fallback alert connection %r is not defined (set AIRFLOW_CONN_%s): alert %s not delivered",
            conn_id,
            conn_id.upper(),
            event,
        )
        return False
    secrets = _known_secrets(conn_id)
    payload = {"text": redact(text, secrets), "event": event, "source": "returns_recon"}
    # scrubbed before it is cut: a secret across the limit would otherwise keep its start
    payload.update({k: one_line(redact(str(v), secrets), 500) for k, v in fields.items() if v is not None})
    timeout = conn.extra_dejson.get("timeout", 15)
    notifier = HttpNotifier(http_conn_id=conn_id, method="POST", json=payload, extra_options={"timeout": timeout})
    try:
        # notify(), not notifier(context): the call form renders the payload as a Jinja template, and an
        # error message quoting "{{ ... }}" must be sent as text, not evaluated
        notifier.notify({})
    except Exception as exc:
        log.error("fallback alert %s through connection %r failed: %s", event, conn_id, _why(exc))
        return False
    log.warning("alert %s sent through the fallback connection %r", event, conn_id)
    return True
