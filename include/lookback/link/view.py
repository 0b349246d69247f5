"""The records as the second pass compares them: numbers that are someone else's set aside,
households joined through the persons the first pass linked."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lookback.link.deterministic import deterministic_clusters
from lookback.link.levels import ONE_MEMBER
from lookback.link.persons import UnionFind
from lookback.link.records import derive_birth_and_sex, duplicate_of, or_none


def joined_households(households: pd.Series, cluster: np.ndarray) -> pd.Series:
    """Household keys made one where a person links them: the allowance household whose head
    is a registry person is that person's registry household, so that its members without a
    usable number are compared as members of the same household."""
    codes, keys = pd.factorize(households, use_na_sentinel=True)
    if len(keys) == 0:
        return households.astype(object)  # no row names a household
    households_of = UnionFind(len(keys))
    linked = pd.DataFrame({"cluster": cluster, "household": codes})
    linked = linked[(linked["cluster"] >= 0) & (linked["household"] >= 0)].drop_duplicates()
    linked = linked[linked.duplicated("cluster", keep=False)]
    # Each person's households together (plain arrays: tens of thousands of persons).
    order = np.argsort(linked["cluster"].to_numpy(), kind="stable")
    clusters, households_by_person = linked["cluster"].to_numpy()[order], linked["household"].to_numpy()[order]
    bounds = np.flatnonzero(np.diff(clusters)) + 1
    for members in np.split(households_by_person, bounds) if len(order) else []:
        values = members.tolist()
        for other in values[1:]:
            a, b = households_of.find(values[0]), households_of.find(other)
            if a != b:
                households_of.attach(max(a, b), min(a, b))
    roots = households_of.roots().astype(np.int64)
    joined = pd.Series(np.asarray(keys, dtype=object)[roots[np.clip(codes, 0, None)]], index=households.index)
    return or_none(joined, codes >= 0)


def second_pass_view(records: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """The deterministic pass, and the records as the second pass compares them: without
    numbers that are someone else's (they tell nothing about the row's person), with
    households joined through the persons just linked. Returns (view, cluster, foreign)."""
    cluster, foreign = deterministic_clusters(records)
    work = records.copy(deep=False)
    work.loc[foreign, ["id_digits"]] = ""
    derive_birth_and_sex(work, foreign)
    # A head whose number is someone else's gives the household no head's birth date.
    heads = work[(work["relation"] == "head").to_numpy() & foreign & work["household"].notna().to_numpy()]
    borrowed = set(zip(heads["household"], heads["id_birth"], strict=True))
    if borrowed:
        from_borrowed = [
            (household, birth) in borrowed
            for household, birth in zip(work["household"], work["head_birth"], strict=True)
        ]
        work.loc[from_borrowed, "head_birth"] = None
    work["household"] = lone_households(joined_households(work["household"], cluster), duplicate_of(work))
    # An enrolment states neither village nor relation, a death no programme; the person
    # the row was linked to may: an enrolment of a namesake known to live in another
    # village, or known not to head their household, is not a candidate as good as the
    # appraised head's own; a death whose enrolment places its person in the registry is a
    # registry person's.
    work["village"] = of_persons(work["village"], cluster)
    # Relations as a household roster states them (an appraisal's head is only presumed).
    stated = work["household"].notna().to_numpy()
    work["relation"] = of_persons(work["relation"], cluster, stated)
    work["programme"] = of_persons(work["programme"], cluster)
    return work, cluster, foreign


def of_persons(values: pd.Series, cluster: np.ndarray, known: np.ndarray | None = None) -> pd.Series:
    """``values`` with the linked rows that state none given their person's, where the
    person's rows (of those ``known``) state one value."""
    named = values.notna().to_numpy() & (cluster >= 0)
    if known is not None:
        named &= known
    stated = pd.Series(values.to_numpy()[named], index=cluster[named]).groupby(level=0)
    value_of = stated.first()[stated.nunique() == 1]
    missing = values.isna().to_numpy() & (cluster >= 0)
    result = values.copy()
    result[missing] = pd.Series(cluster[missing]).map(value_of).to_numpy()
    return or_none(result, result.notna())


def lone_households(households: pd.Series, twin_of: np.ndarray) -> pd.Series:
    """``households`` with each allowance household (``head:`` keys, not joined to a registry
    household) whose rows are one member, delivered once or twice, keyed ``one:``."""
    allowance = households.str.startswith("head:", na=False).to_numpy()
    if not allowance.any():
        return households
    members = pd.Series(twin_of[allowance]).groupby(households[allowance].to_numpy()).nunique()
    alone = households.map(members).eq(1).to_numpy() & allowance
    result = households.copy()
    result[alone] = ONE_MEMBER + ":" + households[alone].str.slice(len("head:"))
    return result
