-- Every finding's status, the runs that first and last found it and that resolved it, its
-- county and where the county's answer stands (its rectification state).
select status, first_seen_run, last_seen_run, resolved_in_run, county_code, rectification_state from findings
