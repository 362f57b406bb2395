"""`make demo MERCHANTS=N` and `make up MERCHANTS=N`: N demo merchants reconciled from one deployment, through a
merchants file (docs/merchants.md).

Merchant ``m<i>`` ("Demo Merchant <i>") gets a scenario of its own (seed ``DEMO_SEED + i - 1``,
``DEMO_MERCHANT_RETURNS`` returns, 300 by default: the merchants run one after the other), its own three simulators
(the simulator ports of .env moved by ``10 * i``: ``SIM_REVENI_PORT + 10 * i``, ...; run/simulators-m<i>.pid and
.log), its own warehouse database on the embedded server (database and login
``<warehouse's>_m<i>``) and its own Airflow connections (``recon_warehouse_m<i>``, ``reveni_m<i>``,
``cin7_core_m<i>``, ``sitoo_m<i>``), given to the runs as ``AIRFLOW_CONN_*`` variables. The merchants file, written to
``<local dir>/merchants.yaml`` (``RECON_MERCHANTS_PATH`` of the runs), names them, the scenario's location map and
the merchant's own mail recipients (``<owner>@m<i>.example``). Its reader role ``recon_reader_m<i>`` gets the
password of ``recon_reader`` (``RECON_READER_PASSWORD``). The SMTP sink, the Airflow metadata database and the
embedded server are the single merchant's; the single merchant's warehouse is left as it was.

The world is recorded (``world.record_merchants``): `make up` continues it while its simulators still serve the
merchants' scenarios, with the same merchants file and connections, so the UI shows the merchants' DAGs."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, replace
from email import policy
from email.parser import BytesParser
from pathlib import Path
from unittest import mock

import psycopg
import yaml
from psycopg import sql

from local_stack import stack, world
from local_stack.settings import ConnFields, embedded_enabled, local_dir, run_dir, warehouse_conn
from local_stack.warehouse import EmbeddedWarehouse

MAX_MERCHANTS = 5
PORT_STEP = 10  # merchant i's simulators: the .env ports + PORT_STEP * i
SIM_PORTS = {"SIM_REVENI_PORT": 18081, "SIM_CIN7_PORT": 18082, "SIM_SITOO_PORT": 18083}
PROCESS_PREFIX = "simulators-"  # run/simulators-m1.pid, ...
OWNERS = {"finance": "finance", "operations": "ops", "customer service": "care", "data": "data"}
# what each merchant's demo runs, in order (the go-live check first, as `make demo`)
KINDS = ("golive_check", "hourly", "daily")


def count_arg(value: str) -> int:
    """``--merchants``: empty or 0, the single merchant of the environment; 1 to MAX_MERCHANTS, a merchants file."""
    value = value.strip()
    if not value:
        return 0
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"MERCHANTS={value!r}: a number from 1 to {MAX_MERCHANTS}") from None
    if not 0 <= number <= MAX_MERCHANTS:
        raise ValueError(f"MERCHANTS={value!r}: a number from 1 to {MAX_MERCHANTS} (empty: one merchant, no file)")
    return number


@dataclass(frozen=True)
class DemoMerchant:
    index: int
    scenario: Path
    ports: tuple[int, int, int]  # Reveni, Cin7 Core, Sitoo

    @property
    def id(self) -> str:
        return f"m{self.index}"

    @property
    def name(self) -> str:
        return f"Demo Merchant {self.index}"

    @property
    def process(self) -> str:
        """Its simulators' name under run/ (pid and log)."""
        return f"{PROCESS_PREFIX}{self.id}"

    @property
    def reader_role(self) -> str:
        return f"recon_reader_{self.id}"

    @property
    def connection_ids(self) -> dict[str, str]:
        return {
            "warehouse": f"recon_warehouse_{self.id}",
            "reveni": f"reveni_{self.id}",
            "cin7": f"cin7_core_{self.id}",
            "sitoo": f"sitoo_{self.id}",
        }

    @property
    def recipients(self) -> dict[str, list[str]]:
        return {owner: [f"{box}@{self.id}.example"] for owner, box in OWNERS.items()}

    def dag_ids(self) -> list[str]:
        return [f"returns_recon_{self.id}_{kind}" for kind in KINDS]

    def sim_env(self, env: dict[str, str]) -> dict[str, str]:
        """``env`` with its simulators' ports (what the simulators process and the health checks read)."""
        return {**env, **{variable: str(port) for variable, port in zip(SIM_PORTS, self.ports, strict=True)}}

    def warehouse(self, env: dict[str, str]) -> ConnFields:
        """Its database on the embedded server, with a login of its own (the single merchant's, suffixed)."""
        main = warehouse_conn(env)
        suffix = f"_{self.id}"
        return replace(main, login=main.login + suffix, password=main.password + suffix, schema=main.schema + suffix)

    def reader_url(self, env: dict[str, str]) -> str | None:
        password = env.get("RECON_READER_PASSWORD")
        if not password:
            return None
        return replace(self.warehouse(env), login=self.reader_role, password=password).libpq_url("-csearch_path=recon")

    def connections_env(self, env: dict[str, str]) -> dict[str, str]:
        """Its Airflow connections: AIRFLOW_CONN_* variables shaped as .env.example's of the single merchant."""
        from local_stack.simulators import Simulators

        wh = self.warehouse(env)
        warehouse = {"conn_type": "postgres", "host": wh.host, "port": wh.port, "login": wh.login}
        warehouse |= {"password": wh.password, "schema": wh.schema}
        sims = Simulators(*self.ports).env(cin7_calls_per_minute=_cin7_calls_per_minute(env))
        ids = self.connection_ids
        return {
            _variable(ids["warehouse"]): json.dumps(warehouse),
            _variable(ids["reveni"]): sims["AIRFLOW_CONN_REVENI_DEFAULT"],
            _variable(ids["cin7"]): sims["AIRFLOW_CONN_CIN7_CORE_DEFAULT"],
            _variable(ids["sitoo"]): sims["AIRFLOW_CONN_SITOO_DEFAULT"],
        }

    def file_entry(self) -> dict:
        from recon_simulators.generate import location_map_csv_path

        return {
            "id": self.id,
            "name": self.name,
            "connections": self.connection_ids,
            "location_map": str(location_map_csv_path(self.scenario)),
            "settings": {"email_recipients": self.recipients},
        }

    def record(self) -> dict:
        return {"id": self.id, "scenario": str(self.scenario), "ports": list(self.ports)}


def _variable(conn_id: str) -> str:
    return f"AIRFLOW_CONN_{conn_id.upper()}"


def _cin7_calls_per_minute(env: dict[str, str]) -> int:
    """As the single merchant's Cin7 Core connection (.env.example: under the simulators' rate limit)."""
    try:
        return int(json.loads(env["AIRFLOW_CONN_CIN7_CORE_DEFAULT"])["extra"]["calls_per_minute"])
    except (KeyError, ValueError, TypeError):
        return 50


def merchants_path(env: dict[str, str]) -> Path:
    return local_dir(env) / "merchants.yaml"


def planned(env: dict[str, str], count: int) -> list[DemoMerchant]:
    folder = local_dir(env) / "scenarios"
    merchants = []
    for index in range(1, count + 1):
        ports = tuple(int(env.get(v) or default) + PORT_STEP * index for v, default in SIM_PORTS.items())
        merchants.append(DemoMerchant(index, folder / f"demo-m{index}.json", ports))  # type: ignore[arg-type]
    return merchants


def process_names(env: dict[str, str]) -> list[str]:
    """The merchants' simulators this local folder runs (their pid files), for `make stop`."""
    return sorted(path.stem for path in run_dir(env).glob(f"{PROCESS_PREFIX}*.pid"))


def stop_simulators(env: dict[str, str]) -> None:
    for name in process_names(env):
        stack.stop_background(env, name)


def use(env: dict[str, str], merchants: list[DemoMerchant]) -> None:
    """Write the merchants file and put it and the merchants' connections in ``env`` (of the runs, of Airflow)."""
    path = merchants_path(env)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = "# written by `make demo MERCHANTS=N` / `make up MERCHANTS=N` (local_stack/merchants_demo.py)\n"
    path.write_text(header + yaml.safe_dump({"merchants": [m.file_entry() for m in merchants]}, sort_keys=False))
    env["RECON_MERCHANTS_PATH"] = str(path)
    for merchant in merchants:
        env.update(merchant.connections_env(env))


def start(env: dict[str, str], count: int) -> list[DemoMerchant]:
    """A new world of ``count`` merchants (the embedded server runs already): their scenarios, empty warehouses
    (migrated, their readers able to log in), simulators; the merchants file and connections in ``env``."""
    from local_stack.airflow_services import port_taken
    from returns_recon.settings import load_settings
    from returns_recon.warehouse.migrate import apply_migrations
    from returns_recon.warehouse.roles import isolate_reader

    if not embedded_enabled(env):
        raise SystemExit(
            "MERCHANTS needs the embedded warehouse (RECON_EMBEDDED_WAREHOUSE=true): each merchant gets a database "
            "of its own on it"
        )
    merchants = planned(env, count)
    stack.stop_background(env, "simulators")  # the single merchant's world is not served meanwhile
    stop_simulators(env)
    for merchant in merchants:
        for service, port in zip(("Reveni", "Cin7 Core", "Sitoo"), merchant.ports, strict=True):
            if port_taken(port):
                raise SystemExit(
                    f"port {port} on 127.0.0.1 (the {service} simulator of merchant {merchant.id}: the .env port + "
                    f"{PORT_STEP * merchant.index}) is taken: move the simulator ports (SIM_*_PORT) in .env"
                )
    for merchant in merchants:
        _scenario(env, merchant)
    server = stack.embedded_warehouse(env, warehouse_conn(env))
    with mock.patch.dict(os.environ, {k: v for k, v in env.items() if k.startswith("RECON_")}):
        settings = load_settings()  # the RECON_ settings of the runs (.env's too)
    timeout = f"{round(settings.reader_idle_timeout_seconds * 1000)}ms"
    for merchant in merchants:
        conn = merchant.warehouse(env)
        server.drop_database(conn.schema)
        server.ensure_database(conn.login, conn.password, conn.schema)
        # the migrations give recon_reader its idle timeout here, which takes the ADMIN option on that role (the
        # single merchant's login created it; the merchant's login has not): set as the superuser beforehand
        _reader_timeout(server, conn.schema, "recon_reader", timeout)
        with psycopg.connect(conn.libpq_url(), connect_timeout=10) as db:
            apply_migrations(db, settings=settings)
            isolate_reader(db, merchant.reader_role)  # as its migrate task does
        _reader_timeout(server, conn.schema, merchant.reader_role, timeout)  # the merchant's reader: the same
        if env.get("RECON_READER_PASSWORD"):
            server.set_role_password(merchant.reader_role, env["RECON_READER_PASSWORD"])
        print(f"{merchant.name} ({merchant.id}): warehouse {conn.host}:{conn.port}/{conn.schema} ready", flush=True)
    for merchant in merchants:
        stack.start_simulators(merchant.sim_env(env), merchant.scenario, name=merchant.process)
    use(env, merchants)
    world.record_merchants(env, [m.record() for m in merchants])
    return merchants


def _reader_timeout(server: EmbeddedWarehouse, database: str, role: str, timeout: str) -> None:
    """``role``'s idle_in_transaction_session_timeout in ``database``, set as the superuser (if the role exists)."""
    with psycopg.connect(server.superuser_dsn(), autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
            statement = "ALTER ROLE {} IN DATABASE {} SET idle_in_transaction_session_timeout = {}"
            conn.execute(
                sql.SQL(statement).format(sql.Identifier(role), sql.Identifier(database), sql.Literal(timeout))
            )


def _scenario(env: dict[str, str], merchant: DemoMerchant) -> None:
    """Merchant i's scenario: as the demo's (DEMO_CLEAN), DEMO_MERCHANT_RETURNS returns, seed DEMO_SEED + i - 1."""
    from recon_simulators.generate import location_map_csv_path, write_location_map_csv
    from recon_simulators.generator import MESSY_DEFAULTS, GeneratorConfig, generate

    merchant.scenario.parent.mkdir(parents=True, exist_ok=True)
    messy = {} if env.get("DEMO_CLEAN", "") not in ("", "0") else dict(MESSY_DEFAULTS)
    seed = int(env.get("DEMO_SEED", "1")) + merchant.index - 1
    config = GeneratorConfig(returns=int(env.get("DEMO_MERCHANT_RETURNS") or "300"), seed=seed, messy=messy)
    generate(config, merchant.scenario)
    write_location_map_csv(merchant.scenario, location_map_csv_path(merchant.scenario))


def served(env: dict[str, str]) -> list[DemoMerchant] | None:
    """The recorded merchants world, if every merchant's simulators still serve its scenario."""
    recorded = world.recorded_merchants(env)
    if not recorded:
        return None
    try:
        merchants = [
            DemoMerchant(index, Path(entry["scenario"]), (int(reveni), int(cin7), int(sitoo)))
            for index, entry in enumerate(recorded, start=1)
            for reveni, cin7, sitoo in [entry["ports"]]
        ]
    except (KeyError, TypeError, ValueError):  # a marker of another version
        return None
    if all(world.simulators_serve(m.sim_env(env), m.scenario) for m in merchants):
        return merchants
    return None


# --- make demo MERCHANTS=N --------------------------------------------------------------------------------------


def demo(env: dict[str, str], count: int) -> int:
    """Run each merchant's go-live check, hourly and daily DAGs; one summary per merchant; 1 if any run failed."""
    from local_stack.summary import print_summary

    stack.start_warehouse(env)  # the server; the single merchant's warehouse keeps its data
    merchants = start(env, count)
    mail = stack.start_smtp_sink(env)
    stack.ensure_airflow_db(env)  # and every pool of the merchants file (stack.create_pools)
    outcomes: dict[str, dict[str, bool]] = {}
    for merchant in merchants:
        outcomes[merchant.id] = {}
        for dag_id in merchant.dag_ids():
            print(f"\n=== {merchant.name} ({merchant.id}): airflow dags test {dag_id} ===", flush=True)
            done = stack.run([sys.executable, "-m", "local_stack.dag_test", dag_id], env)
            outcomes[merchant.id][dag_id] = done.returncode == 0
    mails = _mails_by_merchant(mail, merchants)
    docs_base = Path(env.get("RECON_DATA_DOCS_DIR") or local_dir(env) / "data_docs")
    for merchant in merchants:
        docs = docs_base / merchant.id / "index.html"
        url = merchant.reader_url(env)
        query = (
            f'psql "{url}" (its reader {merchant.reader_role}: its warehouse only)'
            if url
            else f"{merchant.reader_role} has no password (set RECON_READER_PASSWORD)"
        )
        title = f"{merchant.name} ({merchant.id}, scenario {merchant.scenario.name})"
        print_summary(
            merchant.warehouse(env), outcomes[merchant.id], str(docs) if docs.exists() else None, title, query=query
        )
        theirs = mails.get(merchant.id, [])
        to = sorted({address for _, addresses in theirs for address in addresses})
        print(f"  mails of {merchant.name}: {len(theirs)} saved in {mail}" + (f" (to {', '.join(to)})" if to else ""))
    print(
        f"\nmerchants file: {merchants_path(env)} (RECON_MERCHANTS_PATH); `make up` continues this world with the "
        "merchants' DAGs, `make stop` stops everything"
    )
    return 0 if all(ok for runs in outcomes.values() for ok in runs.values()) else 1


def _mails_by_merchant(folder: Path, merchants: list[DemoMerchant]) -> dict[str, list[tuple[str, list[str]]]]:
    """(subject, recipients) of each saved mail, by the merchant whose recipients it went to."""
    found: dict[str, list[tuple[str, list[str]]]] = {}
    for path in sorted(folder.glob("*.eml")) if folder.exists() else []:
        message = BytesParser(policy=policy.default).parsebytes(path.read_bytes(), headersonly=True)
        to = [address.strip() for address in str(message["To"] or "").split(",") if address.strip()]
        for merchant in merchants:
            if any(address.endswith(f"@{merchant.id}.example") for address in to):
                found.setdefault(merchant.id, []).append((str(message["Subject"]), to))
    return found


# --- make up with merchants -------------------------------------------------------------------------------------


def for_up(env: dict[str, str], count: int, scenario: str) -> tuple[list[DemoMerchant] | None, bool] | None:
    """The merchants world `make up` starts from: (the recorded merchants, False) when their simulators still serve
    them (and MERCHANTS, if given, is their number); (None, True) for a new one of MERCHANTS; None for the single
    merchant's world (no MERCHANTS and no merchants world running, or a SCENARIO named)."""
    if scenario:
        if count:
            raise SystemExit("SCENARIO names one merchant's scenario: leave it out with MERCHANTS")
        return None
    running = served(env)
    if running and (not count or count == len(running)):
        return running, False
    return (None, True) if count else None


def up(env: dict[str, str], count: int, running: list[DemoMerchant] | None) -> list[str]:
    """Start (``running`` None: a new world of ``count``) or continue the merchants world; the DAGs to run first."""
    if running is None:
        merchants = start(env, count)
        print(f"new world of {count} merchants: their simulators load their scenarios, their warehouses start empty")
        return [dag_id for m in merchants for dag_id in m.dag_ids()[:2]]
    use(env, running)
    print(
        f"continuing the world of {len(running)} merchants ({', '.join(m.id for m in running)}): their warehouses "
        "and running simulators are kept"
    )
    return []


def describe(env: dict[str, str]) -> list[str]:
    """Lines for `make up`'s output about the merchants world in ``env``."""
    running = served(env) or []
    lines = [f"  merchants file {merchants_path(env)}: the DAGs returns_recon_<id>_* of {len(running)} merchants"]
    for merchant in running:
        url = merchant.reader_url(env)
        lines.append(
            f"    {merchant.id} ({merchant.name}): simulators on 127.0.0.1:{merchant.ports[0]}-{merchant.ports[2]}"
            + (f', finance reads psql "{url}"' if url else "")
        )
    lines.append("  the simulators' webhooks are not subscribed (the demo merchants have no events DAG)")
    return lines
