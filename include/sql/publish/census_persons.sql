-- The persons of the run's census extract, for the manifest.
select count(*) from census_extract where run_id = :run_id
