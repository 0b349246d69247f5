-- DUPLICATE_PERSON: the same person listed in two registry households, or twice in one
-- (an exactly repeated row included).
select
    p.person_id as subject_key,
    p.person_id,
    p.household_key,
    p.county_code, p.township, p.village,
    p.name as subject_name,
    p.identity_number,
    '建档立卡: 同一人登记 ' || cast(count(*) as varchar(12)) || ' 次'
        || case when count(distinct r.household_number) > 1
            then '，分属 ' || cast(count(distinct r.household_number) as varchar(12)) || ' 户（户编号 '
                || min(r.household_number) || ' 与 户编号 ' || max(r.household_number) || '）'
            else '，同在户编号 ' || min(r.household_number) end
        || case when count(distinct r.row_hash) < count(*) then '，有完全重复的行' else '' end
        as evidence,
    string_agg('registry:' || cast(r.source_row as varchar(12)), ';') as source_rows
from staging_registry r
join person_links l on l.batch_id = r.batch_id and l.source = 'registry' and l.source_row = r.source_row
join reconcile_persons p on p.batch_id = l.batch_id and p.person_id = l.person_id
where r.batch_id = :batch_id
group by p.person_id, p.household_key, p.county_code, p.township, p.village, p.name, p.identity_number
having count(*) > 1
