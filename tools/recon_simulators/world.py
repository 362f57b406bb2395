"""The simulated world: the three systems' state, the clock, and scheduled events."""

from __future__ import annotations

import bisect
import copy
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from recon_simulators.behaviour import Behaviour
from recon_simulators.cin7 import Cin7State
from recon_simulators.clock import SimClock
from recon_simulators.reveni import ReveniState
from recon_simulators.scenario import read_header_and_records
from recon_simulators.sitoo import SitooState
from recon_simulators.timefmt import require_ts
from recon_simulators.webhooks import WebhookHub


@dataclass(frozen=True)
class Credentials:
    reveni_api_key: str = "reveni-demo-api-key"
    reveni_store_id: str = "demo-store"
    cin7_account_id: str = "7d0c8c52-3f7e-4d0a-9a51-3c1b0f6a9e01"
    cin7_application_key: str = "0e9c2f4b-8a1d-4c3e-b5f6-7a8b9c0d1e2f"
    sitoo_api_id: str = "90001-1"
    sitoo_password: str = "sitoo-demo-password"
    sitoo_account_id: str = "90001"
    sitoo_site_id: int = 1


@dataclass(order=True)
class Event:
    at: datetime
    seq: int
    kind: str = field(compare=False)
    record: dict = field(compare=False)


class World:
    def __init__(self, credentials: Credentials | None = None) -> None:
        self.credentials = credentials or Credentials()
        self.clock = SimClock()
        self.behaviour = Behaviour()  # what the vendors leave undocumented (reset by every load)
        self.webhooks = WebhookHub(self)  # subscriptions outlive a load; pending deliveries do not
        self.reset()

    def reset(self) -> None:
        self.generation = getattr(self, "generation", 0) + 1  # caches keyed by it never outlive a load
        creds = self.credentials
        self.reveni = ReveniState(creds.reveni_store_id, hub=self.webhooks)
        self.cin7 = Cin7State(hub=self.webhooks, tenant_id=creds.cin7_account_id)
        self.sitoo = SitooState(creds.sitoo_account_id, creds.sitoo_site_id)
        self.location_map: list[dict] = []
        self.expected_exceptions: list[dict] = []
        self.expected_dq_warnings: list[dict] = []
        self.events: list[Event] = []
        self.header: dict = {}

    def load(self, path: Path, *, frozen_clock: bool = False) -> dict:
        """Replace the world with a scenario file; returns counts per collection."""
        self.reset()
        self.behaviour.reset()
        self.webhooks.drop_pending()
        header, records = read_header_and_records(path)
        self.header = header
        if header.get("reveni_store_id"):
            self.reveni.store_id = header["reveni_store_id"]
        counts: dict[str, int] = {}
        for kind, record in records:
            counts[kind] = counts.get(kind, 0) + 1
            if kind == "events":
                self.schedule(record["at"], record["k"], record["v"])
            else:
                self.apply(kind, record, initial=True)
        if header.get("clock"):
            self.clock.set(require_ts(header["clock"]), frozen=frozen_clock, speed=1.0)
        return counts

    def schedule(self, at: str, kind: str, record: dict) -> None:
        bisect.insort(self.events, Event(require_ts(at), len(self.events), kind, record))

    def apply(self, kind: str, record: dict, *, initial: bool = False, at: datetime | None = None) -> None:
        """Upsert one resource, as the system itself would store it."""
        touched = None if initial else (at or self.clock.now())
        if kind == "reveni.returns":
            self.reveni.upsert(record, touched_at=touched)
        elif kind == "cin7.sales":  # a scenario's stock levels already include its documents
            self.cin7.upsert_sale(record, touched_at=touched, apply_stock=not initial)
        elif kind == "cin7.products":
            self.cin7.add_product(record)
        elif kind == "cin7.locations":
            self.cin7.add_location(record)
        elif kind == "cin7.stock_transfers":
            self.cin7.add_transfer(copy.deepcopy(record), apply_stock=not initial)
        elif kind == "cin7.availability":
            self.cin7.set_stock(record["ID"], record["Location"], float(record["OnHand"]), announce=not initial)
        elif kind == "sitoo.products":
            self.sitoo.products[record["productid"]] = record
        elif kind == "sitoo.warehouses":
            self.sitoo.warehouses[record["warehouseid"]] = record
        elif kind == "sitoo.stores":
            self.sitoo.stores[record["storeid"]] = record
        elif kind == "sitoo.warehouse_items":
            self.sitoo.items[(record["warehouseid"], record["sku"])] = copy.deepcopy(record)
        elif kind == "sitoo.warehouse_transactions":
            self.sitoo.add_transaction(record, apply_stock=not initial)
        elif kind == "sitoo.orders":
            self.sitoo.add_order(record)
        elif kind == "location_map":
            self.location_map.append(record)
        elif kind == "expected_exceptions":
            self.expected_exceptions.append(record)
        elif kind == "expected_dq_warnings":
            self.expected_dq_warnings.append(record)
        else:
            raise ValueError(f"unknown resource kind {kind!r}")

    def advance(self, seconds: float) -> dict:
        """Move the clock forward and apply every event that fell due, at its own time."""
        from datetime import timedelta

        target = self.clock.now() + timedelta(seconds=seconds)
        applied = 0
        while self.events and self.events[0].at <= target:
            event = self.events.pop(0)
            self.apply(event.kind, event.record, at=event.at)
            applied += 1
        self.clock.set(target)
        return {"clock": target.isoformat(), "events_applied": applied, "events_pending": len(self.events)}
