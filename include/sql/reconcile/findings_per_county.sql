-- What the run found (its current execution), per county and rule.
select coalesce(county_code, ''), rule_code, count(*) from finding_observations
where run_id = :run_id and superseded_at is null group by coalesce(county_code, ''), rule_code
