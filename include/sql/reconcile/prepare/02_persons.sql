-- One row per linked person with the facts several rules share. Name, place and household
-- come from the person's first row, the registry's first when the person is in it (its
-- household is the person's); the identity number (and so the birth date and
-- age) from the first valid number of the person's own, the registry's first: a number the
-- person's row carries that is someone else's (a parent's) gives them neither number nor age
-- (identity_borrowed says their registry row carries one). A person is dead for the
-- look-back when hukou cancelled their registration for death before the as-of date, in
-- the hukou delivery of the deaths_from_batch parameter (this batch when it delivered
-- hukou, else the latest earlier run's batch that did: persons keep their ids, the dead
-- stay dead; null when no batch has delivered hukou yet);
-- insured when a row of the as-of year says 参保缴费, in either scheme; insurance_pending
-- when a person insured so is a candidate for one of the person's registry rows in
-- match_review (the linkage could not decide: people will); identified unless every row of the person is
-- `unmatched` (no usable number of its own, and tied to no other row: nobody can look the
-- person up in another department's records); and what the person's registry rows claim of
-- insurance, read by MED_NOT_INSURED and MED_CLAIM_MISMATCH.
insert into reconcile_persons (
    batch_id, person_id, in_registry, registry_rows, household_number, household_key, name,
    identity_number, identity_borrowed, birth_date, age, county_code, township, village, died_on, living,
    insured, insured_schemes, residents_unsubsidised, insurance_status_label, insurance_latest_year,
    insurance_pending, identified, claims_insured_rows, claims_otherwise_rows, claims_insured_label,
    claims_otherwise_label
)
with firsts as (
    -- Each person's first row (registry first, then in row order) and first row carrying a
    -- valid number of the person's own, each as one key of source rank and row: a grouping,
    -- not a window over every row (SQLite's windows cost several times as much).
    select
        r.person_id,
        sum(case when r.source = 'registry' then 1 else 0 end) as registry_rows,
        min(cast(r.source_rank as bigint) * 1000000000 + r.source_row) as place_key,
        min(case when r.identity_number is not null and r.identity_borrowed = 0
            then cast(r.source_rank as bigint) * 1000000000 + r.source_row end) as number_key,
        max(case when r.source = 'registry' then r.identity_borrowed else 0 end) as identity_borrowed
    from reconcile_rows r
    where r.batch_id = :batch_id
    group by r.person_id
),
people as (
    -- No row with a valid number of the person's own: the first row's number is none or
    -- borrowed, and its birth date stands only when not borrowed.
    select
        k.person_id, k.registry_rows, k.identity_borrowed,
        f.household_number, f.household_key, f.name, f.county_code, f.township, f.village,
        n.identity_number,
        case when n.person_id is not null then n.birth_date
            when f.identity_borrowed = 0 then f.birth_date end as birth_date
    from firsts k
    join reconcile_rows f on f.batch_id = :batch_id and f.person_id = k.person_id
        and cast(f.source_rank as bigint) * 1000000000 + f.source_row = k.place_key
    left join reconcile_rows n on n.batch_id = :batch_id and n.person_id = k.person_id
        and cast(n.source_rank as bigint) * 1000000000 + n.source_row = k.number_key
),
registry as (
    -- What the person's registry rows say of insurance (each row of a person listed twice
    -- speaks for itself). The registry's rows are read in order and their links looked up
    -- (CROSS JOIN: SQLite would otherwise read every link of the batch in person order).
    select l.person_id,
        sum(case when r.claims_insured = 'yes' then 1 else 0 end) as claims_insured_rows,
        sum(case when r.claims_insured = 'yes' then 0 else 1 end) as claims_otherwise_rows,
        min(case when r.claims_insured = 'yes' then r.claims_insured_label end) as claims_insured_label,
        min(case when r.claims_insured = 'yes' then null
            else coalesce(nullif(r.claims_insured_label, ''), '（空白）') end) as claims_otherwise_label
    from staging_registry r
    cross join person_links l
    where r.batch_id = :batch_id
        and l.batch_id = r.batch_id and l.source = 'registry' and l.source_row = r.source_row
    group by l.person_id
),
deaths as (
    select l.person_id, min(k.cancellation_date) as died_on
    from staging_hukou k
    cross join person_links l  -- the deaths first, each one's link looked up (not every link of the batch)
    where k.batch_id = :deaths_from_batch and k.reason = 'death' and k.cancellation_date < :as_of
        and l.batch_id = k.batch_id and l.source = 'hukou' and l.source_row = k.source_row
    group by l.person_id
),
insurance as (
    select
        l.person_id,
        max(case when i.year = cast(substr(cast(:as_of as varchar(10)), 1, 4) as integer)
            and i.status = 'paid' then 1 else 0 end) as insured,
        max(case when i.year = cast(substr(cast(:as_of as varchar(10)), 1, 4) as integer)
            and i.status = 'paid' and i.scheme = 'residents' and i.subsidy_category is null then 1 else 0 end)
            as residents_unsubsidised,
        max(case when i.year = cast(substr(cast(:as_of as varchar(10)), 1, 4) as integer)
            and i.status = 'paid' and i.scheme = 'residents' and i.subsidy_category is not null then 1 else 0 end)
            as residents_subsidised,
        min(case when i.year = cast(substr(cast(:as_of as varchar(10)), 1, 4) as integer)
            and i.status = 'paid' then i.scheme_label end) as first_scheme,
        max(case when i.year = cast(substr(cast(:as_of as varchar(10)), 1, 4) as integer)
            and i.status = 'paid' then i.scheme_label end) as last_scheme,
        min(case when i.year = cast(substr(cast(:as_of as varchar(10)), 1, 4) as integer)
            and (i.status is null or i.status <> 'paid') then i.status_label end) as status_label,
        max(i.year) as latest_year
    from staging_insurance i
    cross join person_links l  -- the insurance rows in order, each one's link looked up
    where i.batch_id = :batch_id
        and l.batch_id = i.batch_id and l.source = 'insurance' and l.source_row = i.source_row
    group by l.person_id
),
delivered as (
    select distinct a.source from ingest_accounting a where a.batch_id = :batch_id
),
unidentified as (
    -- The persons every row of whom is `unmatched` (a few thousand: looking up these is
    -- cheaper than grouping every link of the batch by person). The links are read source
    -- by source, in stored order (CROSS JOIN: SQLite would otherwise read every link of the
    -- batch in person order, each row from elsewhere in the table).
    select u.person_id
    from delivered s
    cross join person_links u
    where u.batch_id = :batch_id and u.source = s.source and u.match_method = 'unmatched'
        and not exists (
            select 1 from person_links o
            where o.batch_id = u.batch_id and o.person_id = u.person_id and o.match_method <> 'unmatched'
        )
),
pending as (
    -- A registry row in match_review with a row of another person insured in the as-of year
    -- (a paid enrolment of that year: the candidate's own, or another of its rows). Each
    -- pair is taken from its registry side (from both, when both rows are the registry's)
    -- and joined on equalities only, which an engine looks up by index or hash: a join on
    -- an OR of the two pairings is, on an engine that hashes joins, every pair against
    -- every link.
    select l.person_id, 1 as pending
    from (
        select m.source_row_1 as registry_row, m.source_2 as other_source, m.source_row_2 as other_row
        from match_review m
        where m.batch_id = :batch_id and m.source_1 = 'registry'
        union all
        select m.source_row_2, m.source_1, m.source_row_1
        from match_review m
        where m.batch_id = :batch_id and m.source_2 = 'registry'
    ) c
    cross join person_links l  -- from the pairs (SQLite would read every link in person order)
    cross join person_links o
    where l.batch_id = :batch_id and l.source = 'registry' and l.source_row = c.registry_row
        and o.batch_id = :batch_id and o.source = c.other_source and o.source_row = c.other_row
        and o.person_id <> l.person_id
        and exists (
            select 1
            from person_links e
            cross join staging_insurance i
            where e.batch_id = :batch_id and e.person_id = o.person_id and e.source = 'insurance'
                and i.batch_id = e.batch_id and i.source_row = e.source_row and i.status = 'paid'
                and i.year = cast(substr(cast(:as_of as varchar(10)), 1, 4) as integer)
        )
    group by l.person_id
)
select
    :batch_id,
    p.person_id,
    case when p.registry_rows > 0 then 1 else 0 end,
    p.registry_rows,
    p.household_number,
    p.household_key,
    p.name,
    p.identity_number,
    p.identity_borrowed,
    p.birth_date,
    cast(substr(cast(:as_of as varchar(10)), 1, 4) as integer)
        - cast(substr(cast(p.birth_date as varchar(10)), 1, 4) as integer)
        - case when substr(cast(p.birth_date as varchar(10)), 6, 5) > substr(cast(:as_of as varchar(10)), 6, 5)
            then 1 else 0 end,
    p.county_code,
    p.township,
    p.village,
    d.died_on,
    case when d.died_on is null then 1 else 0 end,
    coalesce(i.insured, 0),
    case when i.first_scheme = i.last_scheme then i.first_scheme
        else i.first_scheme || '、' || i.last_scheme end,
    case when i.residents_unsubsidised = 1 and i.residents_subsidised = 0 then 1 else 0 end,
    i.status_label,
    i.latest_year,
    coalesce(r.pending, 0),
    case when p.person_id in (select person_id from unidentified) then 0 else 1 end,
    coalesce(g.claims_insured_rows, 0),
    coalesce(g.claims_otherwise_rows, 0),
    g.claims_insured_label,
    g.claims_otherwise_label
from people p
left join registry g on g.person_id = p.person_id
left join deaths d on d.person_id = p.person_id
left join insurance i on i.person_id = p.person_id
left join pending r on r.person_id = p.person_id
