"""The task code, imported once by the Airflow processes that fork task processes.

On Linux an Airflow task runs in a process forked from its executor's worker (the
LocalExecutor's workers are forked from the scheduler; a Celery worker's pool from the
Celery worker). What the forking process has imported, every task process has without
importing it again. Without this each task imported the stages itself: about a second for
the pipeline's modules, three more for Great Expectations in each quality gate, so that a
reconciliation of a small batch spent more of its time importing than working.

``airflow_local_settings`` (``plugins/``), which every Airflow process imports as it
starts, calls :func:`preload`; it imports :data:`TASK_MODULES` only in the processes that
fork tasks (``airflow celery worker``, and ``airflow scheduler`` with the LocalExecutor),
never in the API server, the DAG processor or the triggerer, which run no task code.
Nothing is imported that starts a thread or opens a connection: a fork copies neither
safely.

A task then runs the code as it was when the scheduler (or the Celery worker) started:
restart it after changing ``include/lookback/``, as after upgrading a package. Setting
``LOOKBACK_PRELOAD=0`` turns the preloading off, for a development stack whose code
changes while it runs.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import time
from collections.abc import Mapping, Sequence

log = logging.getLogger(__name__)

# The stages' modules (each imports what it needs of pandas, SQLAlchemy and the rest) and
# what the stages import only when called.
TASK_MODULES = (
    "lookback.pipeline",
    "lookback.ingest.load",
    "lookback.link.stage",
    "lookback.reconcile.stage",
    "lookback.reconcile.rectification",
    "lookback.validate.stage",
    "lookback.publish.deliver",
    "great_expectations",
    "openpyxl",
    "pypinyin",
)

# Airflow's commands whose processes fork the task processes: the scheduler only when its
# executor is the LocalExecutor (with the CeleryExecutor it runs no task).
_FORKING_COMMANDS = (("scheduler",), ("celery", "worker"))

# The modules this process has preloaded: Airflow's plugins manager imports the local
# settings again (as a plugin file), in the scheduler and in every task process forked from
# it, which already hold them; they are neither imported nor announced again.
_preloaded: list[str] = []


def forks_tasks(argv: Sequence[str], executor: str) -> bool:
    """Whether the Airflow command line ``argv`` starts a process that forks task processes,
    ``executor`` being Airflow's ``[core] executor`` (one or several, comma-separated)."""
    words = [word for word in argv[1:] if not word.startswith("-")]
    command = next((command for command in _FORKING_COMMANDS if tuple(words[: len(command)]) == command), None)
    if command == ("scheduler",):
        return "LocalExecutor" in executor
    return command is not None


def wanted(argv: Sequence[str], executor: str, environ: Mapping[str, str] = os.environ) -> bool:
    """Whether to preload: in a process that forks tasks, unless ``LOOKBACK_PRELOAD=0``."""
    switched_off = environ.get("LOOKBACK_PRELOAD", "1").strip().lower() in {"0", "false", "no", "off"}
    return not switched_off and forks_tasks(argv, executor)


def preload(argv: Sequence[str], executor: str, modules: Sequence[str] = TASK_MODULES) -> list[str]:
    """Import ``modules`` when :func:`wanted`; the names imported. A module that fails to
    import is left to the task that needs it, which then fails with the error in its log."""
    if not wanted(argv, executor):
        return []
    if _preloaded:
        return list(_preloaded)
    started = time.perf_counter()
    imported = []
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as error:  # the task importing it will say why, in its own log
            log.warning("lookback: %s not preloaded: %s", name, error)
            continue
        imported.append(name)
    _preloaded.extend(imported)
    message = f"lookback: task code preloaded in {time.perf_counter() - started:.1f} s ({', '.join(imported)})"
    if logging.getLogger().handlers:
        log.info("%s", message)
    else:  # Airflow imports its local settings before it configures logging
        sys.stderr.write(message + "\n")
    return imported
