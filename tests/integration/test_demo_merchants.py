"""`make demo MERCHANTS=2` (issue 22 item 5): two merchants, each on a scenario, simulators and warehouse of its own,
run through a merchants file under the real Airflow (`airflow dags test`); one summary per merchant; each merchant's
mails and reader stay its own; `make stop` stops everything, the merchants' simulators too."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from email import policy
from email.parser import BytesParser
from pathlib import Path

import psutil
import psycopg
import pytest
from dotenv import dotenv_values

from local_stack.airflow_services import port_taken
from local_stack.simulators import free_port
from local_stack.warehouse import EmbeddedWarehouse
from recon_simulators.scenario import read_header_and_records

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
STACK = [sys.executable, "-m", "local_stack"]
PORT_VARIABLES = (
    "AIRFLOW__API__PORT",
    "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT",
    "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT",
    "RECON_WAREHOUSE_PORT",
    "SIM_REVENI_PORT",
    "SIM_CIN7_PORT",
    "SIM_SITOO_PORT",
    "SIM_SMTP_PORT",
)
SIM_VARIABLES = ("SIM_REVENI_PORT", "SIM_CIN7_PORT", "SIM_SITOO_PORT")
RETURNS = 60  # per merchant (DEMO_MERCHANT_RETURNS)


def _sim_port() -> int:
    """A free port whose +10 and +20 (the two merchants' simulators) are free too."""
    while True:
        port = free_port()
        if port + 20 < 65536 and not any(port_taken(port + step) for step in (10, 20)):
            return port


def _pgid(process: psutil.Process) -> int | None:
    try:
        return os.getpgid(process.pid)
    except OSError:
        return None


def _listening(ports: list[int]) -> set[int]:
    return {c.laddr.port for c in psutil.net_connections("inet") if c.status == "LISTEN" and c.laddr.port in ports}


@pytest.fixture
def demo_stack(tmp_path: Path) -> Iterator[tuple[dict[str, str], Path]]:
    """A user's environment with every port moved and a local folder of its own; `stop` afterwards leaves nothing
    running: no process of the groups it started, no port listened on (the merchants' simulators' included)."""
    example = dotenv_values(ROOT / ".env.example", interpolate=False)
    env = {k: v for k, v in os.environ.items() if k not in example and not k.startswith("AIRFLOW__CORE__EXEC")}
    ports = {variable: str(_sim_port() if variable in SIM_VARIABLES else free_port()) for variable in PORT_VARIABLES}
    local = Path(tempfile.mkdtemp(prefix="recon-test-merchants-"))  # not under basetemp (mode 700): see test_make_up
    local.chmod(0o755)
    env.update(ports)
    env.update(
        {
            "AIRFLOW_HOME": str(tmp_path / "airflow"),
            "RECON_LOCAL_DIR": str(local),
            "RECON_DATA_DOCS_DIR": str(tmp_path / "docs"),
            "DEMO_MERCHANT_RETURNS": str(RETURNS),
            "RECON_TASK_RETRIES": "0",
        }
    )
    every_port = [int(p) for p in ports.values()] + [int(ports[v]) + step for v in SIM_VARIABLES for step in (10, 20)]
    try:
        yield env, local
    finally:
        groups = {int(path.read_text().split()[0]) for path in (local / "run").glob("*.pid")}
        stop = subprocess.run([*STACK, "stop"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=180)
        left = [p for p in psutil.process_iter() if _pgid(p) in groups]
        listened = _listening(every_port)
        shutil.rmtree(local, ignore_errors=True)
    assert stop.returncode == 0, stop.stdout + stop.stderr
    assert "stopped simulators-m1" in stop.stdout, stop.stdout
    assert "stopped simulators-m2" in stop.stdout, stop.stdout
    assert not left, f"still running after stop: {left}"
    assert not listened, f"still listened on after stop: {listened}"


def _section(output: str, merchant: str) -> str:
    """The summary of ``merchant`` (from its heading to the next rule after its body)."""
    start = output.index(f"Returns reconciliation demo: summary of {merchant}")
    end = output.index("mails of", start)
    return output[start : output.index("\n", end)]


def _scenario_returns(path: Path) -> set[str]:
    _, records = read_header_and_records(path)
    return {record["id"] for kind, record in records if kind == "reveni.returns"}


def test_demo_with_two_merchants(demo_stack) -> None:
    env, local = demo_stack
    # the Makefile passes MERCHANTS on (and nothing changes without it)
    dry = subprocess.run(["make", "-n", "demo", "MERCHANTS=2"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert '-m local_stack demo --scenario "" --merchants "2"' in dry.stdout, dry.stdout + dry.stderr
    dry = subprocess.run(["make", "-n", "demo"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert '-m local_stack demo --scenario "" --merchants ""' in dry.stdout, dry.stdout + dry.stderr

    started = time.monotonic()
    demo = subprocess.run(
        [*STACK, "demo", "--merchants", "2"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=480
    )
    took = time.monotonic() - started
    output = demo.stdout
    assert demo.returncode == 0, output[-4000:] + demo.stderr[-4000:]
    print(f"make demo MERCHANTS=2 with {RETURNS} returns each: {took:.0f} s")

    # one summary per merchant, headed by its name, its three runs succeeded on its own warehouse database
    headings = re.findall(r"Returns reconciliation demo: summary of (Demo Merchant \d) \((m\d),", output)
    assert headings == [("Demo Merchant 1", "m1"), ("Demo Merchant 2", "m2")], headings
    readers = {}
    for name, merchant in headings:
        summary = _section(output, name)
        for kind in ("golive_check", "hourly", "daily"):
            assert re.search(rf"returns_recon_{merchant}_{kind}\s+succeeded", summary), summary
        assert re.search(rf"warehouse\s+127\.0\.0\.1:{env['RECON_WAREHOUSE_PORT']}/recon_{merchant}\n", summary)
        readers[merchant] = re.search(r'psql "(postgresql://recon_reader_\w+:[^"]+)"', summary).group(1)
        assert f"recon_reader_{merchant}:" in readers[merchant]

    # each warehouse holds its own scenario's returns: every one of them (staged or quarantined), none of the other's
    scenarios = {m: _scenario_returns(local / "scenarios" / f"demo-{m}.json") for m in ("m1", "m2")}
    assert len(scenarios["m1"]) == len(scenarios["m2"]) == RETURNS
    assert not scenarios["m1"] & scenarios["m2"], "two scenarios of their own"
    server = EmbeddedWarehouse(local / "warehouse" / "data", port=int(env["RECON_WAREHOUSE_PORT"]))
    for merchant, other in (("m1", "m2"), ("m2", "m1")):
        with psycopg.connect(server.superuser_dsn(f"recon_{merchant}")) as db:
            extracted = {
                key
                for (key,) in db.execute(
                    """SELECT natural_key FROM raw.api_records WHERE source = 'reveni' AND entity = 'returns'
                       UNION SELECT natural_key FROM raw.quarantine WHERE source = 'reveni' AND entity = 'returns'"""
                )
            }
            reconciled = {
                key for (key,) in db.execute("SELECT DISTINCT return_id FROM recon.fct_return_reconciliation")
            }
        assert extracted == scenarios[merchant], (merchant, len(extracted), len(scenarios[merchant]))
        assert reconciled, merchant
        assert reconciled <= scenarios[merchant], merchant
        assert not reconciled & scenarios[other], merchant

    # each merchant's mails: to its own people, its name in every subject
    mails = []
    for path in sorted((local / "mail").glob("*.eml")):
        message = BytesParser(policy=policy.default).parsebytes(path.read_bytes(), headersonly=True)
        mails.append((str(message["Subject"]), str(message["To"])))
    for name, merchant in headings:
        theirs = [(subject, to) for subject, to in mails if to.endswith(f"@{merchant}.example")]
        assert theirs, f"no mail of {name}: {mails}"
        assert all(subject.startswith(f"[returns recon · {name}]") for subject, _ in theirs), theirs
        assert re.search(rf"mails of {name}: {len(theirs)} saved in {re.escape(str(local / 'mail'))}", output)
    assert all(to.endswith(("@m1.example", "@m2.example")) for _, to in mails), mails  # no mail to anyone else

    # each merchant's reader logs in to its own warehouse and reads recon there; it cannot connect to the other's
    for merchant, other in (("m1", "m2"), ("m2", "m1")):
        with psycopg.connect(readers[merchant]) as conn:
            assert conn.execute("SELECT count(*) FROM recon.exceptions").fetchone()[0] > 0
        with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
            psycopg.connect(readers[merchant].replace(f"/recon_{merchant}?", f"/recon_{other}?")).close()
