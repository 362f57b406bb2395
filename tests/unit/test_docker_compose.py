"""There is no Docker engine here, so the compose file is checked by reading it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from dotenv import dotenv_values

from returns_recon.connections import ALL_CONNECTIONS, OPTIONAL_CONNECTIONS, connection_problems

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
AIRFLOW_SERVICES = ["airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer"]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yaml").read_text())


def test_airflow3_services_and_backing_services(compose) -> None:
    services = compose["services"]
    for name in [*AIRFLOW_SERVICES, "airflow-init", "airflow-db", "warehouse"]:
        assert name in services, name
    assert services["airflow-apiserver"]["command"] == "api-server"
    assert services["airflow-dag-processor"]["command"] == "dag-processor"
    for name in ("simulators", "smtp-sink"):
        assert services[name]["profiles"] == ["demo"], name


def test_official_airflow_33_image_with_our_requirements() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM apache/airflow:3\.3\.\d+", dockerfile, re.M)
    assert "requirements.txt" in dockerfile
    assert "constraints.txt" in dockerfile
    # the pipeline package is installed from pyproject.toml (with its SQL files and templates), not put on a path
    assert re.search(r"^RUN pip install .*--no-deps.* /opt/project(\s|$)", dockerfile, re.M)
    assert "COPY include /opt/project/include" in dockerfile


def test_project_folders_are_mounted(compose) -> None:
    for name in AIRFLOW_SERVICES:
        volumes = compose["services"][name]["volumes"]
        for folder in ("dags", "plugins", "include"):
            assert f"./{folder}:/opt/airflow/{folder}" in volumes, (name, folder)


def test_connections_match_env_example_and_are_well_formed(compose) -> None:
    from airflow.models.connection import Connection

    env_example = {k for k in dotenv_values(ROOT / ".env.example") if k.startswith("AIRFLOW_CONN_")}
    environment = compose["x-airflow-common"]["environment"]
    in_compose = {k for k in environment if k.startswith("AIRFLOW_CONN_")}
    everything = (*ALL_CONNECTIONS, *OPTIONAL_CONNECTIONS)  # the optional ones too: the demo uses the receiver
    assert in_compose == env_example == {spec.env_var for spec in everything}
    for spec in everything:
        conn = Connection.from_json(environment[spec.env_var], conn_id=spec.conn_id)
        assert connection_problems(spec, conn) == [], spec.conn_id


def test_ports_published_on_loopback_only(compose) -> None:
    for name, service in compose["services"].items():
        for mapping in service.get("ports", []):
            assert mapping.startswith("127.0.0.1:"), (name, mapping)


def test_init_creates_the_api_pools(compose) -> None:
    from returns_recon.orchestration.defaults import POOLS

    command = " ".join(compose["services"]["airflow-init"]["command"])
    for name, slots in POOLS.items():
        assert f"airflow pools set {name} {slots} " in command, name


def test_compose_and_readme_create_the_pools_the_dags_use(compose) -> None:
    from returns_recon.orchestration.defaults import POOLS

    init = (
        " ".join(compose["services"]["airflow-init"]["command"])
        if isinstance(compose["services"]["airflow-init"]["command"], list)
        else compose["services"]["airflow-init"]["command"]
    )
    in_compose = {name: int(slots) for name, slots in re.findall(r"airflow pools set (\w+) (\d+)", init)}
    assert in_compose == POOLS
    readme = (ROOT / "README.md").read_text()
    for name, slots in POOLS.items():
        assert re.search(rf"`{name}` \({slots}( slots?)?\)", readme), name


def test_celery_profile_adds_the_broker_and_two_workers_on_the_official_image(compose) -> None:
    """`AIRFLOW_EXECUTOR=CeleryExecutor docker compose --profile celery up` (docs/executors.md); without them,
    the services and the LocalExecutor of before."""
    services = compose["services"]
    celery = {name for name, service in services.items() if service.get("profiles") == ["celery"]}
    assert celery == {"redis", "airflow-worker-1", "airflow-worker-2"}
    common = compose["x-airflow-common"]
    assert common["build"] == "."  # the Dockerfile: FROM the official apache/airflow image
    environment = common["environment"]
    assert environment["AIRFLOW__CORE__EXECUTOR"] == "${AIRFLOW_EXECUTOR:-LocalExecutor}"
    assert environment["AIRFLOW__CELERY__BROKER_URL"] == "redis://redis:6379/0"
    metadata = environment["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert environment["AIRFLOW__CELERY__RESULT_BACKEND"] == f"db+{metadata}"
    assert environment.get("AIRFLOW__API__SECRET_KEY"), "the API server's log requests to workers need one key"
    for name in ("airflow-worker-1", "airflow-worker-2"):
        worker = services[name]
        assert worker["image"] == common["image"], name
        assert worker["command"].startswith("celery worker"), name
        assert worker["hostname"] == name, name  # where the API server fetches a running task's log
        assert worker["depends_on"]["redis"]["condition"] == "service_healthy", name
        assert worker["environment"]["AIRFLOW__CELERY__BROKER_URL"] == environment["AIRFLOW__CELERY__BROKER_URL"]
        for folder in ("dags", "plugins", "include"):
            assert f"./{folder}:/opt/airflow/{folder}" in worker["volumes"], (name, folder)
    assert "ports" not in services["redis"]  # the broker is reached by the containers only
    # a service outside any profile never waits for one that only a profile starts (compose would refuse it)
    for name, service in services.items():
        if "profiles" not in service:
            assert not set(service.get("depends_on", {})) & celery, name
