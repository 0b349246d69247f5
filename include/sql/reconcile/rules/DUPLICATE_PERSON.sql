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
-- From the persons with more than one registry row (reconcile_persons counts them): their
-- links and rows looked up, not every registry row of the batch grouped.
from reconcile_persons p
cross join person_links l
cross join staging_registry r
where p.batch_id = :batch_id and p.registry_rows > 1
    and l.batch_id = p.batch_id and l.person_id = p.person_id and l.source = 'registry'
    and r.batch_id = l.batch_id and r.source_row = l.source_row
group by p.person_id, p.household_key, p.county_code, p.township, p.village, p.name, p.identity_number
having count(*) > 1
