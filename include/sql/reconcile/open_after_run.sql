-- The findings open after a run: those it found, and those it could not check (a source
-- they are made from not delivered) that an earlier run left open.
select finding_id, rule_code, subject_kind, subject_key
from finding_observations
where run_id = :run_id and superseded_at is null
union
select f.finding_id, f.rule_code, f.subject_kind, f.subject_key
from finding_events e
join findings f on f.finding_id = e.finding_id
where e.run_id = :run_id and e.event = 'not_checked'
