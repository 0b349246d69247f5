-- What every execution of every run said of one finding.
select run_id, execution, superseded_at, evidence from finding_observations
where finding_id = :finding_id
