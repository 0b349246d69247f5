-- DIBAO_OUTSIDE_REGISTRY: an active (正常) dibao or dispersed extreme-hardship household none
-- of whose members is in the registry (档外低保户 / 分散供养特困): to be visited.
select
    d.household_key as subject_key,
    min(x.person_id) as person_id,
    d.household_key,
    d.county_code, d.township, d.village,
    d.head_name as subject_name,
    d.head_identity_number as identity_number,
    '民政: ' || coalesce(d.support_category_label, '') || '，状态 = 正常，' || cast(d.members as varchar(12))
        || ' 名成员；建档立卡: 无任何成员在册' as evidence,
    string_agg('dibao:' || cast(x.source_row as varchar(12)), ';') as source_rows
from reconcile_dibao_households d
join reconcile_rows x on x.batch_id = d.batch_id and x.source = 'dibao' and x.dibao_household = d.dibao_household
where d.batch_id = :batch_id and d.active = 1 and d.members_in_registry = 0
    and d.support_category in ('dibao', 'tekun_dispersed')
group by d.household_key, d.county_code, d.township, d.village, d.head_name, d.head_identity_number,
    d.support_category_label, d.members
