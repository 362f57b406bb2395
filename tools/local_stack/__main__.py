"""``python -m local_stack <command>``: what the Makefile targets run."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from local_stack import merchants_demo, stack, world
from local_stack.env import ROOT, project_env
from local_stack.settings import api_url, reader_url, run_dir, warehouse_conn

# the go-live check first: until it has passed, postings to Cin7 Core and Sitoo are held (docs/golive.md)
DAGS = ("returns_recon_golive_check", "returns_recon_hourly", "returns_recon_daily")


def cmd_warehouse(env: dict[str, str], _: argparse.Namespace) -> int:
    stack.start_warehouse(env)
    return 0


def cmd_warehouse_url(env: dict[str, str], _: argparse.Namespace) -> int:
    print(warehouse_conn(env).libpq_url())
    return 0


def cmd_reader_url(env: dict[str, str], _: argparse.Namespace) -> int:
    print(reader_url(env))
    return 0


def cmd_demo(env: dict[str, str], args: argparse.Namespace) -> int:
    from local_stack.summary import print_summary

    if args.merchants:  # MERCHANTS=N: N merchants from a merchants file, one summary each
        if args.scenario:
            raise SystemExit("SCENARIO names one merchant's scenario: leave it out with MERCHANTS")
        return merchants_demo.demo(env, args.merchants)
    conn = stack.start_warehouse(env, fresh=True)
    scenario = Path(args.scenario) if args.scenario else stack.default_scenario(env)
    stack.use_location_map_of(env, scenario)
    stack.start_simulators(env, scenario)
    world.record(env, scenario)  # `make up` continues this world (local_stack/world.py)
    mail = stack.start_smtp_sink(env)
    stack.ensure_airflow_db(env)
    outcomes: dict[str, bool] = {}
    for dag_id in DAGS:
        print(f"\n=== airflow dags test {dag_id} ===", flush=True)
        # as `airflow dags test`, keeping each task's log where the UI (`make up`) reads it
        outcomes[dag_id] = stack.run([sys.executable, "-m", "local_stack.dag_test", dag_id], env).returncode == 0
    docs = Path(env.get("RECON_DATA_DOCS_DIR") or ROOT / ".local" / "data_docs") / "index.html"
    print_summary(conn, outcomes, str(docs) if docs.exists() else None)
    mails = sorted(mail.glob("*.eml")) if mail.exists() else []
    print(f"  exception emails: {len(mails)} saved in {mail} (open the .eml files in a mail client)")
    return 0 if all(outcomes.values()) else 1


def cmd_up(env: dict[str, str], args: argparse.Namespace) -> int:
    from local_stack import airflow_services, celery_mode, webhooks

    celery = args.executor == "celery"
    if celery:
        celery_mode.redis_server()  # missing: say so before anything starts
    # a world of several merchants (`make demo MERCHANTS=N` recorded it, or MERCHANTS=N): local_stack.merchants_demo
    merchants = merchants_demo.for_up(env, args.merchants, args.scenario)
    chosen = world.choose(env, args.scenario) if merchants is None else None
    stack.start_warehouse(env, fresh=chosen.new if chosen else False)
    metadata = celery_mode.configure(env) if celery else ""  # the metadata database, the broker, the results
    first_runs: list[str] = []
    if merchants is not None:
        first_runs = merchants_demo.up(env, args.merchants, merchants[0])
    elif chosen is not None:
        stack.use_location_map_of(env, chosen.scenario)
        if chosen.new:
            stack.start_simulators(env, chosen.scenario)
        world.record(env, chosen.scenario)
        print(chosen.describe(env))
        if chosen.new and not env.get("RECON_MERCHANTS_PATH"):  # your own merchants file: no single-merchant DAGs
            first_runs = list(DAGS[:2])
    mail = stack.start_smtp_sink(env, clear=False)
    stack.ensure_airflow_db(env)  # with a merchants file, its pools too
    logins = airflow_services.user_passwords(env)
    if first_runs:  # a new world: its first runs, as `make demo` does, so the workbench shows its exceptions
        for dag_id in first_runs:
            log_path = run_dir(env) / f"first-run-{dag_id}.log"
            log_path.parent.mkdir(parents=True, exist_ok=True)
            print(f"first run of {dag_id} (airflow dags test; output in {log_path}) ...", flush=True)
            with log_path.open("w") as log:
                done = stack.run([sys.executable, "-m", "local_stack.dag_test", dag_id], env, stdout=log, stderr=log)
            print(f"  {dag_id}: {'success' if done.returncode == 0 else 'FAILED, see ' + str(log_path)}", flush=True)
    airflow_services.start(env, celery=celery)
    hooks = webhooks.subscribe(env) if chosen else None
    where = env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]
    print(f"Airflow UI: {api_url(env)} (logs: {run_dir(env)}); `make stop` stops everything")
    if celery:
        workers = ", ".join(
            f"{worker} (tasks report hostname {celery_mode.worker_address(i)})"
            for i, worker in enumerate(celery_mode.WORKERS)
        )
        print(
            f"  CeleryExecutor: broker redis on 127.0.0.1:{celery_mode.redis_port(env)}, Celery workers {workers}; "
            f"metadata database {metadata} (docs/executors.md)"
        )
    for user, role, password, new in logins:
        if new:
            print(f"  log in as {user} ({role}) with the password {password} (shown this once; kept in {where})")
        else:
            print(f"  log in as {user} ({role}); the password is in {where} (mode 600)")
    print(f"  the exception workbench: {api_url(env)}/plugin/returns-recon (finance acts, auditor reads)")
    print(f"  mails (exception emails, failure alerts) are saved in {mail} as .eml files")
    if hooks:
        print(f"  the simulators send their webhooks to {hooks['reveni']} and {hooks['cin7']} (returns_recon_events)")
    else:
        print("\n".join(merchants_demo.describe(env)))
    return 0


def cmd_simulate(env: dict[str, str], args: argparse.Namespace) -> int:
    # no SCENARIO: the world the warehouse was loaded from, if its file is still there
    scenario = args.scenario or str(world.recorded_scenario(env) or stack.default_scenario(env))
    os.execvpe(sys.executable, [sys.executable, "-m", "recon_simulators", "--scenario", scenario], env)  # noqa: S606
    return 0


def cmd_stop(env: dict[str, str], _: argparse.Namespace) -> int:
    from local_stack import airflow_services

    stopped = airflow_services.stop(env)
    if stopped:
        print(f"stopped airflow ({', '.join(stopped)})")
    for name in ("simulators", *merchants_demo.process_names(env), "smtp_sink"):
        if stack.stop_background(env, name):
            print(f"stopped {name}")
    stack.stop_warehouse(env)
    print("stopped the embedded warehouse (if it was running)")
    return 0


def cmd_run(env: dict[str, str], args: argparse.Namespace) -> int:
    """Run any command in the project environment, e.g. `python -m local_stack run airflow ...`."""
    os.execvpe(args.argv[0], args.argv, env)  # noqa: S606 - replaces this process on purpose
    return 0


MERCHANTS_HELP = (
    f"1 to {merchants_demo.MAX_MERCHANTS}: that many demo merchants from a merchants file, each with its own "
    "scenario, simulators and warehouse (empty: the single merchant)"
)


def _merchants_count(value: str) -> int:
    try:
        return merchants_demo.count_arg(value)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_stack", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("warehouse", help="start the warehouse and apply migrations").set_defaults(fn=cmd_warehouse)
    sub.add_parser("warehouse-url", help="print the warehouse's libpq URL").set_defaults(fn=cmd_warehouse_url)
    sub.add_parser("reader-url", help="print finance's libpq URL (recon_reader)").set_defaults(fn=cmd_reader_url)
    demo = sub.add_parser("demo", help="run the main job end to end on embedded defaults")
    demo.add_argument("--scenario", default="", help="scenario file for the simulators")
    demo.add_argument("--merchants", default="", type=_merchants_count, help=MERCHANTS_HELP)
    demo.set_defaults(fn=cmd_demo)
    up = sub.add_parser("up", help="Airflow UI with our DAGs on http://127.0.0.1:$AIRFLOW__API__PORT")
    up.add_argument("--scenario", default="", help="scenario file for the simulators")
    up.add_argument(
        "--executor",
        default="",
        type=lambda name: name.strip().lower().removesuffix("executor"),  # CeleryExecutor too
        choices=("", "local", "celery"),
        help="celery: the CeleryExecutor, a Redis broker and two Celery workers (default: the LocalExecutor)",
    )
    up.add_argument("--merchants", default="", type=_merchants_count, help=MERCHANTS_HELP)
    up.set_defaults(fn=cmd_up)
    simulate = sub.add_parser("simulate", help="serve the simulators in the foreground")
    simulate.add_argument("--scenario", default="", help="scenario file (default: a fresh demo scenario)")
    simulate.set_defaults(fn=cmd_simulate)
    sub.add_parser("stop", help="stop everything this project started").set_defaults(fn=cmd_stop)
    run = sub.add_parser("run", help="run a command in the project environment")
    run.add_argument("argv", nargs=argparse.REMAINDER)
    run.set_defaults(fn=cmd_run)
    args = parser.parse_args(argv)
    os.chdir(ROOT)
    with stack.stop_on_interrupt():  # an interrupted command stops what it started
        return args.fn(project_env(), args)


if __name__ == "__main__":
    sys.exit(main())
