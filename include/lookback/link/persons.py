"""Persons as rows: one union-find over rows (or households), and the persons of the first pass."""

from __future__ import annotations

import numpy as np
import pandas as pd


class UnionFind:
    """Rows joined into persons: each row points towards its person's root row."""

    def __init__(self, size: int) -> None:
        self.parent = np.arange(size)

    def find(self, i: int) -> int:
        parent = self.parent
        while parent[i] != i:
            parent[i] = parent[parent[i]]  # path halving
            i = int(parent[i])
        return i

    def attach(self, root: int, to: int) -> None:
        """Make the root ``root`` (and all it holds) part of the root ``to``."""
        self.parent[root] = to

    def roots(self) -> np.ndarray:
        """Every row's root, by pointer jumping over the whole forest at once."""
        return find_roots(self.parent)


def find_roots(parent: np.ndarray) -> np.ndarray:
    """Every row's root in the union-find forest ``parent``, by pointer jumping."""
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
