-- HOUSING_UNSAFE: a registry household with a living member whose latest housing appraisal
-- is C or D and whose renovation is not 已竣工 or 已验收.
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
    '建档立卡: 户编号 ' || h.household_number || '，' || cast(h.members as varchar(12)) || ' 名成员'
        || '；住建: 最近一次房屋鉴定等级 = ' || h.appraisal_level
        || coalesce('（' || cast(h.appraisal_date as varchar(10)) || ' 鉴定）', '')
        || '，改造状态 = ' || coalesce(nullif(h.renovation_status_label, ''), '（空白）') as evidence,
    string_agg(c.reference, ';') as source_rows
from reconcile_households h
join cited c on c.household_number = h.household_number
where h.batch_id = :batch_id and h.living_members > 0 and h.housing_unsafe = 1
group by h.household_key, h.head_person_id, h.county_code, h.township, h.village, h.head_name,
    h.head_identity_number, h.household_number, h.members, h.appraisal_level, h.appraisal_date, h.renovation_status_label
