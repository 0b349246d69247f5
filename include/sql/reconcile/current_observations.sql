-- Every finding each run found (its current execution only), with its county and the
-- sources it was made from: what the lifecycle walks.
select finding_id, run_id, county_code, made_from from finding_observations where superseded_at is null
