"""Extraction per system, and all of one run in dependency order (``extract_all``: benchmarks and some
tests). The DAGs run one task per system, each through ``returns_recon.steps``, which decides per task
whether to load reference data."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from returns_recon.apis.client import ApiClient
from returns_recon.errors import NoSitoo
from returns_recon.extract import entities
from returns_recon.extract.entities import ExtractSummary, Mode
from returns_recon.settings import ReconSettings


@dataclass
class Clients:
    reveni: ApiClient
    cin7: ApiClient
    sitoo: ApiClient | None  # None: a merchant without stores (no Sitoo connection)
    sitoo_site_id: int | None
    # whether the Reveni account has the paged GET returns (connection extra list_endpoint, default true)
    reveni_list_endpoint: bool = True

    def sitoo_api(self) -> tuple[ApiClient, int]:
        """Sitoo's client and site id; ``NoSitoo`` for a merchant without stores."""
        if self.sitoo is None or self.sitoo_site_id is None:
            raise NoSitoo("this merchant has no Sitoo connection (no stores): nothing is read from or sent to Sitoo")
        return self.sitoo, self.sitoo_site_id


def extract_reveni(
    conn: psycopg.Connection, clients: Clients, run_id: str, mode: Mode, settings: ReconSettings
) -> list[ExtractSummary]:
    """The returns changed in the window through the paged list; without one (``reveni_list_endpoint`` false),
    the returns not yet final and those the webhooks named, each by ``GET returns/{id}``."""
    if not clients.reveni_list_endpoint:
        return [entities.extract_reveni_returns_by_id(conn, clients.reveni, run_id, settings)]
    return [entities.extract_reveni_returns(conn, clients.reveni, run_id, mode, settings)]


def extract_cin7(
    conn: psycopg.Connection, clients: Clients, run_id: str, mode: Mode, settings: ReconSettings, reference: bool
) -> list[ExtractSummary]:
    summaries = entities.extract_cin7_reference(conn, clients.cin7, run_id) if reference else []
    summaries.append(entities.extract_cin7_sales(conn, clients.cin7, run_id, mode, settings))
    summaries.append(entities.extract_cin7_credit_note_list(conn, clients.cin7, run_id, mode, settings))
    summaries.append(entities.extract_cin7_transfers(conn, clients.cin7, run_id, mode, settings))
    return summaries


def extract_sitoo(
    conn: psycopg.Connection, clients: Clients, run_id: str, mode: Mode, settings: ReconSettings, reference: bool
) -> list[ExtractSummary]:
    if clients.sitoo is None:  # a merchant without stores: its returns have no Sitoo leg
        return []
    sitoo, site = clients.sitoo_api()
    summaries = entities.extract_sitoo_reference(conn, sitoo, run_id, site) if reference else []
    summaries.append(entities.extract_sitoo_orders(conn, sitoo, run_id, mode, settings))
    summaries.append(entities.extract_sitoo_transactions(conn, sitoo, run_id, mode, settings, site))
    return summaries


def extract_all(
    conn: psycopg.Connection, clients: Clients, run_id: str, mode: Mode, settings: ReconSettings
) -> list[ExtractSummary]:
    """Reveni first: the Cin7 sale details to fetch depend on which orders have returns."""
    reference = mode == "daily" or not entities.reference_loaded(conn)
    return [
        *extract_reveni(conn, clients, run_id, mode, settings),
        *extract_cin7(conn, clients, run_id, mode, settings, reference),
        *extract_sitoo(conn, clients, run_id, mode, settings, reference),
    ]
