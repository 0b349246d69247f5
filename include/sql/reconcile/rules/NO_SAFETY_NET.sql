-- NO_SAFETY_NET: a registry household still 未脱贫 or 返贫 in which no living member aged
-- 16–64 has labour capacity (普通劳动力, 技能劳动力, 弱劳动力或半劳动力) and no living member
-- has active (正常) dibao or extreme-hardship support (a living-only rule: support still
-- paid to a dead member is no one's safety net).
with workers as (
    -- The registry rows with labour capacity, each one's link, membership and person looked
    -- up (CROSS JOIN keeps SQLite to this order: from the members it read every link of
    -- each person).
    select m.household_number
    from staging_registry r
    cross join person_links l
    cross join reconcile_household_members m
    cross join reconcile_persons p
    where r.batch_id = :batch_id and r.labour_capacity in ('ordinary', 'skilled', 'weak')
        and l.batch_id = r.batch_id and l.source = 'registry' and l.source_row = r.source_row
        and m.batch_id = l.batch_id and m.household_number = r.household_number and m.person_id = l.person_id
        and p.batch_id = m.batch_id and p.person_id = m.person_id and p.living = 1 and p.age between 16 and 64
    group by m.household_number
),
supported as (
    select m.household_number
    from reconcile_household_members m
    join reconcile_persons p on p.batch_id = m.batch_id and p.person_id = m.person_id
    join person_links l on l.batch_id = m.batch_id and l.person_id = m.person_id and l.source = 'dibao'
    join staging_dibao d on d.batch_id = l.batch_id and d.source_row = l.source_row
    where m.batch_id = :batch_id and p.living = 1 and d.status = 'active'
    group by m.household_number
)
select
    h.household_key as subject_key,
    h.head_person_id as person_id,
    h.household_key,
    h.county_code, h.township, h.village,
    h.head_name as subject_name,
    h.head_identity_number as identity_number,
    '建档立卡: 脱贫标志 = ' || coalesce(h.poverty_status_label, '') || '，' || cast(h.living_members as varchar(12))
        || ' 名在世成员中无16–64岁有劳动能力者；民政: 无在世成员正常享受低保或特困供养' as evidence,
    string_agg('registry:' || cast(l.source_row as varchar(12)), ';') as source_rows
from reconcile_households h
cross join reconcile_household_members m  -- the households first, then their members' registry links
cross join person_links l
where h.batch_id = :batch_id and h.living_members > 0
    and m.batch_id = h.batch_id and m.household_number = h.household_number
    and l.batch_id = m.batch_id and l.person_id = m.person_id and l.source = 'registry'
    and h.poverty_status in ('not_exited', 'returned')
    and h.household_number not in (select household_number from workers)
    and h.household_number not in (select household_number from supported)
group by h.household_key, h.head_person_id, h.county_code, h.township, h.village, h.head_name,
    h.head_identity_number, h.poverty_status_label, h.living_members
