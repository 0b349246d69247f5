-- RELAPSE_RISK: a household that left poverty (已脱贫, either kind) with a member who 患有大病
-- or 残疾, and at least one open MED_NOT_INSURED (a living member) or HOUSING_UNSAFE
-- finding in this run.
with not_insured as (
    select m.household_number, count(distinct o.person_id) as people
    from finding_observations o
    join reconcile_household_members m on m.batch_id = :batch_id and m.person_id = o.person_id
    where o.run_id = :run_id and o.superseded_at is null and o.rule_code = 'MED_NOT_INSURED'
    group by m.household_number
),
unsafe as (
    select distinct o.household_key
    from finding_observations o
    where o.run_id = :run_id and o.superseded_at is null and o.rule_code = 'HOUSING_UNSAFE'
)
select
    h.household_key as subject_key,
    h.head_person_id as person_id,
    h.household_key,
    h.county_code, h.township, h.village,
    h.head_name as subject_name,
    h.head_identity_number as identity_number,
    '建档立卡: 脱贫标志 = ' || coalesce(h.poverty_status_label, '') || '，有成员患有大病或残疾；'
        || case when n.people is not null
            then '医保: ' || cast(n.people as varchar(12)) || ' 名成员未参保' else '' end
        || case when n.people is not null and u.household_key is not null then '；' else '' end
        || case when u.household_key is not null then '住建: 住房不安全' else '' end as evidence,
    string_agg('registry:' || cast(l.source_row as varchar(12)), ';') as source_rows
from reconcile_households h
left join not_insured n on n.household_number = h.household_number
left join unsafe u on u.household_key = h.household_key
join reconcile_household_members m on m.batch_id = h.batch_id and m.household_number = h.household_number
join person_links l on l.batch_id = m.batch_id and l.person_id = m.person_id and l.source = 'registry'
where h.batch_id = :batch_id and h.living_members > 0 and h.ill_or_disabled = 1
    and h.poverty_status in ('exited_with_policies', 'exited_without_policies')
    and (n.people is not null or u.household_key is not null)
group by h.household_key, h.head_person_id, h.county_code, h.township, h.village, h.head_name,
    h.head_identity_number, h.poverty_status_label, n.people, u.household_key
