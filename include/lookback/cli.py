"""The ``lookback`` command line: the same functions the DAG tasks call.

Errors go to standard error in one line, naming the file, row or key at fault, and the
exit status is non-zero.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lookback.errors import ConfigError, LookbackError

if TYPE_CHECKING:
    from lookback.warehouse import Warehouse

log = logging.getLogger("lookback")


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date in YYYY-MM-DD form: {text!r}") from None


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lookback", description="Look-back (回头看) reconciliation of the poverty registry."
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors in the log")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    warehouse_help = "SQLAlchemy URL of the warehouse (default: $LOOKBACK_WAREHOUSE_URL or a SQLite file under ./data/)"

    ingest = commands.add_parser("ingest", help="read a landing batch into the warehouse, accounting for every row")
    ingest.add_argument("--landing", type=Path, required=True, help="the batch folder (landing/<batch>/)")
    ingest.add_argument("--batch", help="batch id (default: the folder's name)")
    ingest.add_argument("--warehouse", help=warehouse_help)
    ingest.add_argument("--source", action="append", dest="sources", help="only this source (repeatable)")
    wait_help = "while another run holds the batch, wait up to SECONDS for it (default: 0, refuse at once)"
    ingest.add_argument("--wait", type=float, default=0.0, metavar="SECONDS", help=wait_help)

    run = commands.add_parser("run", help="run the whole pipeline on a landing batch")
    run.add_argument("--landing", type=Path, required=True, help="the batch folder (landing/<batch>/)")
    run.add_argument("--out", type=Path, help="output folder for the run's files (default: data/runs/<batch>)")
    run.add_argument("--as-of", type=_date, required=True, help="reference date of the look-back, YYYY-MM-DD")
    run.add_argument("--batch", help="batch id (default: the folder's name)")
    run.add_argument("--run-id", help="look-back run id (default: the batch id; the same run again replaces it)")
    run.add_argument("--warehouse", help=warehouse_help)
    run.add_argument("--wait", type=float, default=0.0, metavar="SECONDS", help=wait_help)

    look_back = commands.add_parser(
        "reconcile",
        aliases=["look-back"],
        help="apply the look-back rules to a linked batch and track the findings across runs",
    )
    look_back.add_argument("--batch", required=True)
    look_back.add_argument("--as-of", type=_date, required=True, help="reference date of the look-back, YYYY-MM-DD")
    look_back.add_argument("--run-id", help="look-back run id (default: the batch id)")
    look_back.add_argument("--warehouse", help=warehouse_help)
    look_back.add_argument("--wait", type=float, default=0.0, metavar="SECONDS", help=wait_help)

    summary = commands.add_parser("summary", help="print a published run's findings per rule and county")
    summary.add_argument("--out", type=Path, required=True, help="the run's folder")

    history = commands.add_parser("history", help="show a finding's history: what each run found and when it closed")
    history.add_argument("--finding", required=True, help="finding_id, e.g. MED_NOT_INSURED:P000000123")
    history.add_argument("--warehouse", help=warehouse_help)

    validate = commands.add_parser(
        "validate", help="validate a stage of a batch with its Great Expectations suites (expectations/)"
    )
    validate.add_argument("--batch", required=True)
    validate.add_argument("--stage", required=True, choices=("standardise", "link", "publish"))
    validate.add_argument("--run-id", help="look-back run id (publish stage; default: the batch id)")
    validate.add_argument("--out", type=Path, required=True, help="the run's folder: Data Docs go to OUT/data_docs/")
    validate.add_argument("--as-of", type=_date, required=True, help="reference date of the look-back, YYYY-MM-DD")
    validate.add_argument("--warehouse", help=warehouse_help)
    validate.add_argument("--wait", type=float, default=0.0, metavar="SECONDS", help=wait_help)

    link = commands.add_parser("link", help="link a batch's accepted rows into persons and households")
    link.add_argument("--batch", required=True)
    link.add_argument("--warehouse", help=warehouse_help)
    link.add_argument("--wait", type=float, default=0.0, metavar="SECONDS", help=wait_help)

    holds = commands.add_parser("holds", help="list which runs hold which batches (one run of a batch at a time)")
    holds.add_argument("--batch", help="only this batch")
    holds.add_argument("--warehouse", help=warehouse_help)
    unlock = commands.add_parser(
        "unlock", help="remove every hold on a batch (only when certain that no run of it is still going)"
    )
    unlock.add_argument("--batch", required=True)
    unlock.add_argument("--warehouse", help=warehouse_help)

    rectification = commands.add_parser(
        "rectification", help="read a county's returned workbook: what it did about each finding (整改情况)"
    )
    rectification.add_argument(
        "--file",
        type=Path,
        required=True,
        help="the county workbook with the answer columns filled in, or a CSV of them",
    )
    rectification.add_argument("--returned-by", required=True, help="who returned it (the county office or person)")
    rectification.add_argument("--run-id", help="for a CSV: the run whose workbook was answered")
    rectification.add_argument("--county", help="for a CSV: the county code it answers for")
    rectification.add_argument("--warehouse", help=warehouse_help)

    sample = commands.add_parser(
        "sample", help="draw the province's spot check (抽样核查) of a run's visit roster and publish its lists"
    )
    sample.add_argument("--run", required=True, help="the look-back run whose visit roster is sampled")
    sample.add_argument(
        "--per-county", type=_positive, help="households per county (default: from confidence and margin)"
    )
    sample.add_argument("--confidence", type=float, default=0.95, help="confidence of the estimate (default 0.95)")
    sample.add_argument("--margin", type=float, default=0.05, help="its margin of error (default 0.05: ±5 points)")
    sample.add_argument("--seed", type=int, default=1, help="the draw's seed: the same seed, the same households")
    sample.add_argument("--sample-id", help="the sample's id (default: <run>-s<seed>)")
    sample.add_argument("--out", type=Path, help="folder for the lists (default: data/samples/<sample id>)")
    sample.add_argument("--warehouse", help=warehouse_help)

    sample_results = commands.add_parser(
        "sample-results", help="read the inspectors' filled-in sample list and print the estimates per county"
    )
    sample_results.add_argument("--file", type=Path, required=True, help="a sample list with 核查结果 filled in")
    sample_results.add_argument("--returned-by", required=True, help="who returned it")
    sample_results.add_argument("--warehouse", help=warehouse_help)

    decide = commands.add_parser("decide", help="read the decisions filled into a match_review.csv")
    decide.add_argument("--batch", required=True)
    decide.add_argument("--file", type=Path, required=True, help="match_review.csv with the decision column filled")
    decide.add_argument("--warehouse", help=warehouse_help)

    explain = commands.add_parser("explain", help="show how two rows compare: levels and match weights")
    explain.add_argument("--batch", required=True)
    explain.add_argument("--rows", nargs=2, required=True, metavar="SOURCE:ROW", help="e.g. registry:12 insurance:455")
    explain.add_argument("--warehouse", help=warehouse_help)

    accounting = commands.add_parser("accounting", help="print the stored row accounting of a batch")
    accounting.add_argument("--batch", required=True)
    accounting.add_argument("--warehouse", help=warehouse_help)

    generate = commands.add_parser("generate", help="write a synthetic landing batch and its truth")
    generate.add_argument("--out", type=Path, required=True, help="batch folder to write (landing/<batch>/)")
    generate.add_argument("--persons", type=_positive, default=120, help="registry persons, about (default 120)")
    generate.add_argument("--seed", type=int, default=1)
    generate.add_argument("--as-of", type=_date, default=None, help="reference date (default 2020-06-30)")
    generate.add_argument("--counties", help="comma-separated 6-digit Hunan county codes")
    generate.add_argument("--noise", default="typical", help="noise profile: clean, typical or hard (default typical)")
    generate.add_argument(
        "--truth", type=Path, help="folder for the truth (default: truth/<batch> beside the landing zone)"
    )
    generate.add_argument("--evolve-from", type=Path, help="an earlier batch (its truth folder) to move on from")
    generate.add_argument(
        "--fix-fraction", type=float, default=0.5, help="with --evolve-from: share of planted findings fixed"
    )

    evaluate = commands.add_parser("evaluate", help="score a run's outputs against a generated batch's truth")
    evaluate.add_argument("--truth", type=Path, required=True, help="the batch's truth folder")
    evaluate.add_argument("--out", type=Path, required=True, help="the run's output folder")
    evaluate.add_argument("--json", type=Path, help="where to write the scores (default: <out>/evaluation.json)")

    divisions = commands.add_parser("divisions", help="rebuild include/divisions/hunan.csv from the official lists")
    divisions.add_argument(
        "--from",
        dest="official",
        type=Path,
        default=None,
        help="folder with provinces/cities/areas/streets.csv (default: include/divisions/official)",
    )
    divisions.add_argument("--out", type=Path, default=None, help="default: include/divisions/hunan.csv")
    return parser


def _print_accounting(warehouse: Warehouse, batch_id: str) -> bool:
    from lookback.pipeline import accounting_report

    report, balanced = accounting_report(warehouse, batch_id)
    print(report)
    return balanced


def _ingest(args: argparse.Namespace) -> int:
    from lookback.locks import Holder, holding
    from lookback.pipeline import Run, ingest_all, open_warehouse

    run = Run.create(landing=args.landing, batch=args.batch, warehouse=args.warehouse)
    with (
        open_warehouse(run.warehouse_url) as warehouse,
        holding(warehouse, run.batch, Holder.this_process("lookback ingest", "ingest"), args.wait),
    ):
        ingest_all(run, warehouse, args.sources)
        return 0 if _print_accounting(warehouse, run.batch) else 1


def _run(args: argparse.Namespace) -> int:
    from lookback.pipeline import Run, open_warehouse, run_pipeline

    run = Run.create(
        as_of=args.as_of,
        landing=args.landing,
        batch=args.batch,
        run_id=args.run_id,
        out=args.out,
        warehouse=args.warehouse,
    )
    _accounting, outputs = run_pipeline(run, wait=args.wait)
    with open_warehouse(run.warehouse_url) as warehouse:
        balanced = _print_accounting(warehouse, run.batch)
    _print_look_back(outputs.summary.get("look_back"))
    print(f"run files in {outputs.out}:")
    for path in outputs.files:
        print(f"  {path.relative_to(outputs.out)}")
    docs = outputs.out / "data_docs" / "index.html"
    if docs.exists():
        print(f"quality report (Data Docs): {docs}")
    return 0 if balanced else 1


def _print_look_back(summary: Any) -> None:
    from lookback.report import format_look_back

    if summary:
        print()
        print(format_look_back(summary))
        print()


def _summary(args: argparse.Namespace) -> int:
    if not (args.out / "run_summary.json").is_file():
        raise ConfigError(f"{args.out}: not a published run (no run_summary.json)")
    import json

    _print_look_back(json.loads((args.out / "run_summary.json").read_text(encoding="utf-8")).get("look_back"))
    return 0


def _reconcile(args: argparse.Namespace) -> int:
    from lookback.locks import Holder, holding
    from lookback.pipeline import Run, open_warehouse, reconcile
    from lookback.report import format_look_back

    run = Run.create(as_of=args.as_of, batch=args.batch, run_id=args.run_id, warehouse=args.warehouse)
    with (
        open_warehouse(run.warehouse_url) as warehouse,
        holding(warehouse, run.batch, Holder.this_process("lookback reconcile"), args.wait),
    ):
        summary = reconcile(run, warehouse)
    print(format_look_back(summary.as_dict()))
    return 0


def _history(args: argparse.Namespace) -> int:
    from lookback.pipeline import finding_history, open_warehouse
    from lookback.report import format_table

    with open_warehouse(args.warehouse) as warehouse:
        rows = finding_history(warehouse, args.finding)
    print(format_table(rows, ("run_id", "as_of", "event", "status_after", "evidence")))
    return 0


def _validate(args: argparse.Namespace) -> int:
    from lookback.locks import Holder, holding
    from lookback.pipeline import Run, open_warehouse, validate

    run = Run.create(as_of=args.as_of, batch=args.batch, run_id=args.run_id, out=args.out, warehouse=args.warehouse)
    # A failed critical expectation raises QualityGateError: reported as an error, status 1.
    with (
        open_warehouse(run.warehouse_url) as warehouse,
        holding(warehouse, run.batch, Holder.this_process("lookback validate"), args.wait),
    ):
        report = validate(run, warehouse, args.stage)
    print(report.summary())
    return 0


def _generate(args: argparse.Namespace) -> int:
    from lookback.generate.batch import DEFAULT_COUNTIES, generate_batch

    counties = tuple(code.strip() for code in args.counties.split(",")) if args.counties else DEFAULT_COUNTIES
    summary = generate_batch(
        args.out,
        persons=args.persons,
        seed=args.seed,
        as_of=args.as_of,
        counties=counties,
        noise=args.noise,
        truth=args.truth,
        evolve_from=args.evolve_from,
        fix_fraction=args.fix_fraction,
    )
    people = f"{summary.households:,} households, {summary.registry_persons:,} registry persons"
    print(f"wrote batch {summary.folder} ({people})")
    for source, count in summary.rows.items():
        print(f"  {source:<10} {count:>9,} rows")
    print(f"truth in {summary.truth}: {sum(summary.findings.values()):,} findings")
    for rule, count in summary.findings.items():
        print(f"  {rule:<24} {count:>7,}")
    if args.evolve_from:
        print(f"fixed {summary.fixed:,} planted findings of the earlier batch")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from lookback.evaluate import evaluate_run, write_evaluation_json
    from lookback.report import format_evaluation

    evaluation = evaluate_run(args.truth, args.out)
    print(format_evaluation(evaluation))
    target = args.json or args.out / "evaluation.json"
    write_evaluation_json(evaluation, target)
    print(f"scores written to {target}")
    return 0


def _link(args: argparse.Namespace) -> int:
    from lookback.locks import Holder, holding
    from lookback.pipeline import Run, link, open_warehouse

    run = Run.create(batch=args.batch, warehouse=args.warehouse)
    with (
        open_warehouse(run.warehouse_url) as warehouse,
        holding(warehouse, run.batch, Holder.this_process("lookback link"), args.wait),
    ):
        summary = link(run, warehouse)
    methods = ", ".join(f"{method} {count:,}" for method, count in sorted(summary.by_method.items()))
    people = f"{summary.persons:,} persons, {summary.households:,} households"
    print(f"batch {summary.batch_id}: {summary.rows:,} rows → {people}")
    print(f"  {methods}; {summary.review_pairs:,} pairs for review")
    print(f"  {summary.persons_with_two_numbers:,} persons whose rows carry two valid identity numbers (flagged)")
    return 0


def _holds(args: argparse.Namespace) -> int:
    from lookback.locks import holds
    from lookback.pipeline import open_warehouse

    with open_warehouse(args.warehouse) as warehouse:
        present = holds(warehouse, args.batch)
    if not present:
        print("no batch is held" if args.batch is None else f"batch {args.batch} is not held")
    for hold in present:
        print(f"batch {hold.batch_id}: {hold.describe()}")
    return 0


def _unlock(args: argparse.Namespace) -> int:
    from lookback.locks import holds, release_all
    from lookback.pipeline import open_warehouse

    with open_warehouse(args.warehouse) as warehouse:
        for hold in holds(warehouse, args.batch):
            log.warning("batch %s: removing the hold of %s", hold.batch_id, hold.describe())
        removed = release_all(warehouse, args.batch)
    print(f"batch {args.batch}: {removed} hold(s) removed")
    return 0


def _decide(args: argparse.Namespace) -> int:
    from lookback.link.review import import_decisions
    from lookback.pipeline import open_warehouse

    with open_warehouse(args.warehouse) as warehouse:
        count = import_decisions(warehouse, args.batch, args.file)
    print(f"read {count:,} decisions for batch {args.batch}; the next link run applies them")
    return 0


def _rectification(args: argparse.Namespace) -> int:
    from lookback.pipeline import open_warehouse
    from lookback.reconcile.rectification import read_return

    with open_warehouse(args.warehouse) as warehouse:
        read = read_return(warehouse, args.file, args.returned_by, run_id=args.run_id, county=args.county)
    if read.already_read:
        print(f"{args.file.name} was read on {read.read_at}: nothing more to do")
    else:
        print(
            f"read {read.reports:,} answers of county {read.county or '-'} to run {read.run_id}; "
            "the rectification states are updated"
        )
    return 0


def _sample(args: argparse.Namespace) -> int:
    from lookback.paths import data_dir
    from lookback.pipeline import open_warehouse
    from lookback.publish.sample_lists import publish_sample
    from lookback.reconcile.sample import draw_sample

    with open_warehouse(args.warehouse) as warehouse:
        drawn = draw_sample(
            warehouse,
            args.run,
            seed=args.seed,
            per_county=args.per_county,
            confidence=args.confidence,
            margin=args.margin,
            sample_id=args.sample_id,
        )
        out = args.out or data_dir() / "samples" / drawn.sample_id
        publish_sample(warehouse, drawn.sample_id, out)
    print(f"sample {drawn.sample_id} (seed {drawn.seed}) of run {drawn.run_id}: lists in {out}")
    for county, (taken, households) in drawn.per_county.items():
        print(f"  {county or '-':<8} {taken:>6,} of {households:>9,} households")
    return 0


def _sample_results(args: argparse.Namespace) -> int:
    from lookback.pipeline import open_warehouse
    from lookback.reconcile.sample import estimate_lines, read_sample_results, sample_estimates, sample_of

    with open_warehouse(args.warehouse) as warehouse:
        read = read_sample_results(warehouse, args.file, args.returned_by)
        estimates = sample_estimates(warehouse, read.sample_id)
        with warehouse.engine.connect() as connection:
            confidence = float(sample_of(connection, warehouse, read.sample_id)["confidence"])
    print(f"read {read.households:,} households of sample {read.sample_id}, county {read.county}")
    print("\n".join(estimate_lines(estimates, confidence)))
    return 0


def _row_reference(text: str) -> tuple[str, int]:
    source, _, row = text.partition(":")
    if not source or not row.isdigit():
        raise LookbackError(f"not a row reference of the form source:row: {text!r}")
    return source, int(row)


def _explain(args: argparse.Namespace) -> int:
    from lookback.link.review import explain_pair
    from lookback.pipeline import open_warehouse

    first, second = (_row_reference(text) for text in args.rows)
    with open_warehouse(args.warehouse) as warehouse:
        try:
            print(explain_pair(warehouse, args.batch, first, second))
        except LookupError as error:
            raise LookbackError(str(error.args[0])) from None
    return 0


def _divisions(args: argparse.Namespace) -> int:
    from lookback.paths import divisions_dir, official_divisions_dir
    from lookback.standardise.places import build_division_table, write_division_table

    out = args.out or divisions_dir() / "hunan.csv"
    table = build_division_table(args.official or official_divisions_dir(), divisions_dir() / "historical.csv")
    write_division_table(table, out)
    print(f"wrote {len(table)} divisions to {out}")
    return 0


COMMANDS = {
    "link": _link,
    "explain": _explain,
    "validate": _validate,
    "decide": _decide,
    "rectification": _rectification,
    "sample": _sample,
    "sample-results": _sample_results,
    "ingest": _ingest,
    "run": _run,
    "reconcile": _reconcile,
    "look-back": _reconcile,
    "summary": _summary,
    "holds": _holds,
    "unlock": _unlock,
    "history": _history,
    "generate": _generate,
    "evaluate": _evaluate,
    "divisions": _divisions,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        if args.command == "accounting":
            from lookback.pipeline import open_warehouse

            with open_warehouse(args.warehouse) as warehouse:
                return 0 if _print_accounting(warehouse, args.batch) else 1
        return COMMANDS[args.command](args)
    except LookbackError as error:
        print(f"lookback: error: {error}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader (head, less) stopped early: not an error of ours. Point stdout at
        # devnull so that the interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
