-- EDU_OUT_OF_SCHOOL: a living registry child aged 6–15 at the as-of date (from the birth
-- date in the person's valid identity number) whose 在校生状况 is blank or 辍学.
select
    p.person_id as subject_key,
    p.person_id,
    p.household_key,
    p.county_code, p.township, p.village,
    p.name as subject_name,
    p.identity_number,
    '建档立卡: 在校生状况 = ' || min(coalesce(nullif(r.schooling_label, ''), '（空白，非在校生）'))
        || '；' || cast(p.age as varchar(12)) || ' 周岁（' || cast(p.birth_date as varchar(10)) || ' 出生），义务教育阶段'
        as evidence,
    string_agg('registry:' || cast(r.source_row as varchar(12)), ';') as source_rows
-- From the living children, their registry rows looked up (not every registry row read).
from reconcile_persons p
cross join person_links l
cross join staging_registry r
where p.batch_id = :batch_id and p.living = 1 and p.age between 6 and 15
    and l.batch_id = p.batch_id and l.person_id = p.person_id and l.source = 'registry'
    and r.batch_id = l.batch_id and r.source_row = l.source_row
    and (coalesce(r.schooling_label, '') = '' or r.schooling = 'dropped_out')
group by p.person_id, p.household_key, p.county_code, p.township, p.village, p.name, p.identity_number,
    p.age, p.birth_date
