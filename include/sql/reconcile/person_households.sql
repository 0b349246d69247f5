-- Which household a person's finding counts for: the registry households listing the
-- person, and the allowance household of the person's roster rows.
select m.person_id, h.household_key
from reconcile_household_members m
join reconcile_households h on h.batch_id = m.batch_id and h.household_number = m.household_number
where m.batch_id = :batch_id
union
select x.person_id, d.household_key
from reconcile_rows x
join reconcile_dibao_households d on d.batch_id = x.batch_id and d.dibao_household = x.dibao_household
where x.batch_id = :batch_id and x.source = 'dibao'
