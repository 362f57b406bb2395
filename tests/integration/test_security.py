"""Nobody let in, nothing personal kept: the reader role with a real login, data minimisation in
stored payloads and published tables, and simulators reachable from this machine only."""

from __future__ import annotations

import copy
import json
import re
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from recon_simulators.generate import location_map_csv_path
from returns_recon.extract.run import extract_all
from returns_recon.location_map import load_location_map
from returns_recon.reconcile.engine import reconcile
from returns_recon.reconcile.publish import TABLES as PUBLISHED
from returns_recon.settings import ReconSettings
from tests.fixtures.scenarios import scenario

pytestmark = pytest.mark.integration

SETTINGS = ReconSettings(credit_note_approval_threshold=Decimal("1000000"))
EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")
IBAN = re.compile(r"\b[A-Z]{2}\d{2}[A-Z0-9]{11,30}\b")
PII = {
    "email": "alice.planted@example.com",
    "iban": "ES9121000418450200051332",
    "phone": "+34 600 123 456",
    "name": "Alice Plantedname",
    "street": "Calle Planted 12",
}


def with_personal_data(tmp_path: Path) -> Path:
    """A scenario whose payloads carry what the real APIs send about customers."""
    path = scenario(tmp_path, 8484, returns=80)
    document = json.loads(path.read_text())
    for ret in document["reveni"]["returns"][:20]:
        ret["customer"] = {"email": PII["email"], "phone": PII["phone"], "name": PII["name"]}
        ret["iban"] = PII["iban"]
    for sale in document["cin7"]["sales"][:20]:
        address = {"Line1": PII["street"]}
        sale.update(
            {
                "Customer": PII["name"],
                "Email": PII["email"],
                "Phone": PII["phone"],
                "BillingAddress": address,
                "ShippingAddress": address,
            }
        )
    for order in document["sitoo"]["orders"][:20]:
        order.update({"email": PII["email"], "namefirst": PII["name"], "phone": PII["phone"]})
    path.write_text(json.dumps(document))
    return path


TABLES_IN = "SELECT table_schema, table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' "
TABLE_TEXT = sql.SQL("SELECT coalesce(string_agg(t::text, E'\\n'), '') FROM {}.{} t")


def all_text(conn: psycopg.Connection, schemas: tuple[str, ...]) -> dict[str, str]:
    tables = conn.execute(TABLES_IN + "AND table_schema = ANY(%s)", (list(schemas),)).fetchall()
    return {
        f"{s}.{t}": conn.execute(TABLE_TEXT.format(sql.Identifier(s), sql.Identifier(t))).fetchone()[0]
        for s, t in tables
    }


@pytest.fixture
def reconciled(simulators, clients_for, warehouse_db, tmp_path):
    path = with_personal_data(tmp_path)
    simulators.load(path)
    with psycopg.connect(warehouse_db.url, autocommit=True) as conn:
        load_location_map(conn, location_map_csv_path(path), "security")
        extract_all(conn, clients_for(), "security", "hourly", SETTINGS)
        reconcile(conn, "security", SETTINGS, "hourly")
    return warehouse_db


def planted_keys(path: Path) -> list[str]:
    """The natural keys of the records ``with_personal_data`` planted fields in."""
    document = json.loads(path.read_text())
    return (
        [r["id"] for r in document["reveni"]["returns"][:20]]
        + [s["ID"] for s in document["cin7"]["sales"][:20]]
        + [str(o["orderid"]) for o in document["sitoo"]["orders"][:20]]
    )


def test_no_personal_data_is_stored_anywhere_and_none_is_published(reconciled, tmp_path) -> None:
    with reconciled.connect() as conn:
        text = all_text(conn, ("public", "raw", "staging", "recon"))
        carried = conn.execute(
            "SELECT count(*) FROM raw.api_records WHERE natural_key = ANY(%s)",
            (planted_keys(tmp_path / "seed-8484.json"),),
        ).fetchone()[0]
        published = {
            t: conn.execute(sql.SQL("SELECT count(*) FROM recon.{}").format(sql.Identifier(t))).fetchone()[0]
            for t in PUBLISHED
        }
    assert carried >= 60, "the records that carried the planted fields were stored"
    for table, content in text.items():
        for kind, value in PII.items():
            assert value not in content, f"{kind} stored in {table}"
    for table in PUBLISHED:
        assert published[table] > 0
        assert not EMAIL.search(text[f"recon.{table}"]), table
        assert not IBAN.search(text[f"recon.{table}"]), table


# every kind of personal field the three APIs can carry, nested too; each value unique in the scenario
MARKED = {
    "email": "bea.marker@example.org",
    "phone": "+46 70 123 45 67",
    "first": "Beatrix",
    "last": "Markerdottir",
    "personalid": "19850412-2387",
    "national id": "X1234567L",
    "company": "Markerbolaget AB",
    "street": "Markervagen 7",
    "zip": "114 53",
    "city": "Markerstad",
    "delivery name": "Dora Deliverymarker",
    "bank holder": "Harald Holdermarker",
    "iban": "SE4550000000058398257466",
    "note": "call after six, gate code 4471",
    "staff": "Staffan Staffmarker",
    "crm id": "CRM-998877",
}
M = MARKED
PERSON = {
    "email": M["email"],
    "phone": M["phone"],
    "first_name": M["first"],
    "last_name": M["last"],
    "national_id": M["national id"],
    "address": {"street": M["street"], "zip": M["zip"], "city": M["city"]},
}
BANK = {"iban": M["iban"], "account_holder": M["bank holder"], "bic": "ESSESESS"}
SALE_PERSON = {
    "Customer": f"{M['first']} {M['last']}",
    "CustomerID": "5d1c0f0e-0000-4000-8000-00000000beef",
    "Contact": M["delivery name"],
    "Phone": M["phone"],
    "Email": M["email"],
    "TaxNumber": M["national id"],
    "BillingAddress": {"Line1": M["street"], "City": M["city"], "Postcode": M["zip"]},
    "ShippingAddress": {"Line1": M["street"], "City": M["city"], "Postcode": M["zip"], "Company": M["company"]},
    "Note": M["note"],
}
BLOCK = {
    "namefirst": M["delivery name"],
    "namelast": M["last"],
    "company": M["company"],
    "address": M["street"],
    "zip": M["zip"],
    "city": M["city"],
    "phone": M["phone"],
    "email": M["email"],
}
ORDER_PERSON = {
    "email": M["email"],
    "namefirst": M["first"],
    "namelast": M["last"],
    "personalid": M["personalid"],
    "company": M["company"],
    "phone": M["phone"],
    "invoice_address": M["street"],
    "invoice_zip": M["zip"],
    "invoice_city": M["city"],
    "delivery_address": M["street"],
    "delivery_zip": M["zip"],
    "delivery_city": M["city"],
    "comment": M["note"],
    "commentinternal": M["note"],
    "delivery": BLOCK,
    "billing": BLOCK,
}
PLANTED_KEYS = (
    "customer",
    "bank_details",
    "bank_account",
    "notes",
    "customer_email",
    "customer_comment",
    *SALE_PERSON,
    "Comment",
    *ORDER_PERSON,
    "crm-customerid",
    "pos-staffsales-name",
    "refundreasoncode-comment",
    "vouchercomment",
    "cardholder",
)


def with_every_kind_of_personal_field(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A scenario whose first records of each kind carry every personal field listed in issue 16, nested
    included, one record of each system also invalid (quarantined); returns {what: natural key}."""
    path = scenario(tmp_path, 9595, returns=40)
    document = json.loads(path.read_text())
    returns = [r for r in document["reveni"]["returns"] if r["refunds"]]
    orders = {r["order"]["external_id"] for r in document["reveni"]["returns"]}
    sales = [s for s in document["cin7"]["sales"] if s["CustomerReference"] in orders and s["CreditNotes"]]
    for ret in returns[:2]:
        ret.update({"customer": copy.deepcopy(PERSON), "bank_details": dict(BANK), "notes": M["note"]})
        ret["order"]["customer_email"] = M["email"]
        ret["refunds"][0]["bank_account"] = {"holder_name": M["bank holder"], "iban": M["iban"]}
        ret["return_items"][0]["customer_comment"] = M["note"]
    returns[1]["amount"] = "12,5O"
    for sale in sales[:2]:
        sale.update(copy.deepcopy(SALE_PERSON))
        sale["Invoices"][0]["Lines"][0]["Comment"] = M["note"]
        sale["CreditNotes"][0].setdefault("Lines", []).append({**sale["Invoices"][0]["Lines"][0]})
    sales[1]["CustomerCurrency"] = None
    for order in document["sitoo"]["orders"][:2]:
        order.update(copy.deepcopy(ORDER_PERSON))
        order["additionaldata"] = {
            **(order.get("additionaldata") or {}),
            "crm-customerid": M["crm id"],
            "pos-staffsales-name": M["staff"],
            "refundreasoncode-comment": M["note"],
        }
        order["orderitems"][0]["vouchercomment"] = M["note"]
        for payment in order.get("payments") or []:
            payment["cardholder"] = M["bank holder"]
    document["sitoo"]["orders"][1]["moneytotal_gross_all"] = "n/a"
    path.write_text(json.dumps(document))
    return path, {
        "return": returns[0]["id"],
        "invalid return": returns[1]["id"],
        "sale": sales[0]["ID"],
        "invalid sale": sales[1]["ID"],
        "order": str(document["sitoo"]["orders"][0]["orderid"]),
        "invalid order": str(document["sitoo"]["orders"][1]["orderid"]),
    }


def test_stored_payloads_keep_only_allowed_fields_and_quarantine_only_the_names_of_the_rest(
    simulators, clients_for, warehouse_db, tmp_path
) -> None:
    path, key = with_every_kind_of_personal_field(tmp_path)
    simulators.load(path)
    with psycopg.connect(warehouse_db.url, autocommit=True) as conn:
        extract_all(conn, clients_for(), "personal", "hourly", SETTINGS)
    with warehouse_db.connect() as conn:
        stored = {
            (e, k)
            for e, k in conn.execute(
                "SELECT entity, natural_key FROM raw.api_records WHERE natural_key = ANY(%s)", (list(key.values()),)
            )
        }
        quarantined = {
            (e, k): (payload, error)
            for e, k, payload, error in conn.execute(
                "SELECT entity, natural_key, payload, error FROM raw.quarantine WHERE natural_key = ANY(%s)",
                (list(key.values()),),
            )
        }
        values_found = {
            what: conn.execute(
                "SELECT count(*) FROM raw.api_records WHERE strpos(payload::text, %(v)s) > 0", {"v": value}
            ).fetchone()[0]
            + conn.execute(
                "SELECT count(*) FROM raw.quarantine WHERE strpos(payload::text, %(v)s) > 0 "
                "OR strpos(error, %(v)s) > 0",
                {"v": value},
            ).fetchone()[0]
            for what, value in MARKED.items()
        }
        keys_found = {
            name: conn.execute(
                "SELECT count(*) FROM raw.api_records WHERE jsonb_path_exists(payload, %s::jsonpath)",
                (f'strict $.**."{name}"',),
            ).fetchone()[0]
            for name in PLANTED_KEYS
        }
    # the planted records were there to be stored: valid ones in raw, invalid ones in quarantine
    assert {
        ("returns", key["return"]),
        ("sale_list", key["sale"]),
        ("sales", key["sale"]),
        ("orders", key["order"]),
    } <= stored
    assert {
        ("returns", key["invalid return"]),
        ("sale_list", key["invalid sale"]),
        ("orders", key["invalid order"]),
    } <= set(quarantined)
    assert {what: n for what, n in values_found.items() if n} == {}, "personal values stored"
    assert {name: n for name, n in keys_found.items() if n} == {}, "personal fields stored"
    # a quarantined payload keeps its allowed fields, and the names (only) of what was dropped
    payload, error = quarantined["returns", key["invalid return"]]
    assert payload["amount"] == "12,5O"
    assert "amount" in error
    assert payload["id"] == key["invalid return"]
    assert payload["return_items"]
    assert {
        "customer",
        "bank_details",
        "notes",
        "order.customer_email",
        "refunds[].bank_account",
        "return_items[].customer_comment",
    } <= set(payload["_dropped_keys"])
    order, _ = quarantined["orders", key["invalid order"]]
    assert {
        "personalid",
        "company",
        "delivery",
        "billing",
        "invoice_zip",
        "delivery_city",
        "additionaldata.crm-customerid",
    } <= set(order["_dropped_keys"])
    assert "moneytotal_gross_all" in order


# a reason as an earlier version wrote it: the value quoted, whatever it held
EARLIER_REASON = (
    "amount: Value error, not a decimal amount: '1O' (got \"'1O'\"); return_items: Field required "
    f"(got \"{{'id': 'r-stored-earlier', 'customer': {{'personalid': '{M['personalid']}'}}\")"
)


def test_payloads_stored_before_the_allow_list_are_minimised_once(
    simulators, clients_for, warehouse_db, tmp_path
) -> None:
    """A return stored by an earlier version (personal fields redacted by name only), never served again,
    and its quarantined twin: the first load of their entity minimises them, hashes included."""
    path = scenario(tmp_path, 9696, returns=20)
    simulators.load(path)
    stored = {
        "id": "r-stored-earlier",
        "amount": "10.0000",
        "customer": {"email": "[redacted]", "personalid": M["personalid"]},
        "notes": M["note"],
        "refunds": [{"id": "f1", "iban": "[redacted]", "holder": M["bank holder"]}],
    }
    with warehouse_db.connect() as conn:
        conn.execute(
            """INSERT INTO raw.api_records (source, entity, natural_key, content_hash, payload, run_id)
                        VALUES ('reveni', 'returns', 'r-stored-earlier', 'h-earlier', %s, 'earlier')""",
            (json.dumps(stored),),
        )
        conn.execute(
            """INSERT INTO raw.quarantine (source, entity, natural_key, payload_hash, payload, error, run_id)
                        VALUES ('reveni', 'returns', 'r-stored-earlier', 'q-earlier', %s, %s, 'earlier')""",
            (json.dumps({**stored, "amount": "1O"}), EARLIER_REASON),
        )
        conn.commit()
    for run_id in ("minimise-1", "minimise-2"):
        with psycopg.connect(warehouse_db.url, autocommit=True) as conn:
            summaries = extract_all(conn, clients_for(), run_id, "hourly", SETTINGS)
    with warehouse_db.connect() as conn:
        payload, digest = conn.execute(
            "SELECT payload, content_hash FROM raw.api_records WHERE natural_key = 'r-stored-earlier'"
        ).fetchone()
        quarantined = conn.execute(
            "SELECT payload, occurrences, error FROM raw.quarantine WHERE natural_key = 'r-stored-earlier'"
        ).fetchall()
    assert payload == {"id": "r-stored-earlier", "amount": "10.0000", "refunds": [{"id": "f1"}]}
    assert digest != "h-earlier"
    assert quarantined == [
        (
            {
                "id": "r-stored-earlier",
                "amount": "1O",
                "refunds": [{"id": "f1"}],
                "_dropped_keys": ["customer", "notes", "refunds[].holder", "refunds[].iban"],
            },
            1,
            "amount: Value error, not a decimal amount: '1O'; return_items: Field required",
        )
    ]
    assert {(s.source, s.entity): s.changed for s in summaries}["reveni", "returns"] == 0


def test_the_reader_role_reads_the_published_tables_only_and_writes_nothing(reconciled, embedded_server) -> None:
    embedded_server.set_role_password("recon_reader", "reader-login-pw")
    reader_url = f"postgresql://recon_reader:reader-login-pw@{reconciled.host}:{reconciled.port}/{reconciled.dbname}"
    with reconciled.connect() as conn:
        private = [(f"{s}.{t}",) for s, t in conn.execute(TABLES_IN + "AND table_schema IN ('raw', 'staging')")]
    assert len(private) > 15
    with psycopg.connect(reader_url, autocommit=True) as reader:
        assert reader.execute("SELECT current_user").fetchone() == ("recon_reader",)
        for table in PUBLISHED:
            assert reader.execute(sql.SQL("SELECT count(*) FROM recon.{}").format(sql.Identifier(table))).fetchone()[0]
        writes = [
            sql.SQL("INSERT INTO recon.{t} SELECT * FROM recon.{t} LIMIT 1"),
            sql.SQL("UPDATE recon.{t} SET day = day"),
            sql.SQL("DELETE FROM recon.{t}"),
            sql.SQL("TRUNCATE recon.{t}"),
            sql.SQL("DROP TABLE recon.{t}"),
            sql.SQL("ALTER TABLE recon.{t} ADD COLUMN x int"),
        ]
        for table in PUBLISHED:
            for write in writes:
                with pytest.raises((psycopg.errors.InsufficientPrivilege, psycopg.errors.UndefinedColumn)):
                    reader.execute(write.format(t=sql.Identifier(table)))
        for (table,) in private:
            schema, name = table.split(".")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                reader.execute(
                    sql.SQL("SELECT 1 FROM {}.{} LIMIT 1").format(sql.Identifier(schema), sql.Identifier(name))
                )
        for schema in ("recon", "public", "staging", "raw"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                reader.execute(sql.SQL("CREATE TABLE {}.mine (id int)").format(sql.Identifier(schema)))
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            reader.execute("UPDATE recon.exceptions SET state = 'resolved'")


def listening_addresses(port: int) -> set[str]:
    """The local addresses a TCP socket on ``port`` listens on, from /proc/net/tcp{,6}."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, port_hex = fields[1].rsplit(":", 1)
            if fields[3] == "0A" and int(port_hex, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


def test_the_simulators_listen_on_loopback_only(simulators) -> None:
    for port in (simulators.reveni_port, simulators.cin7_port, simulators.sitoo_port):
        assert listening_addresses(port) == {"0100007F"}, port  # 127.0.0.1, nothing else
