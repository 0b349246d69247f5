-- The findings open after a run, per household they count for. Open: those the run found,
-- and those it could not check (a source they are made from not delivered) that an earlier
-- run left open. A household finding counts for its household; a person's for the
-- registry households listing the person and the allowance household of the person's
-- roster rows. With each, whom it is about and what it rests on, for the visit lists.
with open_items as (
    select finding_id, rule_code, subject_kind, subject_key, subject_name, evidence
    from finding_observations
    where run_id = :run_id and superseded_at is null
    union
    select f.finding_id, f.rule_code, f.subject_kind, f.subject_key, f.subject_name, f.evidence
    from finding_events e
    join findings f on f.finding_id = e.finding_id
    where e.run_id = :run_id and e.event = 'not_checked'
)
select h.household_key, o.finding_id, o.rule_code, o.subject_name, o.evidence
from open_items o
join reconcile_household_members m on m.batch_id = :batch_id and m.person_id = o.subject_key
join reconcile_households h on h.batch_id = m.batch_id and h.household_number = m.household_number
where o.subject_kind = 'person'
union
select d.household_key, o.finding_id, o.rule_code, o.subject_name, o.evidence
from open_items o
join reconcile_rows x on x.batch_id = :batch_id and x.person_id = o.subject_key and x.source = 'dibao'
join reconcile_dibao_households d on d.batch_id = x.batch_id and d.dibao_household = x.dibao_household
where o.subject_kind = 'person'
union
select o.subject_key, o.finding_id, o.rule_code, o.subject_name, o.evidence
from open_items o
where coalesce(o.subject_kind, '') <> 'person'
