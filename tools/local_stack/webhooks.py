"""`make up`: the simulators send their webhooks to the receiver the Airflow API server serves (the plugin in
plugins/, /returns-recon/webhooks/*), as a merchant registers them in Reveni and Cin7 Core (docs/webhooks.md)."""

from __future__ import annotations

import requests

from local_stack.settings import api_url, parse_connection

REVENI_EVENTS = ["return.created", "return.updated"]


def receiver_urls(env: dict[str, str]) -> dict[str, str]:
    base = f"{api_url(env)}/returns-recon/webhooks"
    return {"reveni": f"{base}/reveni", "cin7": f"{base}/cin7"}


def subscribe(env: dict[str, str]) -> dict[str, str]:
    """Replace the simulators' subscriptions with ours: Reveni signs with the store's API key; Cin7 Core sends the
    bearer token of the cin7_webhook connection. Returns the URLs subscribed."""
    admin = f"http://127.0.0.1:{env.get('SIM_REVENI_PORT', '18081')}/_sim/webhooks"
    raw_token = env.get("AIRFLOW_CONN_CIN7_WEBHOOK")
    if not raw_token:
        raise SystemExit("AIRFLOW_CONN_CIN7_WEBHOOK is not set: copy it from .env.example (the receiver's Cin7 token)")
    token = parse_connection(raw_token).password
    urls = receiver_urls(env)
    requests.delete(admin, timeout=10).raise_for_status()
    subscriptions = [
        {"service": "reveni", "url": urls["reveni"], "event_types": REVENI_EVENTS},
        {"service": "cin7", "url": urls["cin7"], "bearer_token": token},
    ]
    for body in subscriptions:
        requests.post(admin, json=body, timeout=10).raise_for_status()
    return urls
