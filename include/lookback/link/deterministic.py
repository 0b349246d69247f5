"""The deterministic pass: rows whose valid identity numbers agree and whose names fit form a
person; a number whose row cannot be its owner is someone else's."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lookback.link.ages import POSSIBLE_GAPS, age_gaps, as_numbers, fits_relation
from lookback.standardise.names import PLACEHOLDER_PATTERN, characters_apart, name_slots, names_fit


def impossible_in_household(records: pd.DataFrame, cluster: np.ndarray, near: np.ndarray | None = None) -> np.ndarray:
    """Rows whose valid number (linked on it: ``cluster``) gives an age no one of the row's
    relation to its household's head can have (a spouse born the year before last, a son
    older than his father): the number is someone else's. Only where the head's birth is
    borne out: the head's number is linked on itself and another member's age fits it, or
    another department carries the head's number under a name that fits; and only where no
    other department carries the row's number under a name that fits."""
    low, high = age_gaps(records["relation"], POSSIBLE_GAPS)
    household = records["household"].astype(object)
    linked = cluster >= 0
    is_head = (records["relation"] == "head").to_numpy() & linked & household.notna().to_numpy()
    heads = pd.DataFrame({"household": household[is_head], "birth": records["id_birth"][is_head]})
    heads = heads.drop_duplicates("household", keep=False)  # a household with two heads says nothing
    head_birth = as_numbers(household.map(heads.set_index("household")["birth"]))
    checked = linked if near is None else linked | near
    fit = fits_relation(low, high, head_birth, as_numbers(records["id_birth"].where(checked)))
    borne_out = pd.Series(fit == 1, index=records.index).groupby(household, dropna=True).sum()
    sizes = pd.Series(cluster[linked]).value_counts()
    head_clusters = pd.Series(cluster[is_head], index=household[is_head].to_numpy())
    confirmed = head_clusters.map(sizes).ge(2).groupby(level=0).any()
    trusted = (household.map(borne_out).fillna(0).to_numpy() > 0) | household.map(confirmed).eq(True).to_numpy()
    # A number another department gives under a name that fits is the row's own: then it is
    # the relation or the household that is wrong (a person listed in a second household).
    sources = pd.Series(records["source"].to_numpy()[linked]).groupby(cluster[linked]).nunique()
    alone = pd.Series(cluster).map(sources).fillna(0).to_numpy() <= 1
    impossible: np.ndarray = (fit == 0) & trusted & alone
    return impossible


COMPATIBLE, NEAR, FOREIGN = 0, 1, 2


def compatible(name: str | None, pinyin: str | None, modal: str | None, modal_pinyin: str | None) -> int:
    """How a row's name fits the name its number's owner goes by.


    COMPATIBLE links on the number; NEAR (two characters, one of them different: a
    look-alike, or a parent and child of one surname) is left to the second pass with its
    number still counting; FOREIGN means the number is someone else's.
    """
    if not name or not modal:
        return COMPATIBLE
    if name == modal or (pinyin and pinyin == modal_pinyin):
        return COMPATIBLE
    if names_fit(name, modal):
        return COMPATIBLE
    apart = characters_apart(name, modal)
    if apart == 1:
        return COMPATIBLE if len(name_slots(name)) >= 3 else NEAR
    return FOREIGN


def _owner_names(tally: pd.DataFrame) -> pd.DataFrame:
    """Per number, the name its owner goes by: the one that the most votes fit (the votes of
    every row whose name fits it), then a name written whole before one with a placeholder
    (王国* is a damaged 王国刚, never the other way round), then the most votes of its own.
    ``tally`` has one row per number and written name, with its votes."""
    tally = tally.assign(support=tally["vote"], damaged=tally["name"].str.contains(PLACEHOLDER_PATTERN, regex=True))
    several = np.flatnonzero(tally["id"].duplicated(keep=False).to_numpy())
    support = tally["support"].to_numpy().copy()
    # The numbers written under several names, each number's rows together (plain lists:
    # at a million rows, tens of thousands of numbers).
    codes = pd.factorize(tally["id"].to_numpy(dtype=object)[several])[0]
    order = several[np.argsort(codes, kind="stable")]
    bounds = np.flatnonzero(np.diff(np.sort(codes, kind="stable"))) + 1
    all_names, all_pinyins = tally["name"].to_numpy(dtype=object), tally["pinyin"].to_numpy(dtype=object)
    all_votes, all_damaged = tally["vote"].to_numpy(), tally["damaged"].to_numpy(dtype=bool)
    for rows in np.split(order, bounds) if len(order) else []:
        names, pinyins = all_names[rows].tolist(), all_pinyins[rows].tolist()
        votes, damaged = all_votes[rows].tolist(), all_damaged[rows].tolist()
        for position, row in enumerate(rows.tolist()):
            # A damaged name counts only the names it fits: 曾霞? is 曾霞生 written badly, and a
            # 曾玉玉 one character from the damaged form casts no vote for the owner.
            support[row] = sum(
                vote
                for other, (name, pinyin, vote) in enumerate(zip(names, pinyins, votes, strict=True))
                if other == position
                or (
                    names_fit(name, names[position])
                    if damaged[position]
                    else compatible(name, pinyin, names[position], pinyins[position]) == COMPATIBLE
                )
            )
    tally["support"] = support
    # Sorted by number, then most support, a name written whole, most votes, the name.
    numbers = _text_ranks(tally["id"].to_numpy(dtype=object))
    order = np.lexsort((_text_ranks(all_names), -all_votes, all_damaged, -support, numbers))
    first = np.ones(len(order), dtype=bool)
    first[1:] = numbers[order][1:] != numbers[order][:-1]
    return tally.iloc[order[first]]


def _text_ranks(values: np.ndarray) -> np.ndarray:
    """Each string's rank among the distinct strings, sorted (how ``pd.factorize(values,
    sort=True)`` numbers them, -1 for a missing value): only the distinct strings sorted, by
    Python's own sort, which pandas' sorting of objects takes twice as long as."""
    codes, distinct = pd.factorize(values)
    texts = distinct.tolist()
    if not texts:
        return np.full(len(codes), -1, dtype=np.int64)
    order = np.array(sorted(range(len(texts)), key=texts.__getitem__), dtype=np.int64)
    ranks = np.empty(len(order), dtype=np.int64)
    ranks[order] = np.arange(len(order))
    result: np.ndarray = np.where(codes >= 0, ranks[np.clip(codes, 0, None)], -1)
    return result


def _tally(votes: pd.DataFrame) -> pd.DataFrame:
    """Per number and name written with it (sorted by both), the votes and the first pinyin."""
    ids, names = votes["id"].to_numpy(dtype=object), votes["name"].to_numpy(dtype=object)
    key = _text_ranks(ids) * (len(votes) + 1) + _text_ranks(names)
    grouped = votes[["id", "name", "vote", "pinyin"]].groupby(key, sort=True)
    tally = grouped.agg(id=("id", "first"), name=("name", "first"), vote=("vote", "sum"), pinyin=("pinyin", "first"))
    return tally.reset_index(drop=True)


def deterministic_clusters(records: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Cluster ids (-1 for rows left to the second pass) and a mask of rows whose number is someone else's."""
    n = len(records)
    cluster = np.full(n, -1, dtype=np.int64)
    foreign = np.zeros(n, dtype=bool)
    frame = pd.DataFrame(
        {
            "row": np.arange(n),
            "id": records["id"].to_numpy(dtype=object),
            "name": records["name"].to_numpy(dtype=object),
            "pinyin": records["pinyin"].to_numpy(dtype=object),
        }
    )
    stated_birth, id_birth = records["birth_stated"].to_numpy(dtype=object), records["id_birth"].to_numpy(dtype=object)
    stated_sex, id_sex = records["sex_stated"].to_numpy(dtype=object), records["id_sex"].to_numpy(dtype=object)
    has_id = frame["id"].notna().to_numpy()
    # A row that states a birth date or sex other than its number's carries someone else's number.
    contradicts = has_id & (
        (pd.notna(stated_birth) & (stated_birth != id_birth)) | (pd.notna(stated_sex) & (stated_sex != id_sex))
    )
    foreign |= contradicts
    candidates = frame[has_id & ~contradicts]
    # The owner's name: the one most rows fit, where a row whose stated birth date agrees
    # with the number counts as ten (the number is verified as its own).
    verified = pd.notna(stated_birth) & (stated_birth == id_birth)
    votes = candidates.assign(vote=np.where(verified[candidates["row"]], 10, 1)).dropna(subset=["name"])
    tally = _tally(votes)
    tally = _owner_names(tally)
    modal = candidates.merge(
        tally.rename(columns={"name": "modal", "pinyin": "modal_pinyin"})[["id", "modal", "modal_pinyin"]],
        on="id",
        how="left",
    )
    numbers = _text_ranks(modal["id"].to_numpy(dtype=object))
    name, pinyin = modal["name"].to_numpy(dtype=object), modal["pinyin"].to_numpy(dtype=object)
    owner, owner_pinyin = modal["modal"].to_numpy(dtype=object), modal["modal_pinyin"].to_numpy(dtype=object)
    quick = pd.isna(name) | pd.isna(owner) | (name == owner) | (pd.notna(pinyin) & (pinyin == owner_pinyin))
    fit = np.full(len(modal), COMPATIBLE, dtype=np.int8)
    for k in np.flatnonzero(~quick):
        fit[k] = compatible(name[k], pinyin[k], owner[k], owner_pinyin[k])
    rows = modal["row"].to_numpy()
    # A name close to the owner's is still someone else's when the owner is another member
    # of the row's own household: 罗娜 listed with the number of 罗海, the head of her
    # household, carries her father's number (close names run in families).
    undecided = np.flatnonzero(~quick & (fit != FOREIGN))
    if "household" in records and len(undecided):
        # The owner as a member is known by name or by its pinyin (萝静 in one export is 罗静).
        # A member whose own valid number is another is not the owner: a head 罗红 (written
        # 罗*) beside a daughter 罗红 of her own number carries her own.
        members = records[["household", "name", "pinyin", "id"]].dropna(subset=["household"])
        asked = pd.DataFrame(
            {
                "k": undecided,
                "household": records["household"].to_numpy(dtype=object)[rows[undecided]],
                "name": owner[undecided],
                "pinyin": owner_pinyin[undecided],
                "number": modal["id"].to_numpy(dtype=object)[undecided],
            }
        )
        by_name = asked.merge(members[["household", "name", "id"]].drop_duplicates(), on=["household", "name"])
        by_name = by_name[by_name["id"].isna() | (by_name["id"] == by_name["number"])]
        # By pinyin only for a name one character from the owner's: a name that fits it (肖?
        # for 肖JUN) is the owner's, whatever homophone a child bears (肖军).
        written = pd.Series(name[undecided], dtype=object).fillna("")
        apart = asked[
            [not names_fit(own, owner_name) for own, owner_name in zip(written, asked["name"].fillna(""), strict=True)]
        ]
        by_pinyin = apart.dropna(subset=["pinyin"]).merge(
            members[["household", "pinyin", "id"]].dropna(subset=["pinyin"]).drop_duplicates(),
            on=["household", "pinyin"],
        )
        by_pinyin = by_pinyin[by_pinyin["id"].isna() | (by_pinyin["id"] == by_pinyin["number"])]
        fit[np.union1d(by_name["k"].to_numpy(), by_pinyin["k"].to_numpy()).astype(np.int64)] = FOREIGN
    cluster[rows[fit == COMPATIBLE]] = numbers[fit == COMPATIBLE]
    foreign[rows[fit == FOREIGN]] = True
    # A member listed with the number its household's head is listed with carries the head's.
    borrowed = members_with_heads_number(records)
    cluster[borrowed] = -1
    foreign |= borrowed
    # So does a row whose number's age no one of its relation to its household's head can have
    # (a row linked on its number, or one left to the second pass with its number).
    near = np.zeros(n, dtype=bool)
    near[rows[fit == NEAR]] = True
    impossible = impossible_in_household(records, cluster, near)
    cluster[impossible] = -1
    foreign |= impossible
    return cluster, foreign


def members_with_heads_number(records: pd.DataFrame) -> np.ndarray:
    """Rows of a household member (a relation other than head) carrying the valid number a
    head row of the same household carries: a son listed with his father's number, whatever
    the two names (a father and son both named 杨凤)."""
    if not {"household", "relation"} <= set(records.columns):
        return np.zeros(len(records), dtype=bool)
    relation = records["relation"].to_numpy(dtype=object)
    keys = records["household"].astype(object) + "|" + records["id"].astype(object)
    stated = records["household"].notna().to_numpy() & records["id"].notna().to_numpy()
    heads = set(keys[stated & (relation == "head")])
    member = stated & pd.notna(relation) & (relation != "head")
    borrowed: np.ndarray = member & keys.isin(heads).to_numpy(dtype=bool)
    return borrowed
