-- The registry households to visit, with their head and members.
select household_key, county_code, township, village, head_name, head_identity_number, members, ill_or_disabled
from reconcile_households where batch_id = :batch_id
