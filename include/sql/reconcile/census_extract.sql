-- The census population (普查底册): one row per registry person, with the linked attributes
-- of every source. Registry attributes come from the person's first registry row; the
-- identity number is the person's own valid number (the registry's, else a linked source's):
-- never a number a row carries that is someone else's (a child entered with a parent's),
-- which identity_borrowed reports instead, with no number and no age from it. The
-- appraisal level is that of the household's latest appraisal, 未知 when housing delivered
-- it blank or outside A–D (the house has a record; its level is not known).
insert into census_extract (
    run_id, person_id, household_key, household_number, county_code, township, village, village_code,
    name, identity_number, identity_number_source, identity_borrowed, sex, birth_date, age, ethnicity, relation_to_head,
    poverty_category, poverty_status, exit_year, poverty_cause, health, labour_capacity, schooling,
    claims_insured, claims_unsafe_house, claims_safe_water, insured, insurance_schemes,
    subsidy_categories, dibao_support, appraisal_level, appraisal_date, renovation_status, deceased,
    died_on, open_findings
)
with registry_rows as (
    -- The person's first registry row, and the valid number of the person's own that a
    -- registry row carries: the registry's rows read in order, each one's link looked up
    -- (CROSS JOIN keeps SQLite to that order).
    select l.person_id, min(r.source_row) as first_row,
        max(case when l.identity_borrowed then null else l.identity_number end) as number
    from staging_registry r
    cross join person_links l
    where r.batch_id = :batch_id
        and l.batch_id = r.batch_id and l.source = 'registry' and l.source_row = r.source_row
    group by l.person_id
),
subsidies as (
    select l.person_id,
        min(i.subsidy_category_label) as first_label,
        max(i.subsidy_category_label) as last_label
    from staging_insurance i
    cross join person_links l  -- the insurance rows in order, each one's link looked up
    where i.batch_id = :batch_id and i.status = 'paid'
        and i.year = cast(substr(cast(:as_of as varchar(10)), 1, 4) as integer)
        and l.batch_id = i.batch_id and l.source = 'insurance' and l.source_row = i.source_row
    group by l.person_id
),
support as (
    select l.person_id,
        min(d.support_category_label || '（' || coalesce(d.status_label, '') || '）') as first_label,
        max(d.support_category_label || '（' || coalesce(d.status_label, '') || '）') as last_label
    from staging_dibao d
    cross join person_links l  -- the dibao rows in order, each one's link looked up
    where d.batch_id = :batch_id
        and l.batch_id = d.batch_id and l.source = 'dibao' and l.source_row = d.source_row
    group by l.person_id
),
-- The findings about the person open after the run: found by it, or left open because the
-- run could not check them (a source they are made from was not delivered).
open_items as (
    select person_id, count(*) as findings
    from (
        select finding_id, person_id
        from finding_observations
        where run_id = :run_id and superseded_at is null and subject_kind = 'person'
        union
        select f.finding_id, f.person_id
        from finding_events e
        join findings f on f.finding_id = e.finding_id
        where e.run_id = :run_id and e.event = 'not_checked' and f.subject_kind = 'person'
    ) items
    group by person_id
)
select
    :run_id, p.person_id, coalesce(h.household_key, p.household_key), f.household_number,
    f.county_code, f.township, f.village, f.village_code, f.name, p.identity_number,
    case when p.identity_number is null then null when n.number is not null then 'registry' else 'linked' end,
    case when p.identity_borrowed = 1 then '是' else '否' end,
    f.sex_label, p.birth_date, p.age, f.ethnicity, f.relation_to_head_label, f.poverty_category_label,
    f.poverty_status_label, f.exit_year, f.poverty_cause_label, f.health_label, f.labour_capacity_label,
    f.schooling_label, f.claims_insured_label, f.claims_unsafe_house_label, f.claims_safe_water_label,
    case when p.insured = 1 then '是' else '否' end,
    p.insured_schemes,
    case when s.first_label = s.last_label then s.first_label else s.first_label || '、' || s.last_label end,
    case when d.first_label = d.last_label then d.first_label else d.first_label || '、' || d.last_label end,
    case when h.housing_rows > 0 and h.appraisal_level is null then '未知' else h.appraisal_level end,
    h.appraisal_date, h.renovation_status_label,
    case when p.died_on is not null then '是' else '否' end,
    p.died_on,
    coalesce(o.findings, 0)
from reconcile_persons p
join registry_rows n on n.person_id = p.person_id
join staging_registry f on f.batch_id = p.batch_id and f.source_row = n.first_row
-- A registry row without 户编号 belongs to no registry household: the person is still listed.
left join reconcile_households h on h.batch_id = p.batch_id and h.household_number = f.household_number
left join subsidies s on s.person_id = p.person_id
left join support d on d.person_id = p.person_id
left join open_items o on o.person_id = p.person_id
where p.batch_id = :batch_id and p.in_registry = 1
