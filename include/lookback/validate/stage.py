"""Validate a stage of a batch with its Great Expectations suites, record what was found,
build the Data Docs, and stop the run on a failed critical expectation.

Suites are files, ``expectations/<stage>.<dataset>.json`` in the Great Expectations 1.x
format; each expectation carries its ``severity``: ``critical`` (a failure stops the run
before anything is published) or ``warning`` (reported and published with the data). The
validated tables come from ``lookback.validate.datasets``.

Great Expectations is imported only when a stage is validated (it takes seconds to import
and logs hundreds of lines at INFO); its loggers are turned down to warnings here. Its
project for a run (suites, results) lives in the run's folder under ``quality/gx`` and its
HTML report in ``data_docs/``, so the report of every stage of the run is one site.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete

from lookback.errors import ConfigError, QualityGateError
from lookback.faults import fault_point
from lookback.paths import include_dir
from lookback.validate.datasets import ValidatedTable, census_table, link_table, source_table
from lookback.validate.docs import localise_site
from lookback.warehouse import Warehouse

log = logging.getLogger(__name__)

SEVERITIES = ("critical", "warning")
STAGES = ("standardise", "link", "publish")
EXAMPLES = 5
_GX_LOGGERS = ("great_expectations", "great_expectations.data_context.types.base")
_SITE = "lookback"
_SEVERITY_WORDS = {"critical": "[critical] ", "warning": "[warning] "}
_UNEXPECTED_INDICES = "compute_unexpected_pandas_indices"  # see _first_unexpected_rows_only


def suites_dir() -> Path:
    """``expectations/`` beside ``include/`` (``LOOKBACK_EXPECTATIONS_DIR`` overrides it)."""
    configured = os.environ.get("LOOKBACK_EXPECTATIONS_DIR")
    return Path(configured) if configured else include_dir().parent / "expectations"


@dataclass(frozen=True)
class SuiteFile:
    path: Path
    stage: str
    dataset: str
    document: dict[str, Any]


def read_suite(path: Path) -> SuiteFile:
    """Read and check one suite file: named ``<stage>.<dataset>.json``, every expectation
    with a severity of critical or warning. Errors name the file and the expectation."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ConfigError(f"{path}: not a readable JSON suite: {error}") from error
    stage, _, dataset = path.name.removesuffix(".json").partition(".")
    if stage not in STAGES or not dataset:
        raise ConfigError(f"{path}: a suite file is named <stage>.<dataset>.json, stage one of {', '.join(STAGES)}")
    if document.get("name") != f"{stage}.{dataset}":
        raise ConfigError(f"{path}: name must be {stage}.{dataset!r}, as the file is named")
    expectations = document.get("expectations")
    if not isinstance(expectations, list) or not expectations:
        raise ConfigError(f"{path}: expectations must be a non-empty list")
    for index, expectation in enumerate(expectations):
        if not isinstance(expectation, dict) or not expectation.get("type"):
            raise ConfigError(f"{path}: expectations[{index}] needs a type")
        if expectation.get("severity") not in SEVERITIES:
            raise ConfigError(
                f"{path}: expectations[{index}] ({expectation['type']}): severity must be critical or warning"
            )
    return SuiteFile(path=path, stage=stage, dataset=dataset, document=document)


def stage_suites(stage: str, folder: Path | None = None) -> list[SuiteFile]:
    if stage not in STAGES:
        raise ConfigError(f"unknown stage {stage!r} (stages: {', '.join(STAGES)})")
    return [read_suite(path) for path in sorted((folder or suites_dir()).glob(f"{stage}.*.json"))]


@dataclass(frozen=True)
class Outcome:
    """One expectation of one suite on one batch."""

    suite: str
    expectation: str  # the expectation's type
    column: str | None
    severity: str
    success: bool
    description: str
    element_count: int | None = None
    unexpected_count: int | None = None
    observed: str = ""
    examples: tuple[str, ...] = ()
    error: str | None = None  # the expectation could not be evaluated

    def line(self) -> str:
        """``standardise.registry: expect_column_values_to_be_in_set(identity_number_valid) failed on 975 of
        20,023 rows — …; e.g. row 12 王伟 431224********1238``"""
        target = f"{self.expectation}({self.column})" if self.column else self.expectation
        description = self.description.rstrip("。.")
        verdict = "passed" if self.success else "failed"
        if self.error:
            detail = f": could not be evaluated: {self.error}"
        elif self.unexpected_count is not None and self.element_count is not None:
            detail = f" on {self.unexpected_count:,} of {self.element_count:,} rows"
        elif self.observed:
            detail = f" (observed {self.observed})"
        else:
            detail = ""
        examples = f"; e.g. {', '.join(self.examples)}" if self.examples and not self.success else ""
        words = f" — {description}" if description else ""
        return f"{self.suite}: {target} {verdict}{detail}{words}{examples}"

    def as_row(self, batch_id: str, stage: str, position: int, validated_at: datetime) -> dict[str, Any]:
        return {
            "batch_id": batch_id,
            "stage": stage,
            "suite": self.suite,
            "position": position,
            "expectation": self.expectation,
            "column_name": self.column,
            "severity": self.severity,
            "success": self.success,
            "element_count": self.element_count,
            "unexpected_count": self.unexpected_count,
            "observed": self.observed or None,
            "examples": "\n".join(self.examples) or None,
            "description": self.description,
            "validated_at": validated_at,
        }


@dataclass(frozen=True)
class QualityReport:
    batch_id: str
    stage: str
    outcomes: tuple[Outcome, ...]
    skipped: tuple[str, ...] = ()  # suites whose optional source was not delivered
    data_docs: Path | None = None
    seconds: float = 0.0
    rows: dict[str, int] = field(default_factory=dict)  # suite → rows validated

    @property
    def critical_failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.success and o.severity == "critical"]

    @property
    def warnings(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.success and o.severity == "warning"]

    @property
    def passed(self) -> bool:
        return not self.critical_failures

    def summary(self) -> str:
        suites = sorted({o.suite for o in self.outcomes})
        head = (
            f"quality, stage {self.stage}, batch {self.batch_id}: {len(self.outcomes)} expectations in "
            f"{len(suites)} suites, {len(self.critical_failures)} critical failed, {len(self.warnings)} warnings "
            f"({self.seconds:.1f} s)"
        )
        lines = [head]
        lines += [f"  CRITICAL {o.line()}" for o in self.critical_failures]
        lines += [f"  warning  {o.line()}" for o in self.warnings]
        lines += [f"  skipped  {name}: the optional source was not delivered" for name in self.skipped]
        if self.data_docs is not None:
            lines.append(f"  Data Docs: {self.data_docs / 'index.html'}")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        """Counts and the report's path only: small, and free of personal data (for XCom)."""
        return {
            "batch_id": self.batch_id,
            "stage": self.stage,
            "expectations": len(self.outcomes),
            "critical_failed": len(self.critical_failures),
            "warnings": len(self.warnings),
            "skipped": list(self.skipped),
            "rows": dict(self.rows),
            "data_docs": str(self.data_docs / "index.html") if self.data_docs else None,
            "seconds": round(self.seconds, 1),
        }


def _quiet_gx() -> None:
    """Great Expectations' loggers at warnings: called before the import (the decorators log
    at import time) and after it (one module sets its own logger back to INFO)."""
    for name in _GX_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def _first_unexpected_rows_only() -> None:
    """Have Great Expectations name only the unexpected rows its results keep.

    For a pandas batch it builds a dict (the column's value and the row's key) for every
    unexpected row, one ``DataFrame.at`` lookup at a time, then keeps the first
    ``partial_unexpected_count`` of them: at 100,000 registry persons, more than half of a
    gate's time. Handed only those first rows, it builds exactly the list it keeps. A result
    format that keeps every row (COMPLETE, or ``exclude_unexpected_values``, which gathers
    every key into one dict) gets every row as before."""
    from great_expectations.expectations.metrics.map_metric_provider import map_condition_auxilliary_methods as methods

    compute = getattr(methods, _UNEXPECTED_INDICES)
    if getattr(compute, "first_rows_only", False):
        return

    def first_rows(domain_records_df: Any, result_format: dict[str, Any], **kwargs: Any) -> Any:
        if result_format.get("result_format") != "COMPLETE" and not result_format.get("exclude_unexpected_values"):
            domain_records_df = domain_records_df.iloc[: result_format["partial_unexpected_count"]]
        return compute(domain_records_df=domain_records_df, result_format=result_format, **kwargs)

    first_rows.first_rows_only = True  # type: ignore[attr-defined]
    setattr(methods, _UNEXPECTED_INDICES, first_rows)


def _plain(value: Any) -> Any:
    """numpy scalars and other values as plain JSON-able Python."""
    if hasattr(value, "item"):
        return value.item()
    return value


def _without_severity(description: str) -> str:
    for words in _SEVERITY_WORDS.values():
        description = description.removeprefix(words)
    return description


def _exception(info: dict[str, Any]) -> str | None:
    """The message of an expectation that raised, from GX's exception info: either flat or
    keyed by the metric that failed."""
    entries = [info] if "raised_exception" in info else [v for v in info.values() if isinstance(v, dict)]
    for entry in entries:
        if entry.get("raised_exception"):
            message = str(entry.get("exception_message") or "error").strip()
            return message.splitlines()[-1] if message else "error"
    return None


def _example_keys(result: Any, table: ValidatedTable) -> list[Any]:
    """The keys of the first unexpected rows of an expectation's result, as its message shows them."""
    keys: list[Any] = []
    for index in (result.result or {}).get("partial_unexpected_index_list") or []:
        key = _plain(index.get(table.key)) if isinstance(index, dict) else None
        if key is not None:
            keys.append(key)
        if len(keys) == EXAMPLES:
            break
    return keys


def _outcome(result: Any, suite: str, table: ValidatedTable) -> Outcome:
    config = result.expectation_config
    kwargs = dict(config.kwargs)
    details = result.result or {}
    error = _exception(result.exception_info or {})
    examples = [table.describe(key) for key in _example_keys(result, table)]
    observed = details.get("observed_value")
    severity = getattr(config.severity, "value", config.severity)
    return Outcome(
        suite=suite,
        expectation=config.type,
        column=kwargs.get("column"),
        severity=str(severity),
        success=bool(result.success),
        description=_without_severity(config.description or ""),
        element_count=_plain(details["element_count"]) if "unexpected_count" in details else None,
        unexpected_count=_plain(details.get("unexpected_count")),
        observed="" if observed is None else str(_plain(observed)),
        examples=tuple(examples),
        error=error,
    )


class _Project:
    """The run's Great Expectations project: suites, one pandas source, results and Data Docs."""

    def __init__(self, root: Path, docs: Path) -> None:
        _quiet_gx()
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        _quiet_gx()
        _first_unexpected_rows_only()
        self.gx = gx
        root.mkdir(parents=True, exist_ok=True)
        self.context = gx.get_context(mode="file", project_root_dir=str(root))
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False)
        sites = self.context.list_data_docs_sites()
        for name in list(sites):
            if name != _SITE:
                self.context.delete_data_docs_site(name)
        if _SITE not in sites:
            self.context.add_data_docs_site(
                _SITE,
                {
                    "class_name": "SiteBuilder",
                    "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
                    "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs)},
                },
            )
        self.source = self.context.data_sources.add_or_update_pandas("lookback")
        self.docs = docs
        self.rendered: list[Any] = []  # what this gate adds to the site: its suites and their results

    def validate(self, suite_file: SuiteFile, table: ValidatedTable, run_name: str) -> list[Outcome]:
        from great_expectations.core.run_identifier import RunIdentifier
        from great_expectations.data_context.types.resource_identifiers import ExpectationSuiteIdentifier

        gx = self.gx
        # The Data Docs show each expectation's description but not its severity: say it there.
        document = dict(suite_file.document)
        document["expectations"] = [
            {**item, "description": f"{_SEVERITY_WORDS[item['severity']]}{item.get('description', '')}"}
            for item in suite_file.document["expectations"]
        ]
        try:
            suite = gx.ExpectationSuite(**document)
        except Exception as error:  # a suite that GX refuses: name the file
            raise ConfigError(f"{suite_file.path}: {error}") from error
        if len(suite.expectations) != len(suite_file.document["expectations"]):
            # GX drops an expectation it cannot build with a log line only: refuse instead.
            raise ConfigError(f"{suite_file.path}: an expectation has an unknown type or arguments")
        suite = self.context.suites.add_or_update(suite)
        name = suite_file.document["name"]
        try:
            asset = self.source.get_asset(name)
        except LookupError:
            asset = self.source.add_dataframe_asset(name)
        try:
            batch = asset.get_batch_definition("batch")
        except (KeyError, LookupError):
            batch = asset.add_batch_definition_whole_dataframe("batch")
        definition = self.context.validation_definitions.add_or_update(
            gx.ValidationDefinition(name=name, data=batch, suite=suite)
        )
        stored = set(self.context.validation_results_store.list_keys())
        result = definition.run(
            run_id=RunIdentifier(run_name=run_name),
            batch_parameters={"dataframe": table.frame},
            result_format={
                "result_format": "SUMMARY",
                "unexpected_index_column_names": [table.key],
                "partial_unexpected_count": EXAMPLES,
                # The query naming every unexpected row is computed unless refused; it is
                # not kept in SUMMARY results anyway.
                "return_unexpected_index_query": False,
            },
        )
        self.rendered.append(ExpectationSuiteIdentifier(name=name))
        self.rendered.extend(key for key in self.context.validation_results_store.list_keys() if key not in stored)
        table = table.with_people([key for item in result.results for key in _example_keys(item, table)])
        return [_outcome(item, name, table) for item in result.results]

    def build_docs(self) -> Path:
        """Render this gate's suites and results into the site and rebuild its index: the
        pages of earlier gates of the run are there already, and would come out the same."""
        self.context.build_data_docs(site_names=[_SITE], resource_identifiers=self.rendered or None)
        localise_site(self.docs)
        return self.docs


def suite_columns(document: dict[str, Any]) -> set[str]:
    """The columns a suite names (as ``column``, ``column_A``/``_B``, or in a column set or list)."""
    names: set[str] = set()
    for expectation in document["expectations"]:
        kwargs = expectation.get("kwargs") or {}
        for key in ("column", "column_A", "column_B"):
            if isinstance(kwargs.get(key), str):
                names.add(kwargs[key])
        for key in ("column_list", "column_set"):
            if isinstance(kwargs.get(key), list):
                names.update(str(column) for column in kwargs[key])
    return names


def _tables(
    suites: Sequence[SuiteFile], warehouse: Warehouse, batch_id: str, as_of: date, run_id: str
) -> Iterator[tuple[SuiteFile, ValidatedTable | None]]:
    for suite in suites:
        if suite.stage == "publish":
            if suite.dataset != "census_extract":
                raise ConfigError(f"{suite.path}: the publish stage validates census_extract only")
            yield suite, census_table(warehouse, run_id, suite_columns(suite.document))
        elif suite.stage == "link":
            if suite.dataset != "person_links":
                raise ConfigError(f"{suite.path}: the link stage validates person_links only")
            yield suite, link_table(warehouse, batch_id, suite_columns(suite.document))
        else:
            if suite.dataset not in warehouse.specs:
                raise ConfigError(f"{suite.path}: no source {suite.dataset!r} in include/sources")
            yield suite, source_table(warehouse, suite.dataset, batch_id, as_of, suite_columns(suite.document))


def validate_stage(
    warehouse: Warehouse,
    batch_id: str,
    stage: str,
    as_of: date,
    out: Path,
    suites: Sequence[SuiteFile] | None = None,
    run_id: str | None = None,
) -> QualityReport:
    """Validate every suite of ``stage`` on the batch; store the outcomes in
    ``quality_results``, build the Data Docs into ``out/data_docs``. Raises nothing for
    failed expectations: see ``enforce``."""
    started = time.perf_counter()
    suites = list(suites if suites is not None else stage_suites(stage))
    project_dir, docs_dir = out / "quality" / "gx", out / "data_docs"
    if stage == STAGES[0]:
        # The first gate of a run: the report starts afresh, without an earlier run's pages.
        for folder in (project_dir, docs_dir):
            if folder.exists():
                shutil.rmtree(folder)
    project = _Project(project_dir, docs_dir)
    outcomes: list[Outcome] = []
    skipped: list[str] = []
    rows: dict[str, int] = {}
    for suite, table in _tables(suites, warehouse, batch_id, as_of, run_id or batch_id):
        name = suite.document["name"]
        if table is None:
            if warehouse.specs[suite.dataset].required:
                raise QualityGateError(f"{name}: the {suite.dataset} export of batch {batch_id} has no rows")
            skipped.append(name)
            continue
        step = time.perf_counter()
        found = project.validate(suite, table, run_name=batch_id)
        rows[name] = len(table.frame)
        log.info(
            "%s: %d expectations on %s rows in %.1f s, %d failed",
            name,
            len(found),
            f"{len(table.frame):,}",
            time.perf_counter() - step,
            sum(not outcome.success for outcome in found),
        )
        outcomes.extend(found)
    docs = project.build_docs()
    validated_at = datetime.now(UTC)
    results = warehouse.table("quality_results")
    with warehouse.engine.begin() as connection:
        connection.execute(delete(results).where(results.c.batch_id == batch_id, results.c.stage == stage))
        fault_point("validate")
        Warehouse.insert(
            connection, results, [o.as_row(batch_id, stage, i, validated_at) for i, o in enumerate(outcomes)]
        )
    return QualityReport(
        batch_id=batch_id,
        stage=stage,
        outcomes=tuple(outcomes),
        skipped=tuple(skipped),
        data_docs=docs,
        seconds=time.perf_counter() - started,
        rows=rows,
    )


def enforce(report: QualityReport) -> None:
    """Stop the run when a critical expectation failed; the message names each one."""
    if report.passed:
        return
    failures = "\n".join(f"  {outcome.line()}" for outcome in report.critical_failures)
    raise QualityGateError(
        f"quality gate: {len(report.critical_failures)} critical expectation(s) failed at stage {report.stage} "
        f"of batch {report.batch_id}; nothing is published:\n{failures}"
        + (f"\n  Data Docs: {report.data_docs / 'index.html'}" if report.data_docs else "")
    )
