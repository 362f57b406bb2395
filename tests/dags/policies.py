"""DAG policies, as plain checks over a DAG object (Mozilla telemetry-airflow style).

Each returns the list of violations, so the policy itself can be tested against a DAG that
breaks it.
"""

from __future__ import annotations

import ast
from pathlib import Path

REQUIRED_TAG = "returns-recon"
MIN_RETRIES = 1
DEFAULT_POOL = "default_pool"


def dag_violations(dag, pools: frozenset[str] = frozenset()) -> list[str]:
    """``pools``: the pools the package declares (returns_recon.orchestration.defaults.POOLS); a task in any
    other pool would wait forever for a pool nobody creates."""
    found: list[str] = []
    if not dag.tags:
        found.append(f"{dag.dag_id}: has no tags")
    elif REQUIRED_TAG not in dag.tags:
        found.append(f"{dag.dag_id}: lacks the '{REQUIRED_TAG}' tag")
    if not (dag.doc_md or "").strip():
        found.append(f"{dag.dag_id}: has no doc_md")
    if dag.max_active_runs != 1:
        found.append(f"{dag.dag_id}: posts to external systems but max_active_runs={dag.max_active_runs}")
    for task in dag.tasks:
        if not task.owner or task.owner.lower() == "airflow":
            found.append(f"{dag.dag_id}.{task.task_id}: has no owner")
        if (task.retries or 0) < MIN_RETRIES:
            found.append(f"{dag.dag_id}.{task.task_id}: retries={task.retries}, needs >= {MIN_RETRIES}")
        if task.pool not in {DEFAULT_POOL, *pools}:
            found.append(f"{dag.dag_id}.{task.task_id}: pool {task.pool!r} is not one the package declares")
    return found


def source_violations(path: Path) -> list[str]:
    """`catchup` must be set explicitly in every DAG declaration (its default is a config value)."""
    tree = ast.parse(path.read_text())
    found: list[str] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
        if name in {"dag", "DAG"} and "catchup" not in {kw.arg for kw in node.keywords}:
            found.append(f"{path.name}:{node.lineno}: DAG declared without an explicit catchup")
    return found
