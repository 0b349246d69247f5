"""An outside yardstick for deduplication: FEBRL3 (5,000 records of 2,000 persons, an
original and up to five corrupted duplicates each, 6,538 true pairs; ``benchmarks/febrl/data/``),
deduplicated by lookback's engine as one source through its own settings file
(``benchmarks/febrl3/linkage.yaml``) and by splink.

    make bench-env
    .venv-bench/bin/python benchmarks/febrl3/link_febrl3.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: the shared febrl package
from febrl.common import compare, febrl_frame, read_febrl

SETTINGS = Path(__file__).with_name("linkage.yaml")


def load_febrl3() -> pd.DataFrame:
    return febrl_frame(read_febrl("dataset3.csv"))


def main() -> None:
    compare("FEBRL3", load_febrl3(), SETTINGS, "dedupe_only")


if __name__ == "__main__":
    main()
