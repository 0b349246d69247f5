"""A quality gate validated in a worker process of its own, beside the stage that follows
it (``lookback run``: the standardise gate beside the link).

The standardise gate reads the staged rows and writes only its outcomes and Data Docs; the
link reads the same rows and writes nothing until it stores what it found. So the two go
at once: the gate in a worker forked once the rows are staged, the link here, on the
machine's other core. The link asks for the gate's verdict before it writes anything
(:meth:`GateBeside.verdict` as its ``before_writing``): a batch whose staged rows fail the
gate gets no links and no keys, and its error is the gate's, as when the gate runs first. A
link that fails on its own while the gate is out waits for the gate, so that a failed gate
is still what the run reports (the link's error as its cause). The worker ends with its
verdict, and what it held with it: at a million persons the link's peak comes after.

The later gates guard stages that write from their start (the look-back registers its
run), so the run waits for them: they are validated in its own process.

No worker where it would not pay or could not work: a machine of one core, a warehouse only
this process reaches (SQLite in memory), no ``fork`` (the package's objects are inherited,
not imported again), or a daemonic process (a task runner's worker may have no children).
The gate is then validated here, when its verdict is asked for.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from types import TracebackType
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import make_url

from lookback.errors import LookbackError, QualityGateError
from lookback.processes import LogRelay, forward_logging
from lookback.retry import retry_stage
from lookback.warehouse import Warehouse

if TYPE_CHECKING:
    from lookback.run import Run
    from lookback.validate.stage import QualityReport

log = logging.getLogger(__name__)

# The warehouse a worker validates in: the one this process had when it forked the worker.
_warehouse: Warehouse | None = None


def validated(run: Run, warehouse: Warehouse, stage: str) -> QualityReport:
    """A stage of the run's batch validated: the outcomes stored, the Data Docs built in the
    run's work folder; nothing raised for failed expectations (see :func:`judged`)."""
    from lookback.publish.run_files import work_folder
    from lookback.validate.stage import validate_stage

    return validate_stage(warehouse, run.batch, stage, run.needs_as_of(), work_folder(run.out), run_id=run.run_id)


def judged(report: QualityReport) -> QualityReport:
    """The report logged; ``QualityGateError`` naming each critical expectation that failed."""
    from lookback.validate.stage import enforce

    log.info("%s", report.summary())
    enforce(report)
    return report


def worker_possible(warehouse_url: str) -> bool:
    """Whether a gate can go to a worker and gain by it (see the module's text)."""
    url = make_url(warehouse_url)
    if url.get_backend_name() == "sqlite" and (not url.database or url.database == ":memory:"):
        return False
    return (
        (os.cpu_count() or 1) > 1
        and "fork" in multiprocessing.get_all_start_methods()
        and not multiprocessing.current_process().daemon
    )


class GateBeside:
    """One gate of a run, validated in a worker (when there is one) from the moment this is
    entered as a context manager; :meth:`verdict` waits for it. Leaving ends the worker;
    leaving on an error before the verdict waits for the gate first, and a gate that failed
    is raised instead (the error as its cause)."""

    def __init__(self, run: Run, warehouse: Warehouse, stage: str, worker: bool | None = None) -> None:
        self._run, self._warehouse, self._stage = run, warehouse, stage
        self._worker = worker_possible(warehouse.url) if worker is None else worker
        self._pool: ProcessPoolExecutor | None = None
        self._relay: LogRelay | None = None
        self._records: Any = None
        self._out: Future[QualityReport] | None = None
        self._report: QualityReport | None = None

    def __enter__(self) -> GateBeside:
        if self._worker:
            self._out = self._started().submit(_validate_in_worker, self._run, self._stage)
            # The worker is forked by the first submit: the thread that logs its lines starts
            # after, so that no thread of this process is copied into it.
            assert self._relay is not None
            self._relay.start()
        return self

    def verdict(self) -> QualityReport:
        """The gate, once validated (here, when no worker validates it): its report logged,
        or ``QualityGateError`` when a critical expectation failed. Asked again, the same
        answer, logged once."""
        from lookback.validate.stage import enforce

        if self._report is not None:
            enforce(self._report)
            return self._report
        stage, warehouse = self._stage, self._warehouse
        if self._out is None:
            report = retry_stage(f"validate {stage}", warehouse, lambda: validated(self._run, warehouse, stage))
        else:
            try:
                report = _result(self._out, stage, self._run.batch)
            finally:
                self._out = None
                self.close()
        self._report = report
        return judged(report)

    def close(self) -> None:
        """The worker ended (its last lines logged), its gate given up if still out."""
        pool, self._pool = self._pool, None
        try:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
        finally:
            if self._relay is not None:
                self._relay.stop()
                self._relay = None
            if self._records is not None:
                self._records.close()
                self._records.cancel_join_thread()  # this process never writes to it
                self._records = None

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        try:
            if isinstance(error, Exception) and self._report is None:
                try:
                    self.verdict()
                except QualityGateError as failed:
                    raise failed from error
                except Exception as problem:  # the gate could not say: the stage's own error stands
                    log.warning(
                        "quality gate %s of batch %s gave no verdict: %s", self._stage, self._run.batch, problem
                    )
        finally:
            self.close()

    def _started(self) -> ProcessPoolExecutor:
        """The worker: it inherits this process's warehouse and keeps nothing of its
        connections, and its log lines are logged here."""
        context = multiprocessing.get_context("fork")
        self._records = context.Queue()
        level = logging.getLogger("lookback").getEffectiveLevel()
        self._pool = ProcessPoolExecutor(
            max_workers=1,
            mp_context=context,
            initializer=_worker_started,
            initargs=(self._records, level, os.getpid(), self._warehouse),
        )
        self._relay = LogRelay(self._records, "lookback-gate-log")
        return self._pool


def _worker_started(records: Any, level: int, parent: int, warehouse: Warehouse) -> None:
    """In the worker, first: it ends with this process, logs through it, leaves this
    process's connections alone (it opens its own) and keeps what it inherited out of the
    collector's passes (a pass writes to every object it visits, copying their pages)."""
    global _warehouse
    forward_logging(records, level, parent)
    warehouse.engine.dispose(close=False)
    _warehouse = warehouse
    gc.freeze()


def _validate_in_worker(run: Run, stage: str) -> QualityReport:
    """In the worker: a gate validated, as :func:`validated` does here."""
    warehouse = _warehouse
    assert warehouse is not None, "the worker was started with its warehouse"
    return retry_stage(f"validate {stage}", warehouse, lambda: validated(run, warehouse, stage))


def _result(future: Future[QualityReport], stage: str, batch_id: str) -> QualityReport:
    """The worker's report, or its error; a worker that ended without either (killed, out of
    memory) is named as such."""
    try:
        return future.result()
    except BrokenProcessPool as error:
        raise LookbackError(
            f"batch {batch_id}: the worker process validating its {stage} gate ended abruptly ({error})"
        ) from error
