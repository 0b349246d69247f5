-- One row per registry household: its key, place, head (the row that says 户主, else its
-- first row), the registry's category, status and housing claim, its members (ill or
-- disabled: a living member 患有大病 or 残疾), and its
-- latest housing appraisal (of the house of any member housing names as head; the latest
-- 鉴定日期 counts): safe when A or B, or C/D with 改造状态 已竣工 or 已验收; not known
-- (housing_unsafe null, as with no record at all) when the latest appraisal's level is
-- blank or not one of A–D: an earlier appraisal does not stand in for it.
insert into reconcile_households (
    batch_id, household_number, household_key, county_code, township, village, head_person_id,
    head_name, head_identity_number, poverty_category, poverty_category_label, poverty_status,
    poverty_status_label, claims_unsafe_house, claims_unsafe_house_label, members, living_members,
    ill_or_disabled, housing_rows, appraisal_level, appraisal_date, renovation_status_label, housing_unsafe
)
with heads as (
    -- Each household's head row: its first row that says 户主, else its first row (a
    -- grouping: SQLite's windows cost several times as much).
    select r.household_number,
        coalesce(min(case when r.relation_to_head = 'head' then r.source_row end), min(r.source_row)) as head_row
    from staging_registry r
    cross join person_links l  -- the registry's rows in order, each one's link looked up
    where r.batch_id = :batch_id and r.household_number is not null
        and l.batch_id = r.batch_id and l.source = 'registry' and l.source_row = r.source_row
    group by r.household_number
),
ordered as (
    select
        r.household_number, r.county_code, r.township, r.village, r.name, r.identity_number,
        r.poverty_category, r.poverty_category_label, r.poverty_status, r.poverty_status_label,
        r.claims_unsafe_house, r.claims_unsafe_house_label, l.person_id, l.household_key
    from heads x
    cross join staging_registry r
    cross join person_links l
    where r.batch_id = :batch_id and r.source_row = x.head_row
        and l.batch_id = r.batch_id and l.source = 'registry' and l.source_row = r.source_row
),
members as (
    select m.household_number,
        count(*) as members,
        sum(p.living) as living_members
    from reconcile_household_members m
    join reconcile_persons p on p.batch_id = m.batch_id and p.person_id = m.person_id
    where m.batch_id = :batch_id
    group by m.household_number
),
health as (
    select r.household_number,
        max(case when p.living = 1 and (r.health like '%serious_illness%' or r.health like '%disabled%')
            then 1 else 0 end) as ill
    from staging_registry r
    join person_links l on l.batch_id = r.batch_id and l.source = 'registry' and l.source_row = r.source_row
    join reconcile_persons p on p.batch_id = l.batch_id and p.person_id = l.person_id
    where r.batch_id = :batch_id and r.household_number is not null
    group by r.household_number
),
appraisals as (
    select m.household_number, h.appraisal_level, h.appraisal_date, h.renovation_status,
        h.renovation_status_label,
        count(*) over (partition by m.household_number) as housing_rows,
        row_number() over (
            partition by m.household_number
            order by case when h.appraisal_date is null then 1 else 0 end, h.appraisal_date desc, h.source_row desc
        ) as appraisal_order
    from reconcile_household_members m
    join person_links l on l.batch_id = m.batch_id and l.source = 'housing' and l.person_id = m.person_id
    join staging_housing h on h.batch_id = l.batch_id and h.source_row = l.source_row
    where m.batch_id = :batch_id
)
select
    :batch_id,
    o.household_number,
    coalesce(c.key, o.household_key),
    o.county_code, o.township, o.village,
    o.person_id, o.name, o.identity_number,
    o.poverty_category, o.poverty_category_label, o.poverty_status, o.poverty_status_label,
    o.claims_unsafe_house, o.claims_unsafe_house_label,
    coalesce(m.members, 0), coalesce(m.living_members, 0), coalesce(h.ill, 0),
    coalesce(a.housing_rows, 0), a.appraisal_level, a.appraisal_date, a.renovation_status_label,
    case
        when a.housing_rows is null or a.appraisal_level is null then null
        when a.appraisal_level in ('C', 'D') and coalesce(a.renovation_status, '') not in ('completed', 'accepted')
            then 1
        else 0 end
from ordered o
-- Left joins keep the head rows the outer loop: SQLite then looks the grouped subqueries
-- up by an index instead of scanning one of them for every row of the other.
left join members m on m.household_number = o.household_number
left join health h on h.household_number = o.household_number
left join household_crosswalk c on c.anchor = 'registry:' || o.household_number
left join appraisals a on a.household_number = o.household_number and a.appraisal_order = 1
