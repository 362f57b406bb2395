from __future__ import annotations

import shutil
import threading
from pathlib import Path

import psycopg
import pytest

from returns_recon.warehouse.migrate import MIGRATIONS_DIR, MigrationError, apply_migrations

pytestmark = pytest.mark.integration


def test_fresh_database_gets_every_schema(empty_database) -> None:
    with empty_database.connect() as conn:
        applied = apply_migrations(conn)
        schemas = {r[0] for r in conn.execute("SELECT nspname FROM pg_namespace")}
    assert applied == sorted(p.name for p in MIGRATIONS_DIR.glob("*.sql"))
    assert {"raw", "staging", "recon"} <= schemas


def test_second_run_applies_nothing(warehouse_db) -> None:
    with warehouse_db.connect() as conn:
        assert apply_migrations(conn) == []


def test_edited_migration_is_refused(empty_database, tmp_path: Path) -> None:
    shutil.copytree(MIGRATIONS_DIR, tmp_path / "m")
    with empty_database.connect() as conn:
        apply_migrations(conn, tmp_path / "m")
    first = sorted((tmp_path / "m").glob("*.sql"))[0]
    first.write_text(first.read_text() + "\n-- edited\n")
    with (
        empty_database.connect() as conn,
        pytest.raises(MigrationError, match="changed after it was applied"),
    ):
        apply_migrations(conn, tmp_path / "m")


def test_failed_migration_rolls_back_and_records_nothing(empty_database, tmp_path: Path) -> None:
    (tmp_path / "0001_ok.sql").write_text("CREATE TABLE public.ok (id int);")
    (tmp_path / "0002_broken.sql").write_text("CREATE TABLE public.half (id int); SELECT no_such_column;")
    with empty_database.connect() as conn:
        with pytest.raises(psycopg.errors.UndefinedColumn):
            apply_migrations(conn, tmp_path)
        versions = [r[0] for r in conn.execute("SELECT version FROM public.schema_migrations")]
        half = conn.execute("SELECT to_regclass('public.half')").fetchone()[0]
    assert versions == [1]
    assert half is None


def test_concurrent_runners_apply_each_migration_once(empty_database) -> None:
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def runner() -> None:
        try:
            with empty_database.connect() as conn:
                results.append(apply_migrations(conn))
        except BaseException as err:  # collected and re-raised below
            errors.append(err)

    threads = [threading.Thread(target=runner) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    applied = [name for result in results for name in result]
    assert sorted(applied) == sorted(p.name for p in MIGRATIONS_DIR.glob("*.sql"))


def test_reader_role_reads_recon_only(warehouse_db, embedded_server) -> None:
    with warehouse_db.connect(autocommit=True) as conn:
        conn.execute("CREATE TABLE recon.published (id int)")
        conn.execute("INSERT INTO recon.published VALUES (1)")
        conn.execute("CREATE TABLE staging.private (id int)")
        conn.execute("CREATE TABLE raw.private (id int)")
    embedded_server.set_role_password("recon_reader", "reader-test-pw")
    reader_url = (
        f"postgresql://recon_reader:reader-test-pw@{warehouse_db.host}:{warehouse_db.port}/{warehouse_db.dbname}"
    )
    with psycopg.connect(reader_url, autocommit=True) as reader:
        assert reader.execute("SELECT id FROM recon.published").fetchall() == [(1,)]
        for table in ("staging.private", "raw.private"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                reader.execute(f"SELECT * FROM {table}")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            reader.execute("INSERT INTO recon.published VALUES (2)")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            reader.execute("CREATE TABLE recon.mine (id int)")


def test_several_warehouses_on_a_new_server_migrate_at_once(tmp_path_factory) -> None:
    """A merchants file's first runs migrate every merchant's warehouse at once: the server-wide recon_reader is
    created by one of them, and none fails on the race (the migrations' lock is one database's)."""
    import shutil
    import tempfile
    import uuid
    from concurrent.futures import ThreadPoolExecutor
    from pathlib import Path

    from local_stack.warehouse import EmbeddedWarehouse
    from tests.fixtures.warehouse import TestDatabase, _free_port

    base = Path(tempfile.mkdtemp(prefix="recon-test-pg-race-"))
    base.chmod(0o755)
    server = EmbeddedWarehouse(base / "data", port=_free_port())
    try:
        server.start(owner=True)
        databases = []
        for i in range(6):
            name, password = f"m{i}_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
            server.ensure_database(name, password, name)
            databases.append(TestDatabase(server.host, server.port, name, password, name))

        def migrate(db: TestDatabase) -> list[str]:
            with db.connect() as conn:
                return apply_migrations(conn)

        with ThreadPoolExecutor(len(databases)) as pool:
            applied = list(pool.map(migrate, databases))
        assert all(names and names[0].startswith("0001") for names in applied)
        with psycopg.connect(server.superuser_dsn()) as conn:
            assert conn.execute("SELECT count(*) FROM pg_roles WHERE rolname = 'recon_reader'").fetchone()[0] == 1
    finally:
        server.discard()
        shutil.rmtree(base, ignore_errors=True)
