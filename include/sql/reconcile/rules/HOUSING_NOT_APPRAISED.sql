-- HOUSING_NOT_APPRAISED: a registry household with a living member and no housing record
-- for the house of any of its members.
select
    h.household_key as subject_key,
    h.head_person_id as person_id,
    h.household_key,
    h.county_code, h.township, h.village,
    h.head_name as subject_name,
    h.head_identity_number as identity_number,
    '建档立卡: 户编号 ' || h.household_number || '，' || cast(h.members as varchar(12)) || ' 名成员'
        || '；住建: 无该户任何成员的房屋鉴定记录' as evidence,
    string_agg('registry:' || cast(l.source_row as varchar(12)), ';') as source_rows
from reconcile_households h
join reconcile_household_members m on m.batch_id = h.batch_id and m.household_number = h.household_number
join person_links l on l.batch_id = m.batch_id and l.person_id = m.person_id and l.source = 'registry'
where h.batch_id = :batch_id and h.living_members > 0 and h.housing_rows = 0
group by h.household_key, h.head_person_id, h.county_code, h.township, h.village, h.head_name,
    h.head_identity_number, h.household_number, h.members
