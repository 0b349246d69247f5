-- DIBAO_CATEGORY_MISMATCH: the registry's 贫困户属性 names 低保 but no member has active (正常)
-- 农村低保; or names 特困 but no member has active 农村特困 support; or a member has active
-- support of either kind while the registry says 一般贫困户 / 一般脱贫户. An accounts rule:
-- every household listed, the dead members' support included (a death is DECEASED_LISTED's
-- finding).
with support as (
    select m.household_number,
        max(case when d.support_category = 'dibao' then 1 else 0 end) as has_dibao,
        max(case when d.support_category like 'tekun%' then 1 else 0 end) as has_tekun,
        min(d.support_category_label) as first_label,
        max(d.support_category_label) as last_label
    from reconcile_household_members m
    join person_links l on l.batch_id = m.batch_id and l.person_id = m.person_id and l.source = 'dibao'
    join staging_dibao d on d.batch_id = l.batch_id and d.source_row = l.source_row
    where m.batch_id = :batch_id and d.status = 'active'
    group by m.household_number
),
judged as (
    select h.*, coalesce(s.has_dibao, 0) as has_dibao, coalesce(s.has_tekun, 0) as has_tekun,
        s.first_label, s.last_label
    from reconcile_households h
    left join support s on s.household_number = h.household_number
    where h.batch_id = :batch_id
),
cited as (
    select m.household_number, l.source || ':' || cast(l.source_row as varchar(12)) as reference
    from reconcile_household_members m
    cross join person_links l  -- each member's links looked up (not every link of the batch)
    left join staging_dibao d on l.source = 'dibao' and d.batch_id = l.batch_id and d.source_row = l.source_row
    where m.batch_id = :batch_id and l.batch_id = m.batch_id and l.person_id = m.person_id
        and (l.source = 'registry' or (l.source = 'dibao' and d.status = 'active'))
)
select
    j.household_key as subject_key,
    j.head_person_id as person_id,
    j.household_key,
    j.county_code, j.township, j.village,
    j.head_name as subject_name,
    j.head_identity_number as identity_number,
    '建档立卡: 贫困户属性 = ' || coalesce(j.poverty_category_label, '（空白）') || '；民政: '
        || case when j.has_dibao = 0 and j.has_tekun = 0 then '无成员正常享受低保或特困供养'
            else '成员正常享受 ' || j.first_label
                || case when j.last_label <> j.first_label then '、' || j.last_label else '' end end
        as evidence,
    string_agg(c.reference, ';') as source_rows
from judged j
cross join cited c  -- the households found first, then their rows
where c.household_number = j.household_number and (
    (j.poverty_category in ('dibao', 'dibao_exited', 'dibao_tekun') and j.has_dibao = 0)
    or (j.poverty_category in ('tekun', 'tekun_exited', 'dibao_tekun') and j.has_tekun = 0)
    or (j.poverty_category in ('ordinary', 'ordinary_exited') and (j.has_dibao = 1 or j.has_tekun = 1)))
group by j.household_key, j.head_person_id, j.county_code, j.township, j.village, j.head_name,
    j.head_identity_number, j.poverty_category_label, j.has_dibao, j.has_tekun, j.first_label, j.last_label
