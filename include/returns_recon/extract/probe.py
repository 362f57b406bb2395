"""Reachability: one cheap, authenticated read per API."""

from __future__ import annotations

from returns_recon.apis.errors import ApiError, AuthError
from returns_recon.extract.run import Clients

# no return has this id (ids are 32 hex digits, reveni_api.md §1 "IDs"): its 404 says the host answers and the key
# was accepted (a 401 or 403 raises AuthError); a wrong store id may answer 404 too, which the go-live check's
# get_return tells apart
NO_RETURN = "0" * 32


def probe(clients: Clients) -> dict[str, str]:
    if clients.reveni_list_endpoint:
        clients.reveni.get("returns", {"page_size": 1}, label="probe")
    else:  # no list endpoint (connection extra list_endpoint=false): the one read every account has
        try:
            clients.reveni.get(f"returns/{NO_RETURN}", label="probe")
        except AuthError:
            raise
        except ApiError as err:
            if err.status != 404:
                raise
    clients.cin7.get("ref/location", {"Page": 1, "Limit": 1}, label="probe")
    if clients.sitoo is None:
        return {"reveni": "ok", "cin7": "ok", "sitoo": "none (no stores)"}
    sitoo, site = clients.sitoo_api()
    sitoo.get(f"sites/{site}/stores.json", {"num": 1}, label="probe")
    return {"reveni": "ok", "cin7": "ok", "sitoo": "ok"}
