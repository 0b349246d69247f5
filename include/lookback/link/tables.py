"""The link stage's tables: each accepted row's person and household (``person_links``), the
pairs for people and their decisions, the weights learnt, and the crosswalks that keep a
person's and a household's key from run to run."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Date, DateTime, Float, Index, Integer, MetaData, String, Table, Text


def define_tables(metadata: MetaData) -> None:
    """The link stage's tables."""
    """The link stage's tables: links, review, decisions, weights and the key crosswalks."""
    Table(
        "person_links",
        metadata,
        Column("batch_id", String(64), primary_key=True),
        Column("source", String(32), primary_key=True),
        Column("source_row", Integer, primary_key=True),
        Column("person_id", String(16), nullable=False),
        Column("household_key", String(16), nullable=False),
        Column("match_method", String(16), nullable=False),  # id_exact / probabilistic / manual / unmatched
        Column("match_score", Float),
        # The person's rows carry more than one valid identity number: flagged, never hidden.
        Column("conflicting_identity", Boolean, nullable=False),
        # The valid identity number the row carries as the linkage established it (a number
        # ending in 000 that another department corroborated included), its birth date, and
        # whether it is someone else's (a child entered with a parent's number).
        Column("identity_number", String(18)),
        Column("identity_birth_date", Date),
        Column("identity_borrowed", Boolean, nullable=False, default=False),
        # A person's rows by source, read from the index alone: the look-back goes from a
        # person to their rows of one source (and SQLite then to the source's row) for
        # millions of persons, and a lookup in the table for each costs a random read.
        Index("ix_person_links_person", "batch_id", "person_id", "source", "source_row"),
    )
    Table(
        "match_review",
        metadata,
        Column("batch_id", String(64), primary_key=True),
        Column("source_1", String(32), primary_key=True),
        Column("source_row_1", Integer, primary_key=True),
        Column("source_2", String(32), primary_key=True),
        Column("source_row_2", Integer, primary_key=True),
        Column("row_hash_1", String(64), nullable=False),
        Column("row_hash_2", String(64), nullable=False),
        Column("name_1", Text),
        Column("identity_1_masked", String(32)),
        Column("name_2", Text),
        Column("identity_2_masked", String(32)),
        Column("score", Float, nullable=False),
        Column("explanation", Text, nullable=False),
        Column("decision", String(16)),  # filled by people: same / different
        # What people deciding need of each row beside name and masked number: where it is,
        # its household, relation and (for its age at the as-of date) birth date; and the
        # explanation in Chinese.
        *(
            Column(f"{name}_{side}", Date if name == "birth_date" else Text)
            for side in (1, 2)
            for name in ("county", "village", "household", "relation", "birth_date")
        ),
        Column("explanation_zh", Text),
    )
    Table(
        "match_decisions",
        metadata,
        Column("row_hash_1", String(64), primary_key=True),
        Column("row_hash_2", String(64), primary_key=True),
        Column("decision", String(16), nullable=False),
        Column("decided_in_batch", String(64), nullable=False),
    )
    Table(
        "link_weights",
        metadata,
        Column("batch_id", String(64), primary_key=True),
        Column("field", String(32), primary_key=True),
        Column("level", String(64), primary_key=True),
        Column("weight", Float, nullable=False),
    )
    for name in ("person_crosswalk", "household_crosswalk"):
        Table(
            name,
            metadata,
            Column("anchor", String(128), primary_key=True),
            # Several anchors may name one key: a person found again by what their rows say
            # keeps their key under the anchor of this batch too.
            Column("key", String(16), nullable=False, index=True),
            Column("first_batch", String(64), nullable=False),
            Column("created_at", DateTime(timezone=True), nullable=False),
        )
    # What a person's rows say about them (name, place, household, relation, stated birth
    # date and sex, not their number): how a person with no usable number is found again in
    # a later batch whose rows have changed, and a person whose number is new.
    Table(
        "person_row_anchors",
        metadata,
        Column("anchor", String(64), primary_key=True),
        Column("key", String(16), nullable=False),
        Column("last_batch", String(64), nullable=False),
    )
