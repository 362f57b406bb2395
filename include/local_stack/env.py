"""The environment every local command runs in: .env.example, overlaid by .env, overlaid by
the caller's own environment, plus the Airflow settings that make this folder an Airflow project."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from dotenv import dotenv_values

ROOT = Path(__file__).resolve().parents[2]
LOCAL = ROOT / ".local"


def project_env(base: dict[str, str] | None = None) -> dict[str, str]:
    base = dict(os.environ if base is None else base)
    env: dict[str, str] = {
        "AIRFLOW_HOME": str(LOCAL / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
    }
    for path in (ROOT / ".env.example", ROOT / ".env"):
        if path.exists():
            env.update({k: v for k, v in dotenv_values(path).items() if v is not None})
    env.update(base)
    paths = [str(ROOT / "include"), str(ROOT)]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    # the virtual environment's commands (airflow, pytest) come first
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env
