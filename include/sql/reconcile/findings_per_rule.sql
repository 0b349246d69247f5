-- What the run found (its current execution), per rule.
select rule_code, count(*) from finding_observations
where run_id = :run_id and superseded_at is null group by rule_code
