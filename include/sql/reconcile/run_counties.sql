-- The counties the batch covers: a run checks the findings of these counties only.
select distinct county_code from reconcile_rows where batch_id = :batch_id and county_code is not null
