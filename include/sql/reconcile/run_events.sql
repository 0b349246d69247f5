-- The run's finding events (opened, reopened, resolved, not_checked), per event.
select event, count(*) from finding_events where run_id = :run_id group by event
