-- DECEASED_LISTED: a person whose registration hukou cancelled for death before the as-of
-- date who is still a registry member, or a member of an active (正常) dibao household.
with dead as (
    select person_id from reconcile_persons where batch_id = :batch_id and died_on is not null
),
-- The rows of the dead, their links looked up by person (not every row of the batch).
listed as (
    select l.person_id, 'registry' as source, r.source_row, 1 as in_registry, 0 as active_dibao
    from dead x
    cross join person_links l
    cross join staging_registry r
    where l.batch_id = :batch_id and l.person_id = x.person_id and l.source = 'registry'
        and r.batch_id = l.batch_id and r.source_row = l.source_row
    union all
    select l.person_id, 'dibao', d.source_row, 0, 1
    from dead x
    cross join person_links l
    cross join staging_dibao d
    where l.batch_id = :batch_id and l.person_id = x.person_id and l.source = 'dibao'
        and d.batch_id = l.batch_id and d.source_row = l.source_row and d.status = 'active'
    union all
    select l.person_id, 'hukou', k.source_row, 0, 0
    from dead x
    cross join person_links l
    cross join staging_hukou k
    where l.batch_id = :batch_id and l.person_id = x.person_id and l.source = 'hukou'
        and k.batch_id = l.batch_id and k.source_row = l.source_row
        and k.reason = 'death' and k.cancellation_date < :as_of
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
cross join reconcile_persons p
where p.batch_id = :batch_id and p.person_id = x.person_id and p.died_on is not null
group by p.person_id, p.household_key, p.county_code, p.township, p.village, p.name, p.identity_number, p.died_on
having max(x.in_registry) = 1 or max(x.active_dibao) = 1
