-- The members of the households to visit, as the cadre's list names them: each registry
-- household's rows (its members as the registry lists them), and each outside-registry
-- active allowance or dispersed extreme-hardship household's roster rows; with relation to
-- the head, health (the registry's), age at the as-of date and whether the person lives.
-- A person listed twice in a household comes once (its first row).
select h.household_key, 'registry' as source, r.source_row, l.person_id, r.name,
    r.relation_to_head, r.relation_to_head_label, r.health, r.health_label, p.age, p.living
from reconcile_households h
join staging_registry r on r.batch_id = h.batch_id and r.household_number = h.household_number
join person_links l on l.batch_id = r.batch_id and l.source = 'registry' and l.source_row = r.source_row
join reconcile_persons p on p.batch_id = l.batch_id and p.person_id = l.person_id
where h.batch_id = :batch_id
union all
select d.household_key, 'dibao', s.source_row, x.person_id, s.name,
    s.relation_to_head, s.relation_to_head_label, null, null, p.age, p.living
from reconcile_dibao_households d
join reconcile_rows x on x.batch_id = d.batch_id and x.source = 'dibao' and x.dibao_household = d.dibao_household
join staging_dibao s on s.batch_id = x.batch_id and s.source_row = x.source_row
join reconcile_persons p on p.batch_id = x.batch_id and p.person_id = x.person_id
where d.batch_id = :batch_id and d.active = 1 and d.members_in_registry = 0
    and d.support_category in ('dibao', 'tekun_dispersed')
