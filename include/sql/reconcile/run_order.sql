-- Every run with what orders it: its as-of date, then when it was first run.
select run_id, as_of, sequence from reconcile_runs
