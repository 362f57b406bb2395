"""Change detection does not depend on timestamps cut to the second.

Cin7 Core serves ``Updated`` / ``LastModifiedOn`` with 0 to 7 fractional digits (apib L20496, L26330: a
sale may carry whole seconds only). A sale changed twice within one second, our read falling between the
two changes, shows the same timestamp after the second change as after the first: the next run must
read it again (the watermark's second is re-read, ``>=``), and a record re-read unchanged must cost no
change (content hash) and no call in an idle run."""

from __future__ import annotations

import copy
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from recon_simulators.timefmt import cin7_ts
from returns_recon.extract.run import extract_all
from returns_recon.settings import ReconSettings
from tests.fixtures.scenarios import scenario

pytestmark = pytest.mark.integration

# one page of each incremental list: Reveni returns, Cin7 Core saleList, saleCreditNoteList and
# stockTransferList (no change filter: read whole), Sitoo orders and warehouse transactions
IDLE_CALLS = 6


@pytest.fixture(scope="module")
def quiet_scenario(tmp_path_factory) -> Path:
    """60 returns and no scheduled events: between runs only what a test changes changes."""
    return scenario(tmp_path_factory.mktemp("quiet"), 1616, returns=60, event_fraction=0.0)


def extract(db, clients, run_id: str, settings: ReconSettings) -> dict:
    with psycopg.connect(db.url, autocommit=True) as conn:
        return {(s.source, s.entity): s for s in extract_all(conn, clients, run_id, "hourly", settings)}


def calls(summaries: dict) -> int:
    return sum(s.api_calls for s in summaries.values())


def second_precision_related_sale(path: Path, at: datetime) -> dict:
    """A sale of a return whose timestamps Cin7 Core serves to the whole second."""
    document = json.loads(path.read_text())
    orders = {r["order"]["external_id"] for r in document["reveni"]["returns"]}
    return copy.deepcopy(
        next(
            s
            for s in document["cin7"]["sales"]
            if s["CustomerReference"] in orders and s["Invoices"] and "." not in cin7_ts(at, s["ID"])
        )
    )


def hand_made_credit_note(sale: dict) -> dict:
    invoice = sale["Invoices"][0]
    line = {k: v for k, v in invoice["Lines"][0].items() if k != "Account"}
    return {
        "TaskID": str(uuid.uuid4()),
        "CreditNoteInvoiceNumber": invoice["InvoiceNumber"],
        "CreditNoteNumber": "CR-BYHAND",
        "Memo": "",
        "Status": "AUTHORISED",
        "CreditNoteDate": sale["LastModifiedOn"][:10] + "T00:00:00",
        "Lines": [line],
        "AdditionalCharges": [],
        "Restock": [],
        "RestockStatus": "NOT AVAILABLE",
        "TotalBeforeTax": line["Total"],
        "Tax": line["Tax"],
        "Total": line["Total"] + line["Tax"],
    }


@pytest.mark.parametrize("overlap_hours", [48, 0])
def test_a_sale_changed_twice_within_the_second_of_the_watermark_is_read_again(
    overlap_hours, simulators, quiet_scenario, clients_for, warehouse_db
) -> None:
    settings = ReconSettings(overlap_hours=overlap_hours)
    simulators.load(quiet_scenario)
    now = datetime.fromisoformat(simulators.clock()["clock"])
    second = (now + timedelta(minutes=5)).replace(microsecond=0)  # newer than every sale of the scenario
    sale = second_precision_related_sale(quiet_scenario, second)
    session, url = simulators.cin7_session(), f"{simulators.cin7}/sale"

    # first change at S.1; the vendor's clock stays in that second while we read
    simulators.clock(set=(second + timedelta(milliseconds=100)).isoformat(), frozen=True)
    sale["SourceChannel"] = "Shopify POS"
    simulators.upsert("cin7.sales", sale)
    served = session.get(url, params={"ID": sale["ID"]}, timeout=10).json()["LastModifiedOn"]
    assert served == second.strftime("%Y-%m-%dT%H:%M:%S"), "the vendor serves this sale to the second"
    clients = clients_for()
    extract(warehouse_db, clients, "cd-1", settings)
    with warehouse_db.connect() as conn:
        watermark = conn.execute(
            "SELECT watermark FROM raw.extract_watermarks WHERE source = 'cin7' AND entity = 'sale_list'"
        ).fetchone()[0]
        channel = conn.execute(
            "SELECT source_channel FROM staging.stg_cin7__sales WHERE sale_id = %s", (sale["ID"],)
        ).fetchone()[0]
    assert datetime.fromisoformat(watermark) == second.replace(tzinfo=UTC)
    assert channel == "Shopify POS"

    # second change at S.6, after our read: a credit note made by hand; the served timestamp is unchanged
    simulators.clock(set=(second + timedelta(milliseconds=600)).isoformat(), frozen=True)
    note = hand_made_credit_note(sale)
    sale["CreditNotes"] = [*sale["CreditNotes"], note]
    simulators.upsert("cin7.sales", sale)
    assert session.get(url, params={"ID": sale["ID"]}, timeout=10).json()["LastModifiedOn"] == served

    simulators.clock(set=(second + timedelta(hours=1)).isoformat(), frozen=False)  # the next hourly run
    summaries = extract(warehouse_db, clients, "cd-2", settings)
    with warehouse_db.connect() as conn:
        notes = {
            r[0]
            for r in conn.execute(
                "SELECT task_id FROM staging.stg_cin7__credit_notes WHERE sale_id = %s", (sale["ID"],)
            )
        }
    assert note["TaskID"] in notes, "the second change within the watermark's second was missed"
    assert sale["ID"] in summaries["cin7", "sales"].changed_keys

    # settled: the next run re-reads nothing and changes nothing
    simulators.advance(hours=1)
    idle = extract(warehouse_db, clients, "cd-3", settings)
    assert {key: s.changed for key, s in idle.items()} == dict.fromkeys(idle, 0)
    assert calls(idle) == IDLE_CALLS


def test_an_idle_hourly_run_costs_one_call_per_incremental_list_and_changes_nothing(
    simulators, quiet_scenario, clients_for, warehouse_db
) -> None:
    settings = ReconSettings()
    simulators.load(quiet_scenario)
    clients = clients_for()
    extract(warehouse_db, clients, "idle-1", settings)
    with warehouse_db.connect() as conn:
        before = conn.execute("SELECT count(*), max(fetched_at) FROM raw.api_records").fetchone()
    runs = []
    for n in (2, 3, 4):
        simulators.advance(hours=1)
        runs.append(extract(warehouse_db, clients, f"idle-{n}", settings))
    with warehouse_db.connect() as conn:
        after = conn.execute("SELECT count(*), max(fetched_at) FROM raw.api_records").fetchone()
    assert after == before, "a record re-read unchanged was rewritten"
    for summaries in runs:
        assert {key: s.changed for key, s in summaries.items()} == dict.fromkeys(summaries, 0)
    # the run right after a load may re-read the details read within their own second, once; never again
    assert [calls(s) for s in runs[1:]] == [IDLE_CALLS, IDLE_CALLS]
    assert calls(runs[0]) <= IDLE_CALLS + 2
