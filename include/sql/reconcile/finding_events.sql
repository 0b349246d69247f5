-- One finding's events, a run each.
select run_id, event from finding_events where finding_id = :finding_id
