"""Airflow's local settings hook: every Airflow process imports this module as it starts
(the plugins folder is on its path). The processes that fork task processes (a Celery
worker, and the scheduler when its LocalExecutor's workers fork each task) import the task
code here once, so that no task imports it again (``lookback.preload``: about a second per
task, four in a quality gate). ``LOOKBACK_PRELOAD=0`` turns it off; restart the scheduler
(or the Celery workers) after changing ``include/lookback/``.

It defines no cluster policy: ``__all__`` is empty.
"""

from __future__ import annotations

import sys

from lookback.preload import preload

__all__: list[str] = []


def _executor() -> str:
    """Airflow's ``[core] executor``: Airflow imports this module once its configuration is read."""
    from airflow.configuration import conf

    return str(conf.get("core", "executor", fallback="LocalExecutor"))


preload(sys.argv, _executor())
