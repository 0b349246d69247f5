-- Which persons each registry household lists (a person listed in two households is a
-- member of both).
insert into reconcile_household_members (batch_id, household_number, person_id)
select distinct l.batch_id, r.household_number, l.person_id
from person_links l
join staging_registry r on r.batch_id = l.batch_id and r.source_row = l.source_row
where l.batch_id = :batch_id and l.source = 'registry' and r.household_number is not null
