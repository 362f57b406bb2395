"""Reachability: one cheap, authenticated read per API."""

from __future__ import annotations

from returns_recon.extract.run import Clients


def probe(clients: Clients) -> dict[str, str]:
    clients.reveni.get("returns", {"page_size": 1}, label="probe")
    clients.cin7.get("ref/location", {"Page": 1, "Limit": 1}, label="probe")
    clients.sitoo.get(f"sites/{clients.sitoo_site_id}/stores.json", {"num": 1}, label="probe")
    return {"reveni": "ok", "cin7": "ok", "sitoo": "ok"}
