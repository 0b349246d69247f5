"""lookback's linkage and splink (DuckDB) side by side, on the same batch, scored the same way.

    make bench-env
    .venv-bench/bin/python benchmarks/link_versus_splink.py --persons 20000 --noise hard --folder /tmp/vs-splink

Both engines get the same standardised rows (names normalised with their pinyin keys,
identity numbers cleaned, birth dates, sex, county, village). splink is configured as its
documentation recommends for person data: a deterministic estimate of the prior, u from
random sampling, m by expectation maximisation in sessions that each block on fields other
than the ones being learnt, fuzzy name (pinyin) and identity-number comparisons with
term-frequency adjustment on names, and clustering at a match probability of 0.99. Both
are scored with ``lookback evaluate`` and timed from the standardised rows to clusters.
"""

from __future__ import annotations

import argparse
import csv
import logging
import time
from pathlib import Path

import pandas as pd
from prepared import add_batch_arguments, prepared_batch

from lookback.evaluate import evaluate_run
from lookback.link.config import load_linkage_settings
from lookback.link.engine import link_records
from lookback.link.load import load_records
from lookback.run import connect_warehouse


def write_links(path: Path, records: pd.DataFrame, clusters: list[object]) -> None:
    path.mkdir(parents=True, exist_ok=True)
    with (path / "person_links.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["person_id", "source", "source_row", "household_key", "match_method", "match_score"])
        for source, row, cluster in zip(records["source"], records["source_row"], clusters, strict=True):
            writer.writerow([cluster, source, int(row), "", "", ""])


def run_splink(records: pd.DataFrame) -> list[object]:
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    frame = records[["name", "pinyin", "id_digits", "birth_date", "sex", "county", "village"]].copy()
    frame["id_digits"] = frame["id_digits"].replace("", None)
    frame["id_first14"] = frame["id_digits"].str[:14]
    frame.insert(0, "unique_id", range(len(frame)))
    settings = SettingsCreator(
        link_type="dedupe_only",
        comparisons=[
            # DuckDB's string similarities work on UTF-8 bytes, where any two Chinese names look
            # alike: names are compared by their pinyin (ASCII), once (name and pinyin together
            # would count the same evidence twice).
            cl.JaroWinklerAtThresholds("pinyin", [0.92, 0.85]).configure(term_frequency_adjustments=True),
            # one wrong digit; two would pair people of one county born on the same day
            cl.LevenshteinAtThresholds("id_digits", [1]),
            cl.DateOfBirthComparison("birth_date", input_is_string=True, datetime_format="%Y%m%d"),
            cl.ExactMatch("sex"),
            cl.ExactMatch("county"),
            cl.ExactMatch("village"),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("id_digits"),
            block_on("county", "name"),
            block_on("county", "pinyin"),
            block_on("birth_date", "sex"),
            block_on("id_first14"),
        ],
        retain_intermediate_calculation_columns=False,
    )
    db_api = DuckDBAPI()
    linker = Linker(db_api.register(frame), settings)
    linker.training.estimate_probability_two_random_records_match([block_on("id_digits")], recall=0.9)
    linker.training.estimate_u_using_random_sampling(max_pairs=2_000_000)
    # Each session fixes fields that nearly always identify one person, so that EM learns the others.
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("id_digits"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("pinyin", "birth_date"))
    predictions = linker.inference.predict(threshold_match_probability=0.5)
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(predictions, 0.99).as_pandas_dataframe()
    by_id = dict(zip(clusters["unique_id"], clusters["cluster_id"], strict=True))
    return [by_id[i] for i in range(len(frame))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_batch_arguments(parser, persons=20_000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    _landing, url = prepared_batch(args)
    warehouse = connect_warehouse(url)
    settings = load_linkage_settings()
    records = load_records(warehouse, "bench", settings)
    truth = args.folder / "truth" / "bench"

    started = time.perf_counter()
    result = link_records(records, settings)
    ours_seconds = time.perf_counter() - started
    write_links(args.folder / "ours", records, result.records["cluster"].tolist())

    started = time.perf_counter()
    splink_clusters = run_splink(records)
    splink_seconds = time.perf_counter() - started
    write_links(args.folder / "splink", records, splink_clusters)

    print(f"{args.noise}: {len(records):,} rows")
    print("engine    seconds  precision  recall  f1      hard_precision  hard_recall  hard_f1")
    for name, seconds in (("lookback", ours_seconds), ("splink", splink_seconds)):
        scores = evaluate_run(truth, args.folder / ("ours" if name == "lookback" else "splink"))
        all_pairs, hard = scores.linkage, scores.hard_linkage
        print(
            f"{name:<9} {seconds:>7.1f}  {all_pairs.precision:.4f}     {all_pairs.recall:.4f}  {all_pairs.f1:.4f}  "
            f"{hard.precision:.4f}          {hard.recall:.4f}       {hard.f1:.4f}"
        )


if __name__ == "__main__":
    main()
