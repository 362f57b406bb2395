"""Apply the versioned SQL migrations in ``migrations/`` exactly once, in order.

A small runner rather than Alembic or yoyo: the migrations are plain SQL (the warehouse has no
ORM models), Alembic is already Airflow's own tool for its metadata database and sharing a
process with it invites confusion, and yoyo-migrations has had no release since 2024. The
runner needs three properties, each tested: files are applied in version order, each inside
its own transaction; concurrent runners serialise on an advisory lock; an applied file that
was edited afterwards is refused (its checksum no longer matches).

After the files, the runner applies the one setting that belongs to the database rather than to a
file: recon_reader's idle timeout (RECON_READER_IDLE_TIMEOUT_SECONDS, migration 0011).
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from returns_recon.errors import NotRetryable
from returns_recon.settings import ReconSettings, load_settings

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_LOCK_KEY = 72_617_301  # any constant shared by all runners of this package
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


class MigrationError(NotRetryable):
    pass


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    found: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named NNNN_description.sql")
        found.append(Migration(int(match.group(1)), path.name, path.read_text()))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migration files share a version number in {directory}")
    return found


def apply_migrations(
    conn: psycopg.Connection,
    directory: Path = MIGRATIONS_DIR,
    settings: ReconSettings | None = None,
    reader_role: str | None = None,
) -> list[str]:
    """Apply pending migrations, then the reader role's idle timeout of ``settings`` (default: from the
    environment); return the names applied (empty when up to date). ``reader_role``: a merchants file's
    merchant's own reader, made the database's only reader (``roles.isolate_reader``) and given the timeout
    instead of ``recon_reader``, which cannot connect to that database."""
    migrations = discover(directory)
    settings = settings if settings is not None else load_settings()
    applied_now: list[str] = []
    conn.autocommit = True
    conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
    try:
        conn.execute(
            """CREATE TABLE IF NOT EXISTS public.schema_migrations (
                   version integer PRIMARY KEY,
                   name text NOT NULL,
                   checksum text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        done: dict[int, str] = dict(conn.execute("SELECT version, checksum FROM public.schema_migrations").fetchall())
        if any(m.version not in done for m in migrations):
            _ensure_shared_reader(conn)
        for migration in migrations:
            if migration.version in done:
                if done[migration.version] != migration.checksum:
                    raise MigrationError(
                        f"{migration.name} was changed after it was applied; add a new migration instead"
                    )
                continue
            with conn.transaction():
                conn.execute(migration.sql)
                conn.execute(
                    "INSERT INTO public.schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                    (migration.version, migration.name, migration.checksum),
                )
            log.info("applied migration %s", migration.name)
            applied_now.append(migration.name)
        if reader_role is not None:
            from returns_recon.warehouse.roles import isolate_reader

            isolate_reader(conn, reader_role)
        apply_reader_timeout(conn, settings, reader_role or READER)
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied_now


READER = "recon_reader"


def _ensure_shared_reader(conn: psycopg.Connection) -> None:
    """Create ``recon_reader`` before the migrations that grant to it, tolerating a race: roles belong to the whole
    server while the migrations' lock is one database's, so the first migrations of several merchants' warehouses
    on one server may create it at the same time (a unique violation for all but one of them). Without
    CREATEROLE nothing is done here: migration 0001 then says what is missing."""
    if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (READER,)).fetchone():
        return
    try:
        with conn.transaction():
            conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(READER)))
    except (psycopg.errors.UniqueViolation, psycopg.errors.DuplicateObject):
        log.info("%s was created by another warehouse's migration at the same moment", READER)
    except psycopg.errors.InsufficientPrivilege:
        pass


_READER_SETTING = """
    SELECT current_database(), current_user, (
        SELECT s.setconfig FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase
        WHERE d.datname = current_database() AND s.setrole = r.oid)
    FROM pg_roles r WHERE r.rolname = %s"""
_TIMEOUT = "idle_in_transaction_session_timeout"
_UNIT_MS = {"us": 0.001, "ms": 1, "": 1, "s": 1000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(us|ms|s|min|h|d|)\s*$")


def _stored_timeout_ms(config: list[str] | None) -> float | None:
    """The idle timeout stored for the role in this database (PostgreSQL's units), None when unset."""
    for entry in config or []:
        name, _, value = entry.partition("=")
        if name == _TIMEOUT and (match := _DURATION.match(value)):
            return float(match.group(1)) * _UNIT_MS[match.group(2)]
    return None


def apply_reader_timeout(conn: psycopg.Connection, settings: ReconSettings, role: str = READER) -> None:
    """Give the reader's sessions (``recon_reader``, or a merchant's own reader) in this database the configured
    idle_in_transaction_session_timeout.

    Needs the ADMIN option on the role (the login has it when it created the role). Without it a
    configured value (RECON_READER_IDLE_TIMEOUT_SECONDS set) fails the migration saying what to do; the
    default only warns, as the pipeline still works (a blocked publish then fails naming the reader)."""
    row = conn.execute(_READER_SETTING, (role,)).fetchone()
    if row is None:  # no reader role (a migrations directory without 0001)
        return
    database, login, config = row
    wanted_ms = round(settings.reader_idle_timeout_seconds * 1000)
    if _stored_timeout_ms(config) == wanted_ms:
        return
    statement = sql.SQL("ALTER ROLE {} IN DATABASE {} SET {} = {}").format(
        sql.Identifier(role), sql.Identifier(database), sql.Identifier(_TIMEOUT), sql.Literal(f"{wanted_ms}ms")
    )
    try:
        conn.execute(statement)
    except psycopg.errors.InsufficientPrivilege as err:
        message = (
            f"cannot set {role}'s {_TIMEOUT} to {wanted_ms} ms: the login {login} lacks the ADMIN option "
            f"on {role}. A superuser can run `{statement.as_string(conn)}` (or `GRANT {role} TO "
            f"{sql.Identifier(login).as_string(conn)} WITH ADMIN OPTION`); until then a reader idle in a "
            "transaction can hold up publishing for RECON_PUBLISH_LOCK_WAIT_SECONDS"
        )
        if "reader_idle_timeout_seconds" in settings.model_fields_set:
            raise MigrationError(message + " (or unset RECON_READER_IDLE_TIMEOUT_SECONDS)") from err
        log.warning(message)
        return
    log.info("%s's %s in %s is now %d ms", role, _TIMEOUT, database, wanted_ms)
