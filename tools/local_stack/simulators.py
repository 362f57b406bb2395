"""The simulators as a separate process on free loopback ports, and a small client for their
control surface (load, faults, clock, counters) and for the demo credentials. Used by the tests
and the benchmarks; the pipeline never imports it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import requests

from recon_simulators.world import Credentials

ROOT = Path(__file__).resolve().parents[2]
CREDS = Credentials()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Simulators:
    reveni_port: int
    cin7_port: int
    sitoo_port: int

    @property
    def reveni(self) -> str:
        return f"http://127.0.0.1:{self.reveni_port}/merchants/v0/stores/{CREDS.reveni_store_id}"

    @property
    def cin7(self) -> str:
        return f"http://127.0.0.1:{self.cin7_port}/ExternalApi/v2"

    @property
    def sitoo(self) -> str:
        return f"http://127.0.0.1:{self.sitoo_port}/v2/accounts/{CREDS.sitoo_account_id}"

    @property
    def sitoo_site(self) -> str:
        return f"{self.sitoo}/sites/{CREDS.sitoo_site_id}"

    @property
    def admin(self) -> str:
        return f"http://127.0.0.1:{self.reveni_port}/_sim"

    # --- sessions with the demo credentials ---
    def reveni_session(self) -> requests.Session:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {CREDS.reveni_api_key}"
        return session

    def cin7_session(self) -> requests.Session:
        session = requests.Session()
        session.headers["api-auth-accountid"] = CREDS.cin7_account_id
        session.headers["api-auth-applicationkey"] = CREDS.cin7_application_key
        return session

    def sitoo_session(self) -> requests.Session:
        session = requests.Session()
        session.auth = (CREDS.sitoo_api_id, CREDS.sitoo_password)
        return session

    # --- documents, read and written through the services' public endpoints (as a person would) ---
    def credit_notes(self, sale_id: str) -> list[dict]:
        """The sale's credit notes as ``GET /sale`` serves them (with their totals, apib L30739)."""
        response = self.cin7_session().get(f"{self.cin7}/sale", params={"ID": sale_id}, timeout=30)
        response.raise_for_status()
        return response.json().get("CreditNotes") or []

    def transfers(self) -> list[dict]:
        """Every stock transfer (``stockTransferList`` does not search ``Reference``, apib L26299)."""
        rows, page = [], 1
        while True:
            response = self.cin7_session().get(
                f"{self.cin7}/stockTransferList", params={"Page": page, "Limit": 1000}, timeout=30
            )
            response.raise_for_status()
            batch = response.json()["StockTransferList"]
            rows += batch
            if len(batch) < 1000:
                return rows
            page += 1

    def sitoo_transactions(self) -> list[dict]:
        response = self.sitoo_session().get(
            f"{self.sitoo_site}/warehousetransactions.json", params={"num": 100_000}, timeout=30
        )
        response.raise_for_status()
        return response.json()["items"]

    def sitoo_orders(self, external_id: str) -> list[dict]:
        response = self.sitoo_session().get(f"{self.sitoo}/orders.json", params={"externalid": external_id}, timeout=30)
        response.raise_for_status()
        return response.json()["items"]

    def documents(self, action: str, payload: dict) -> list[dict]:
        """The documents carrying a posting's own reference, read from the services: the sale's credit
        notes with its memo (not voided), the transfers with its reference, the Sitoo transactions or
        refund orders with its ``externalid``."""
        if action == "create_credit_note":
            notes = self.credit_notes(payload["SaleID"])
            return [n for n in notes if n.get("Memo") == payload["Memo"] and n.get("Status") != "VOIDED"]
        if action.startswith("transfer"):
            return [t for t in self.transfers() if t.get("Reference") == payload["Reference"]]
        if action == "sitoo_store_stock":
            return [t for t in self.sitoo_transactions() if t.get("externalid") == payload["externalid"]]
        return self.sitoo_orders(payload["externalid"])

    def by_hand(self, service: str, path: str, body: object) -> object:
        """POST ``body`` to a public endpoint with the account's own credentials, as a person using the
        service (or its UI) would; the answer's JSON, or an error unless it succeeded."""
        if service == "cin7":
            session, base = self.cin7_session(), self.cin7
        elif service == "sitoo":
            session, base = self.sitoo_session(), self.sitoo_site
        else:
            raise ValueError(f"no writes by hand to {service}")
        response = session.post(f"{base}/{path}", json=body, timeout=30)
        if response.status_code != 200:
            raise RuntimeError(
                f"{service} {path} refused the document made by hand: {response.status_code} {response.text[:300]}"
            )
        return response.json()

    # --- control surface ---
    def load(self, path: Path, frozen: bool = False) -> dict:
        response = requests.post(f"{self.admin}/load", json={"path": str(path), "frozen": frozen}, timeout=600)
        response.raise_for_status()
        self.faults("reveni")
        self.faults("cin7", rate_limit_per_minute=None)
        self.faults("sitoo")
        return response.json()

    def faults(self, service: str, **config) -> dict:
        response = requests.post(f"{self.admin}/faults/{service}", json=config, timeout=10)
        response.raise_for_status()
        return response.json()

    def counters(self, reset: bool = False) -> dict:
        call = requests.post if reset else requests.get
        response = call(f"{self.admin}/counters", timeout=10)
        response.raise_for_status()
        return response.json()

    def advance(self, **delta) -> dict:
        response = requests.post(f"{self.admin}/advance", json=delta, timeout=60)
        response.raise_for_status()
        return response.json()

    def upsert(self, kind: str, record: dict, at: str | None = None) -> None:
        body = {"kind": kind, "record": record, "at": at}
        requests.post(f"{self.admin}/upsert", json=body, timeout=10).raise_for_status()

    def clock(self, **body) -> dict:
        response = requests.post(f"{self.admin}/clock", json=body, timeout=10)
        response.raise_for_status()
        return response.json()

    # --- request/response journal (contract tests) ---
    def journal(self, enabled: bool | None = None, clear: bool = False) -> dict:
        """Switch the journal on/off and/or clear it; returns its status."""
        body: dict = {"clear": clear}
        if enabled is not None:
            body["enabled"] = enabled
        response = requests.post(f"{self.admin}/journal", json=body, timeout=10)
        response.raise_for_status()
        return response.json()

    def journal_records(self) -> list[dict]:
        """Every record captured since the journal was last cleared (oldest first)."""
        response = requests.get(f"{self.admin}/journal", timeout=120)
        response.raise_for_status()
        return response.json()["records"]

    def env(self, cin7_calls_per_minute: int = 100_000) -> dict[str, str]:
        """AIRFLOW_CONN_* variables pointing the pipeline's connections at these simulators."""
        return {
            "AIRFLOW_CONN_REVENI_DEFAULT": json.dumps(
                {
                    "conn_type": "http",
                    "host": "127.0.0.1",
                    "port": self.reveni_port,
                    "schema": "http",
                    "password": CREDS.reveni_api_key,
                    "extra": {"store_id": CREDS.reveni_store_id},
                }
            ),
            "AIRFLOW_CONN_CIN7_CORE_DEFAULT": json.dumps(
                {
                    "conn_type": "http",
                    "host": "127.0.0.1",
                    "port": self.cin7_port,
                    "schema": "http",
                    "login": CREDS.cin7_account_id,
                    "password": CREDS.cin7_application_key,
                    "extra": {"calls_per_minute": cin7_calls_per_minute},
                }
            ),
            "AIRFLOW_CONN_SITOO_DEFAULT": json.dumps(
                {
                    "conn_type": "http",
                    "host": "127.0.0.1",
                    "port": self.sitoo_port,
                    "schema": "http",
                    "login": CREDS.sitoo_api_id,
                    "password": CREDS.sitoo_password,
                    "extra": {"account_id": CREDS.sitoo_account_id, "site_id": CREDS.sitoo_site_id},
                }
            ),
        }


def start_simulators(log: IO[bytes]) -> tuple[Simulators, subprocess.Popen]:
    """Start the simulators on free ports (bound to 127.0.0.1), logging to ``log``; wait until healthy."""
    sims = Simulators(free_port(), free_port(), free_port())
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [
        sys.executable,
        "-m",
        "recon_simulators",
        "--reveni-port",
        str(sims.reveni_port),
        "--cin7-port",
        str(sims.cin7_port),
        "--sitoo-port",
        str(sims.sitoo_port),
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603 (our own module)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{sims.admin}/health", timeout=1).ok:
                return sims, proc
        except requests.ConnectionError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"simulators did not start; see {getattr(log, 'name', 'the log')}")


def stop_simulators(proc: subprocess.Popen) -> None:
    proc.terminate()
    proc.wait(10)
