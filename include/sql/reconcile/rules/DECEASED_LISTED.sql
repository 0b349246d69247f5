-- DECEASED_LISTED: a person whose registration hukou cancelled for death before the as-of
-- date who is still a registry member, or a member of an active (正常) dibao household.
with listed as (
    select l.person_id, 'registry' as source, r.source_row, 1 as in_registry, 0 as active_dibao
    from staging_registry r
    join person_links l on l.batch_id = r.batch_id and l.source = 'registry' and l.source_row = r.source_row
    where r.batch_id = :batch_id
    union all
    select l.person_id, 'dibao', d.source_row, 0, 1
    from staging_dibao d
    join person_links l on l.batch_id = d.batch_id and l.source = 'dibao' and l.source_row = d.source_row
    where d.batch_id = :batch_id and d.status = 'active'
    union all
    select l.person_id, 'hukou', k.source_row, 0, 0
    from staging_hukou k
    join person_links l on l.batch_id = k.batch_id and l.source = 'hukou' and l.source_row = k.source_row
    where k.batch_id = :batch_id and k.reason = 'death' and k.cancellation_date < :as_of
)
select
    p.person_id as subject_key,
    p.person_id,
    p.household_key,
    p.county_code, p.township, p.village,
    p.name as subject_name,
    p.identity_number,
    '公安: ' || cast(p.died_on as varchar(10)) || ' 因死亡注销户籍'
        || case when max(x.in_registry) = 1 then '；建档立卡: 仍在册' else '' end
        || case when max(x.active_dibao) = 1 then '；民政: 仍在正常享受的低保/特困户中' else '' end
        as evidence,
    string_agg(x.source || ':' || cast(x.source_row as varchar(12)), ';') as source_rows
from listed x
join reconcile_persons p on p.batch_id = :batch_id and p.person_id = x.person_id
where p.died_on is not null
group by p.person_id, p.household_key, p.county_code, p.township, p.village, p.name, p.identity_number, p.died_on
having max(x.in_registry) = 1 or max(x.active_dibao) = 1
