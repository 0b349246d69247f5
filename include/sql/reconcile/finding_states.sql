-- Every finding's status, the runs that first and last found it and that resolved it, and
-- its county.
select status, first_seen_run, last_seen_run, resolved_in_run, county_code from findings
