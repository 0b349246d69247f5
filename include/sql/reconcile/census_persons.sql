-- The persons of the run's census extract.
select count(*) from census_extract where run_id = :run_id
