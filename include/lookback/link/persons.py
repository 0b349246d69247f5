"""Persons as rows: union-find roots and the persons of the first pass."""

from __future__ import annotations

import numpy as np
import pandas as pd


def find_roots(parent: np.ndarray) -> np.ndarray:
    """Every row's root in the union-find forest, by pointer jumping."""
    roots = parent.copy()
    while True:
        jumped = roots[roots]
        if np.array_equal(jumped, roots):
            return roots
        roots = jumped


def first_pass_roots(cluster: np.ndarray) -> np.ndarray:
    """Each row's person as a row: a linked row's is its cluster's first row, any other row is its own."""
    linked = cluster >= 0
    roots = np.arange(len(cluster))
    roots[linked] = pd.Series(np.flatnonzero(linked)).groupby(cluster[linked]).transform("min").to_numpy()
    return roots
