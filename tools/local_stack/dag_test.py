"""``python -m local_stack.dag_test DAG_ID [options of airflow dags test]``: ``airflow dags test`` that also
keeps each task's log where the Airflow UI reads it.

``airflow dags test`` (what `make demo` runs) executes every task inside its own process and prints the
task's log to the terminal only, so its runs show in the UI (`make up`) with empty logs. This wraps the
one function that runs a task (``airflow.sdk.definitions.dag._run_task``, Airflow 3.3): while a task runs,
everything written to stdout and stderr (every logger, ``print``, subprocesses) still reaches the terminal
and is also appended, colour codes removed, to the task's log file under ``[logging] base_log_folder``,
at the path the UI looks up (the run's log filename template)."""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_COLOUR = re.compile(rb"\x1b\[[0-9;]*[A-Za-z]")


def _copy(source: int, terminal: int, log: Any, lock: threading.Lock) -> None:
    with os.fdopen(source, "rb", buffering=0) as pipe:
        while chunk := pipe.read(65536):
            os.write(terminal, chunk)
            with lock:
                log.write(_COLOUR.sub(b"", chunk))
                log.flush()


@contextlib.contextmanager
def tee_to(path: Path) -> Iterator[None]:
    """Copy what this process writes to fd 1 and 2 into ``path`` (appended) while the block runs."""
    sys.stdout.flush()
    sys.stderr.flush()
    lock = threading.Lock()
    with path.open("ab") as log:
        copies, saved = [], []
        for fd in (1, 2):
            read_end, write_end = os.pipe()
            saved.append(os.dup(fd))
            thread = threading.Thread(target=_copy, args=(read_end, saved[-1], log, lock), daemon=True)
            thread.start()
            os.dup2(write_end, fd)
            os.close(write_end)
            copies.append(thread)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            for fd, original in zip((1, 2), saved, strict=True):
                os.dup2(original, fd)  # closes the pipe's last write end: the copy sees its end
            for thread in copies:
                thread.join(timeout=10)  # a subprocess the task left running may hold the pipe open
            for original in saved:
                os.close(original)


def task_log_path(ti: Any) -> Path:
    """The file the UI reads for ``ti``'s current try (created with Airflow's own permissions)."""
    from airflow.configuration import conf
    from airflow.sdk.log import init_log_file
    from airflow.utils.log.file_task_handler import FileTaskHandler

    relative = FileTaskHandler(base_log_folder=conf.get("logging", "base_log_folder"))._render_filename(
        ti, ti.try_number
    )
    return init_log_file(relative)


def main() -> None:
    import airflow.sdk.definitions.dag as dag_module
    from airflow.__main__ import main as airflow_main

    run_task = dag_module._run_task

    def run_task_keeping_its_log(*, ti: Any, **kwargs: Any) -> Any:
        with tee_to(task_log_path(ti)):
            return run_task(ti=ti, **kwargs)

    dag_module._run_task = run_task_keeping_its_log
    sys.argv = ["airflow", "dags", "test", *sys.argv[1:]]
    airflow_main()


if __name__ == "__main__":
    main()
