-- The active allowance and dispersed extreme-hardship households with no member in the
-- registry, to visit too.
select household_key, county_code, township, village, head_name, head_identity_number, members, support_category
from reconcile_dibao_households
where batch_id = :batch_id and active = 1 and members_in_registry = 0
    and support_category in ('dibao', 'tekun_dispersed')
