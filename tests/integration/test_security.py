"""Nobody let in, nothing personal kept: the reader role with a real login, data minimisation in
stored payloads and published tables, and simulators reachable from this machine only."""

from __future__ import annotations

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
PII = {"email": "alice.planted@example.com", "iban": "ES9121000418450200051332", "phone": "+34 600 123 456",
       "name": "Alice Plantedname", "street": "Calle Planted 12"}  # fmt: skip


def with_personal_data(tmp_path: Path) -> Path:
    """A scenario whose payloads carry what the real APIs send about customers."""
    path = scenario(tmp_path, 8484, returns=80)
    document = json.loads(path.read_text())
    for ret in document["reveni"]["returns"][:20]:
        ret["customer"] = {"email": PII["email"], "phone": PII["phone"], "name": PII["name"]}
        ret["iban"] = PII["iban"]
    for sale in document["cin7"]["sales"][:20]:
        address = {"Line1": PII["street"]}
        sale.update({"Customer": PII["name"], "Email": PII["email"], "Phone": PII["phone"], "BillingAddress": address,
                     "ShippingAddress": address})  # fmt: skip
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


def test_no_personal_data_is_stored_anywhere_and_none_is_published(reconciled) -> None:
    with reconciled.connect() as conn:
        text = all_text(conn, ("public", "raw", "staging", "recon"))
        redacted = conn.execute("SELECT count(*) FROM raw.api_records WHERE payload::text LIKE '%[redacted]%'"
                                ).fetchone()[0]  # fmt: skip
        published = {t: conn.execute(sql.SQL("SELECT count(*) FROM recon.{}").format(sql.Identifier(t))).fetchone()[0]
                     for t in PUBLISHED}  # fmt: skip
    assert redacted >= 60, "the planted fields were there to redact"
    for table, content in text.items():
        for kind, value in PII.items():
            assert value not in content, f"{kind} stored in {table}"
    for table in PUBLISHED:
        assert published[table] > 0
        assert not EMAIL.search(text[f"recon.{table}"]), table
        assert not IBAN.search(text[f"recon.{table}"]), table


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
        writes = [sql.SQL("INSERT INTO recon.{t} SELECT * FROM recon.{t} LIMIT 1"),
                  sql.SQL("UPDATE recon.{t} SET day = day"), sql.SQL("DELETE FROM recon.{t}"),
                  sql.SQL("TRUNCATE recon.{t}"), sql.SQL("DROP TABLE recon.{t}"),
                  sql.SQL("ALTER TABLE recon.{t} ADD COLUMN x int")]  # fmt: skip
        for table in PUBLISHED:
            for write in writes:
                with pytest.raises((psycopg.errors.InsufficientPrivilege, psycopg.errors.UndefinedColumn)):
                    reader.execute(write.format(t=sql.Identifier(table)))
        for (table,) in private:
            schema, name = table.split(".")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                reader.execute(sql.SQL("SELECT 1 FROM {}.{} LIMIT 1").format(sql.Identifier(schema),
                                                                            sql.Identifier(name)))  # fmt: skip
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
