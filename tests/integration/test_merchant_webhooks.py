"""With a merchants file the receiver has URLs per merchant whose events are on (issue 22): each verifies with
that merchant's Reveni key and stores into that merchant's warehouse; the single merchant's URLs and a merchant
without events answer 404."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from returns_recon.merchants import parse_merchants
from returns_recon.settings import ReconSettings
from returns_recon.webhooks.app import create_app
from tests.fixtures.warehouse import TestDatabase as Database
from tests.fixtures.warehouse import new_database
from tests.integration.test_webhook_receiver import reveni_event, sign

pytestmark = pytest.mark.integration

MERCHANTS = """
merchants:
  - id: north
    connections: {warehouse: wh_north, reveni: reveni_north, cin7: cin7_north}
    location_map: map.csv
    events: true
  - id: south
    connections: {warehouse: wh_south, reveni: reveni_south, cin7: cin7_south}
    location_map: map.csv
"""


@dataclass
class Conn:
    password: str
    login: str = ""
    extra_dejson: dict = field(default_factory=dict)


KEYS = {"reveni_north": "north-api-key", "reveni_south": "south-api-key"}


@pytest.fixture
def client(embedded_server, tmp_path: Path) -> Iterator[tuple[TestClient, Database, Database]]:
    merchants = parse_merchants(MERCHANTS, base_dir=tmp_path)
    with new_database(embedded_server, migrated=True) as north, new_database(embedded_server, migrated=True) as south:
        urls = {"north": north.url, "south": south.url}
        app = create_app(
            settings=ReconSettings(),
            lookup=lambda conn_id: Conn(KEYS[conn_id]) if conn_id in KEYS else None,
            merchants=lambda: merchants,
            merchant_dsn=lambda m: lambda: urls[m.id],
        )
        with TestClient(app) as http:
            yield http, north, south


def count(db: Database, query: str) -> int:
    with psycopg.connect(db.url) as conn:
        return conn.execute(query).fetchone()[0]


def test_each_merchant_with_events_has_its_own_urls_key_and_warehouse(client) -> None:
    http, north, south = client
    body = reveni_event()
    good = http.post("/webhooks/north/reveni", content=body, headers=sign(body, key="north-api-key"))
    assert good.status_code == 200, good.text
    assert good.json() == {"accepted": True, "duplicate": False}
    assert count(north, "SELECT count(*) FROM raw.webhook_inbox") == 1
    assert count(south, "SELECT count(*) FROM raw.webhook_inbox") == 0

    # another merchant's key does not open North's door; the refusal is counted in North's warehouse
    other = http.post("/webhooks/north/reveni", content=body, headers=sign(body, key="south-api-key"))
    assert other.status_code == 401
    assert count(north, "SELECT coalesce(sum(rejected), 0) FROM ops.webhook_rejections") == 1

    # no receiver for a merchant without events, an unknown one, or the single merchant's URL
    for path in ("/webhooks/south/reveni", "/webhooks/nowhere/reveni", "/webhooks/reveni", "/webhooks/cin7"):
        assert http.post(path, content=body, headers=sign(body, key="south-api-key")).status_code == 404, path
    assert count(south, "SELECT count(*) FROM raw.webhook_inbox") == 0
