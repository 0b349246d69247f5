"""The reconcile stage's tables: the prepared tables the rules read (``reconcile_*``), the
runs, what each run found and each finding's state and events, the visit roster and the
census extract."""

from __future__ import annotations

from sqlalchemy import Column, Date, DateTime, Float, Index, Integer, MetaData, String, Table, Text

# What a finding says, as each run observed it and as the findings table keeps it.
FINDING_ATTRIBUTES = (
    "rule_code",
    "subject_kind",
    "subject_key",
    "person_id",
    "household_key",
    "county_code",
    "township",
    "village",
    "subject_name",
    "subject_id_masked",
    "evidence",
    "source_rows",
    "responsible",
)
# The census extract's columns, in file order (person_id first); labels as delivered.
CENSUS_COLUMNS = (
    "person_id",
    "household_key",
    "household_number",
    "county_code",
    "township",
    "village",
    "village_code",
    "name",
    "identity_number",
    "identity_number_source",  # registry / linked (from another source) / empty: no valid number
    # 是: a registry row of the person carries a number that is someone else's (a parent's);
    # identity_number is then the person's own from another source, or empty
    "identity_borrowed",
    "sex",
    "birth_date",
    "age",
    "ethnicity",
    "relation_to_head",
    "poverty_category",
    "poverty_status",
    "exit_year",
    "poverty_cause",
    "health",
    "labour_capacity",
    "schooling",
    "claims_insured",
    "claims_unsafe_house",
    "claims_safe_water",
    "insured",
    "insurance_schemes",
    "subsidy_categories",
    "dibao_support",
    "appraisal_level",
    "appraisal_date",
    "renovation_status",
    "deceased",
    "died_on",
    "open_findings",
)
_CENSUS_INTEGERS = frozenset({"age", "exit_year", "open_findings"})
_CENSUS_DATES = frozenset({"birth_date", "appraisal_date", "died_on"})


def define_tables(metadata: MetaData) -> None:
    """The reconcile stage's tables."""
    """The look-back's tables: what the rules read (per batch, rebuilt by each look-back of
    it), the findings observed per run and their lifecycle across runs, and the run's
    deliverables (visit roster, census extract)."""
    place = ("county_code", "township", "village")
    Table(
        "reconcile_rows",  # every accepted row with its person, valid number and place
        metadata,
        Column("batch_id", String(64), primary_key=True),
        Column("person_id", String(16), primary_key=True),
        Column("source_rank", Integer, primary_key=True),  # registry first: whose words count first
        Column("source_row", Integer, primary_key=True),
        Column("source", String(32), nullable=False),
        Column("source_label", Text, nullable=False),
        Column("household_key", String(16), nullable=False),
        Column("identity_number", String(18)),  # valid after normalisation, else null
        Column("identity_borrowed", Integer, nullable=False),  # 1: the number is someone else's
        Column("birth_date", Date),  # of the number: null when it is someone else's
        Column("name", Text),
        *(Column(name, Text) for name in place),
        Column("dibao_household", Text),  # dibao rows: the allowance household
        Column("household_number", Text),  # registry rows: the household (户编号)
    )
    Table(
        "reconcile_persons",  # one row per linked person: the facts several rules share
        metadata,
        Column("batch_id", String(64), primary_key=True),
        Column("person_id", String(16), primary_key=True),
        Column("in_registry", Integer, nullable=False),
        Column("registry_rows", Integer, nullable=False),
        Column("household_number", Text),  # the first registry household listing the person
        Column("household_key", String(16), nullable=False),
        Column("name", Text),
        Column("identity_number", String(18)),
        Column("identity_borrowed", Integer, nullable=False),  # 1: a registry row carries someone else's number
        Column("birth_date", Date),
        Column("age", Integer),  # full years at the as-of date
        *(Column(name, Text) for name in place),
        # hukou: registration cancelled for death before the as-of date, in this batch's hukou
        # delivery, else the latest earlier run's batch that delivered hukou (the dead stay dead)
        Column("died_on", Date),
        Column("living", Integer, nullable=False),
        Column("insured", Integer, nullable=False),  # a 参保缴费 row of the as-of year, either scheme
        Column("insured_schemes", Text),  # labels of the schemes paid in the as-of year
        Column("residents_unsubsidised", Integer, nullable=False),
        Column("insurance_status_label", Text),  # the as-of year's status when not paid
        Column("insurance_latest_year", Integer),
        Column("insurance_pending", Integer, nullable=False),  # a candidate enrolment awaits review
        Column("identified", Integer, nullable=False),  # not every row unmatched: the person can be looked up
        # the registry rows' 是否参加城乡居民基本医疗保险: how many say 是 and how many say
        # otherwise (blank included), and a label of each
        Column("claims_insured_rows", Integer, nullable=False),
        Column("claims_otherwise_rows", Integer, nullable=False),
        Column("claims_insured_label", Text),
        Column("claims_otherwise_label", Text),
        # What the rules ask of a person they reach from a household or another source's row,
        # each person looked up in turn: an index of a few columns, which stays in the page
        # cache where the whole rows do not (a million registry persons make 2.4 million
        # persons of all sources: 360 MB of rows, this index 90 MB).
        Index("ix_reconcile_persons_living", "batch_id", "person_id", "living", "age"),
    )
    Table(
        "reconcile_household_members",  # registry household ↔ person (a person may be in two)
        metadata,
        Column("batch_id", String(64), primary_key=True),
        Column("household_number", Text, primary_key=True),
        Column("person_id", String(16), primary_key=True),
        Index("ix_reconcile_household_members_person", "batch_id", "person_id"),
    )
    Table(
        "reconcile_households",  # one row per registry household
        metadata,
        Column("batch_id", String(64), primary_key=True),
        Column("household_number", Text, primary_key=True),
        Column("household_key", String(16), nullable=False),
        *(Column(name, Text) for name in place),
        Column("head_person_id", String(16)),
        Column("head_name", Text),
        Column("head_identity_number", String(18)),
        Column("poverty_category", Text),
        Column("poverty_category_label", Text),
        Column("poverty_status", Text),
        Column("poverty_status_label", Text),
        Column("claims_unsafe_house", Text),
        Column("claims_unsafe_house_label", Text),
        Column("members", Integer, nullable=False),
        Column("living_members", Integer, nullable=False),
        Column("ill_or_disabled", Integer, nullable=False),  # a member 患有大病 or 残疾
        Column("housing_rows", Integer, nullable=False),
        Column("appraisal_level", Text),  # of the latest appraisal
        Column("appraisal_date", Date),
        Column("renovation_status_label", Text),
        Column("housing_unsafe", Integer),  # null: no housing record, or the latest level is unknown
        Index("ix_reconcile_households_key", "batch_id", "household_key"),
    )
    Table(
        "reconcile_dibao_households",  # one row per allowance household of the roster
        metadata,
        Column("batch_id", String(64), primary_key=True),
        Column("dibao_household", Text, primary_key=True),  # the head's number, else place and head's name
        Column("household_key", String(16), nullable=False),
        *(Column(name, Text) for name in place),
        Column("support_category", Text),
        Column("support_category_label", Text),
        Column("active", Integer, nullable=False),
        Column("head_name", Text),
        Column("head_identity_number", String(18)),
        Column("members", Integer, nullable=False),
        Column("members_in_registry", Integer, nullable=False),
    )
    Table(
        "reconcile_runs",  # one row per look-back run; runs are ordered by as-of date, then sequence
        metadata,
        Column("run_id", String(96), primary_key=True),
        Column("batch_id", String(64), nullable=False),
        Column("as_of", Date, nullable=False),
        Column("sequence", Integer, nullable=False),
        Column("counties", Text, nullable=False),  # the counties the batch's registry covers
        Column("looked_back_at", DateTime(timezone=True), nullable=False),  # of the current execution
        Column("execution", Integer, nullable=False),  # how many times the run was looked back: the current one
        Column("sources_delivered", Text, nullable=False),  # ingest_accounting says ingested, comma-separated
        Column("rules_not_applied", Text, nullable=False),  # a source they read was not delivered
        Column("deaths_from_batch", String(64)),  # whose hukou delivery says who is dead (null: none yet)
    )
    Table(
        "finding_observations",  # what each run found: the history of every item, never deleted
        metadata,
        Column("run_id", String(96), primary_key=True),
        Column("finding_id", String(64), primary_key=True),
        # Running a run again is its next execution: what an earlier one said stays, superseded.
        Column("execution", Integer, primary_key=True),
        Column("superseded_at", DateTime(timezone=True)),  # null: the run's current execution
        *(Column(name, Text) for name in FINDING_ATTRIBUTES),
        # The sources the finding was made from: a later run that did not deliver one of
        # them cannot check it (comma-separated).
        Column("made_from", Text, nullable=False),
        Index("ix_finding_observations_rule", "run_id", "rule_code"),
        Index("ix_finding_observations_finding", "finding_id"),
    )
    Table(
        "reconcile_county_tasks",  # the county tasks of a run's execution done (the look-back split)
        metadata,
        Column("run_id", String(96), primary_key=True),
        Column("execution", Integer, primary_key=True),
        Column("county_code", String(16), primary_key=True),  # "": the rows and findings of no county
        Column("findings", Integer, nullable=False),  # what the task found in this county
        Column("finished_at", DateTime(timezone=True), nullable=False),
    )
    Table(
        "findings",  # one row per item ever found, with its state after the latest run
        metadata,
        Column("finding_id", String(64), primary_key=True),
        Column("status", String(16), nullable=False),  # open / resolved
        Column("first_seen_run", String(96), nullable=False),
        Column("last_seen_run", String(96), nullable=False),
        # The latest run that checked the item: found it, or could have (it covered the item's
        # county and delivered every source the item is made from). A later run covering the
        # county that is not this one could not check it: the item stays as that run found it.
        Column("last_checked_run", String(96), nullable=False),
        Column("resolved_at", Date),  # the as-of date of the run that no longer found it
        Column("resolved_in_run", String(96)),
        Column("times_reopened", Integer, nullable=False),
        *(Column(name, Text) for name in FINDING_ATTRIBUTES),
        # What the county says it did, beside what the data says (status): see
        # lookback.reconcile.rectification; null until the states are first derived.
        Column("rectification_state", String(16)),
    )
    Table(
        "rectification_reports",  # what counties answered about findings: every answer kept
        metadata,
        Column("finding_id", String(64), primary_key=True),
        Column("report_number", Integer, primary_key=True),  # 1, 2, … per finding: the latest counts
        Column("run_id", String(96), nullable=False),  # whose published workbook was answered
        Column("county_code", String(16), nullable=False),
        Column("measure", Text),  # 整改措施
        Column("responsible", Text),  # 责任人
        Column("deadline", Date),  # 完成时限
        Column("state", String(16), nullable=False),  # fixed / in_progress / cannot_fix (整改情况)
        Column("note", Text),  # 情况说明: the reason when it cannot be fixed
        Column("return_id", String(64), nullable=False),
        Column("sheet", Text, nullable=False),  # where in the returned file
        Column("row", Integer, nullable=False),
    )
    Table(
        "samples",  # the province's spot checks (抽样核查): one row per sample drawn
        metadata,
        Column("sample_id", String(96), primary_key=True),
        Column("run_id", String(96), nullable=False),  # whose visit roster it was drawn from
        Column("seed", Integer, nullable=False),
        Column("confidence", Float, nullable=False),
        Column("margin", Float, nullable=False),
        Column("per_county", Integer),  # a fixed size per county; null: from confidence and margin
        Column("drawn_at", DateTime(timezone=True), nullable=False),
        Column("households", Integer, nullable=False),
    )
    Table(
        "sample_households",  # the households a sample drew, per county and stratum
        metadata,
        Column("sample_id", String(96), primary_key=True),
        Column("household_key", String(16), primary_key=True),
        Column("county_code", String(16), nullable=False),
        Column("stratum", String(64), nullable=False),  # visit category | open / clear
        Column("stratum_households", Integer, nullable=False),  # the stratum's households in the county
        Column("position", Integer, nullable=False),  # 1, 2, … in the county's list
    )
    Table(
        "sample_results",  # what the inspectors found at a sampled household
        metadata,
        Column("sample_id", String(96), primary_key=True),
        Column("household_key", String(16), primary_key=True),
        Column("matches", Integer, nullable=False),  # 1: found as recorded
        Column("items", Text),  # 不相符事项: what did not match
        Column("checked_on", Date),
        Column("inspector", Text),
        Column("returned_by", Text, nullable=False),
        Column("read_at", DateTime(timezone=True), nullable=False),
    )
    Table(
        "rectification_returns",  # the files counties returned, each read once
        metadata,
        Column("return_id", String(64), primary_key=True),  # SHA-256 of the file
        Column("file_name", Text, nullable=False),
        Column("run_id", String(96), nullable=False),
        Column("county_code", String(16), nullable=False),
        Column("returned_by", Text, nullable=False),
        Column("read_at", DateTime(timezone=True), nullable=False),
        Column("reports", Integer, nullable=False),
    )
    Table(
        "finding_events",  # opened / resolved / reopened, per run
        metadata,
        Column("finding_id", String(64), primary_key=True),
        Column("run_id", String(96), primary_key=True),
        Column("event", String(16), nullable=False),
        Column("as_of", Date, nullable=False),
        # What one run opened, resolved and reopened (the ops view counts them per run).
        Index("ix_finding_events_run", "run_id", "event"),
    )
    Table(
        "visit_roster",
        metadata,
        Column("run_id", String(96), primary_key=True),
        Column("household_key", String(16), primary_key=True),
        Column("visit_category", String(32), nullable=False),
        Column("visit_category_label", Text, nullable=False),
        *(Column(name, Text) for name in place),
        Column("head_name", Text),
        Column("head_id_masked", String(32)),
        Column("members", Integer, nullable=False),
        Column("open_findings", Integer, nullable=False),
        Column("finding_codes", Text),
        Column("route_order", Integer, nullable=False),
        Column("member_list", Text),  # the members in words, one per line, the head first
        Column("check_items", Text),  # the open findings in words, one numbered line each
    )
    Table(
        "census_extract",  # the statistics bureau's extract: identity numbers in full
        metadata,
        Column("run_id", String(96), primary_key=True),
        Column("person_id", String(16), primary_key=True),
        *(
            Column(name, Integer if name in _CENSUS_INTEGERS else Date if name in _CENSUS_DATES else Text)
            for name in CENSUS_COLUMNS[1:]
        ),
    )
