"""Policy: the DAG tasks hold no logic. Each @task in returns_recon/orchestration/tasks.py resolves its
Airflow inputs and calls the function of returns_recon.steps of its own name; the integration tests'
pipeline (tests/fixtures/pipeline.py ``cycle``) calls the same steps, in the DAG's order, and none of the
functions the steps wrap. So the tests run what the DAGs run. Read with ``ast``: nothing is imported."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from returns_recon import steps

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
TASKS = ROOT / "include" / "returns_recon" / "orchestration" / "tasks.py"
STRUCTURE = ROOT / "include" / "returns_recon" / "orchestration" / "structure.py"
PIPELINE = ROOT / "tests" / "fixtures" / "pipeline.py"

STEPS = {name for name, f in inspect.getmembers(steps, inspect.isfunction) if f.__module__ == steps.__name__}
# what a wrapper may import besides the steps: the Airflow glue that turns connections into inputs, the
# settings, and the SMTP sender (the SMTP provider's hook)
WRAPPER_IMPORTS = {
    "returns_recon.settings": {"load_settings"},
    "returns_recon.notify.digest": {"smtp_sender"},
}
LOGIC = (
    ast.For,
    ast.AsyncFor,
    ast.While,
    ast.If,
    ast.IfExp,
    ast.Try,
    ast.Match,
    ast.BoolOp,
    ast.Raise,
    ast.ListComp,
    ast.SetComp,
    ast.DictComp,
    ast.GeneratorExp,
)
# the DAG tasks the cycle leaves out: the preflight (the fixtures migrate the warehouse and give the
# clients) and the mails (tests/integration/test_emails.py sends them)
NOT_IN_CYCLE = {"check_connections", "migrate_warehouse", "probe_apis", "send_exception_emails"}
# the cycle's own go-live part (test-specific: the go-live check is a DAG of its own)
CYCLE_GOLIVE = {"held_systems", "accounts_of", "run_golive_check"}


def _is_task(function: ast.FunctionDef) -> bool:
    for decorator in function.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        if isinstance(target, ast.Name) and target.id == "task":
            return True
    return False


def _steps_call(node: ast.AST) -> str | None:
    """``steps.NAME(...)``: NAME."""
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "steps"
    ):
        return node.func.attr
    return None


def wrapper_violations(source: str) -> list[str]:
    """Every @task calls ``steps.<its own name>``, imports nothing else of the package but the input
    resolvers, and has no branches, loops, handlers or comprehensions."""
    found: list[str] = []
    tree = ast.parse(source)
    helpers = {f.name for f in tree.body if isinstance(f, ast.FunctionDef) and f.name.startswith("_")}
    tasks = [f for f in tree.body if isinstance(f, ast.FunctionDef) and _is_task(f)]
    if not tasks:
        found.append("no @task functions found")
    for function in tasks:
        name = function.name
        allowed_names = set(helpers)
        body = [node for statement in function.body for node in ast.walk(statement)]  # not the decorator
        for node in body:
            if isinstance(node, ast.ImportFrom):
                module = node.module or ""
                for alias in node.names:
                    if (module, alias.name) == ("returns_recon", "steps"):
                        continue
                    if module.startswith("returns_recon.orchestration") or alias.name in WRAPPER_IMPORTS.get(
                        module, set()
                    ):
                        allowed_names.add(alias.asname or alias.name)
                        continue
                    found.append(f"{name}: imports {module}.{alias.name} (call a function of returns_recon.steps)")
            elif isinstance(node, ast.Import):
                found.append(f"{name}: imports {[a.name for a in node.names]}")
            elif isinstance(node, LOGIC):
                found.append(f"{name}:{node.lineno}: {type(node).__name__} in a wrapper (move it to steps.{name})")
        calls = [n for n in body if isinstance(n, ast.Call)]
        called_steps = [_steps_call(c) for c in calls if _steps_call(c)]
        if called_steps != [name]:
            found.append(f"{name}: calls steps {called_steps}, not once steps.{name}")
        if name not in STEPS:
            found.append(f"{name}: returns_recon.steps has no function {name}")
        for call in calls:
            func = call.func
            if _steps_call(call):
                continue
            if isinstance(func, ast.Name) and func.id in allowed_names:
                continue
            if isinstance(func, ast.Attribute) and _steps_call(func.value):
                continue  # the step's result turned into the task's XCom (``.as_dict()``)
            found.append(f"{name}:{call.lineno}: calls {ast.unparse(func)} (only input resolvers and the step)")
    return found


def dag_task_order(builder: str = "build") -> list[str]:
    """The tasks ``structure.<builder>`` chains, in its order (``build``: the batch DAGs, ``build_events``)."""
    tree = ast.parse(STRUCTURE.read_text())
    build = next(f for f in tree.body if isinstance(f, ast.FunctionDef) and f.name == builder)
    names = []
    for node in ast.walk(build):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr == "override" and isinstance(func.value, ast.Name):
            names.append((node.lineno, node.col_offset, func.value.id))
        elif isinstance(func, ast.Name) and func.id in STEPS:
            names.append((node.lineno, node.col_offset, func.id))
    return [name for _, _, name in sorted(names)]


def cycle_violations(source: str, name: str = "cycle", builder: str = "build") -> list[str]:
    """``cycle`` (or ``name``) calls the steps of the DAG's tasks (``structure.<builder>``) in the DAG's order, and no
    function the steps wrap."""
    found: list[str] = []
    tree = ast.parse(source)
    package_names = {
        alias.asname or alias.name
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("returns_recon")
        for alias in node.names
    }
    cycle = next((f for f in tree.body if isinstance(f, ast.FunctionDef) and f.name == name), None)
    if cycle is None:
        return [f"no {name}() function"]
    calls = sorted((n for n in ast.walk(cycle) if isinstance(n, ast.Call)), key=lambda n: (n.lineno, n.col_offset))
    order = [_steps_call(c) for c in calls if _steps_call(c)]
    expected = [t for t in dag_task_order(builder) if t not in NOT_IN_CYCLE]
    if order != expected:
        found.append(f"{name} calls the steps {order}; the DAG runs {expected}")
    for call in calls:
        root = call.func
        while isinstance(root, ast.Attribute):
            root = root.value
        if not isinstance(root, ast.Name) or root.id not in package_names | {"returns_recon"}:
            continue
        if root.id == "steps" or (isinstance(call.func, ast.Name) and call.func.id in CYCLE_GOLIVE):
            continue
        found.append(f"cycle:{call.lineno}: calls {ast.unparse(call.func)}, not the step that wraps it")
    return found


def test_the_dag_runs_every_step_the_cycle_expects() -> None:
    order = dag_task_order()
    assert order[:4] == ["check_connections", "migrate_warehouse", "probe_apis", "load_location_map"]
    assert order.index("data_quality") < order.index("reconcile_and_publish") < order.index("post_corrections")
    assert set(order) <= STEPS


def test_every_task_wrapper_only_resolves_inputs_and_calls_its_step() -> None:
    assert wrapper_violations(TASKS.read_text()) == []


def test_the_integration_cycle_calls_the_steps_in_the_dag_order() -> None:
    assert cycle_violations(PIPELINE.read_text()) == []


def test_the_events_cycle_calls_the_steps_in_the_events_dag_order() -> None:
    order = dag_task_order("build_events")
    assert order == ["read_events", "data_quality", "reconcile_events", "post_event_corrections"]
    assert cycle_violations(PIPELINE.read_text(), "events_cycle", "build_events") == []


def test_the_policy_catches_logic_in_a_wrapper() -> None:
    bad = """
@task(pool=CIN7_POOL)
def extract_cin7(mode: str) -> list[dict]:
    from returns_recon.extract import run
    from returns_recon.orchestration.connections import api_clients, warehouse_connection

    with warehouse_connection() as conn:
        summaries = run.extract_cin7(conn, api_clients(), _run_id(), mode, _settings(), mode == "daily")
    return [s.as_dict() for s in summaries]
"""
    found = wrapper_violations(bad)
    assert any("imports returns_recon.extract.run" in f for f in found), found
    assert any("ListComp" in f for f in found), found
    assert any("not once steps.extract_cin7" in f for f in found), found


def test_the_policy_catches_a_cycle_that_skips_the_steps() -> None:
    bad = PIPELINE.read_text().replace(
        "        steps.extract_cin7(conn, clients, run_id, mode, settings)\n",
        "        extract_cin7(conn, clients, run_id, mode, settings, True)\n",
    )
    bad = bad.replace(
        "from returns_recon import steps\n",
        "from returns_recon import steps\nfrom returns_recon.extract.run import extract_cin7\n",
    )
    assert bad != PIPELINE.read_text()
    found = cycle_violations(bad)
    assert any("calls extract_cin7, not the step" in f for f in found), found
    assert any("the DAG runs" in f for f in found), found
