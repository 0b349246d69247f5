-- HOUSING_CLAIM_MISMATCH: the registry's 是否危房户 disagrees with the latest housing record
-- (否 while the house is unsafe, 是 while it is safe). Nothing either way while the latest
-- appraisal's level is unknown (housing_unsafe null).
with cited as (
    select m.household_number, l.source || ':' || cast(l.source_row as varchar(12)) as reference
    from reconcile_household_members m
    join person_links l on l.batch_id = m.batch_id and l.person_id = m.person_id
        and l.source in ('registry', 'housing')
    where m.batch_id = :batch_id
)
select
    h.household_key as subject_key,
    h.head_person_id as person_id,
    h.household_key,
    h.county_code, h.township, h.village,
    h.head_name as subject_name,
    h.head_identity_number as identity_number,
    '建档立卡: 是否危房户 = ' || coalesce(nullif(h.claims_unsafe_house_label, ''), '（空白）')
        || '；住建: 最近一次鉴定等级 = ' || coalesce(h.appraisal_level, '（空白）')
        || '，改造状态 = ' || coalesce(nullif(h.renovation_status_label, ''), '（空白）')
        || case when h.housing_unsafe = 1 then '，住房不安全' else '，住房安全' end as evidence,
    string_agg(c.reference, ';') as source_rows
from reconcile_households h
join cited c on c.household_number = h.household_number
where h.batch_id = :batch_id and h.living_members > 0 and h.housing_rows > 0 and h.housing_unsafe is not null
    and (case when h.claims_unsafe_house = 'yes' then 1 else 0 end) <> h.housing_unsafe
group by h.household_key, h.head_person_id, h.county_code, h.township, h.village, h.head_name,
    h.head_identity_number, h.claims_unsafe_house_label, h.appraisal_level, h.renovation_status_label,
    h.housing_unsafe
