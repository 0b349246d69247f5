-- Per county and village, the registry rows whose 户编号 was damaged or blank and that no
-- evidence placed in a household.
select county_code, village, count(*) from staging_registry
where batch_id = :batch_id and household_number is null group by county_code, village
