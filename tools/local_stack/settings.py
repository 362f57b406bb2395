"""Reading the local configuration (connections in Airflow's JSON or URI form) without Airflow."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from local_stack.env import LOCAL


@dataclass(frozen=True)
class ConnFields:
    host: str
    port: int | None
    login: str
    password: str
    schema: str

    def libpq_url(self, options: str = "") -> str:
        """A libpq URL; login, password and database percent-escaped (a password may hold @, : or /)."""
        login, password, database = (quote(part, safe="") for part in (self.login, self.password, self.schema))
        url = f"postgresql://{login}:{password}@{self.host}:{self.port or 5432}/{database}"
        return url + (f"?options={quote(options, safe='')}" if options else "")


def parse_connection(value: str) -> ConnFields:
    value = value.strip()
    if value.startswith("{"):
        data = json.loads(value)
        return ConnFields(
            host=data.get("host") or "",
            port=int(data["port"]) if data.get("port") else None,
            login=data.get("login") or "",
            password=data.get("password") or "",
            schema=data.get("schema") or "",
        )
    parts = urlsplit(value)
    return ConnFields(
        host=parts.hostname or "",
        port=parts.port,
        login=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        schema=parts.path.lstrip("/"),
    )


def warehouse_conn(env: dict[str, str]) -> ConnFields:
    raw = env.get("AIRFLOW_CONN_RECON_WAREHOUSE")
    if not raw:
        raise SystemExit("AIRFLOW_CONN_RECON_WAREHOUSE is not set: copy .env.example to .env or export it")
    return parse_connection(raw)


READER = "recon_reader"


def reader_url(env: dict[str, str]) -> str:
    """Finance's connection: recon_reader with RECON_READER_PASSWORD on the warehouse of
    AIRFLOW_CONN_RECON_WAREHOUSE, schema recon first on its search_path (so psql's \\d+ lists it)."""
    password = env.get("RECON_READER_PASSWORD")
    if not password:
        raise SystemExit(
            "RECON_READER_PASSWORD is not set: set it in .env (the embedded warehouse gives recon_reader that "
            "password when it starts); on your own Postgres give the role a login first: "
            "ALTER ROLE recon_reader LOGIN PASSWORD '...'"
        )
    return replace(warehouse_conn(env), login=READER, password=password).libpq_url("-csearch_path=recon")


def embedded_enabled(env: dict[str, str]) -> bool:
    return env.get("RECON_EMBEDDED_WAREHOUSE", "true").strip().lower() in {"1", "true", "yes", "on"}


def local_dir(env: dict[str, str]) -> Path:
    """Where the local stack keeps its data, logs and pid files (git-ignored)."""
    return Path(env.get("RECON_LOCAL_DIR") or LOCAL)


def warehouse_dir(env: dict[str, str]) -> Path:
    return local_dir(env) / "warehouse"


def run_dir(env: dict[str, str]) -> Path:
    return local_dir(env) / "run"


def api_url(env: dict[str, str]) -> str:
    return f"http://127.0.0.1:{env.get('AIRFLOW__API__PORT', '8080')}"
