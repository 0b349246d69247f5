-- One row per allowance household of the roster (see reconcile_rows.dibao_household);
-- active when a row says 正常. Its place, category and head come from its first row.
insert into reconcile_dibao_households (
    batch_id, dibao_household, household_key, county_code, township, village, support_category,
    support_category_label, active, head_name, head_identity_number, members, members_in_registry
)
with rows_of as (
    select x.dibao_household, d.source_row, d.county_code, d.township, d.village, d.support_category,
        d.support_category_label, d.status, d.head_name, d.head_identity_number, x.person_id,
        x.household_key, p.in_registry
    from reconcile_rows x
    join staging_dibao d on d.batch_id = x.batch_id and d.source_row = x.source_row
    join reconcile_persons p on p.batch_id = x.batch_id and p.person_id = x.person_id
    where x.batch_id = :batch_id and x.source = 'dibao'
),
ordered as (
    select rows_of.*, row_number() over (partition by dibao_household order by source_row) as row_order
    from rows_of
),
members as (
    select dibao_household,
        min(household_key) as household_key,
        max(case when status = 'active' then 1 else 0 end) as active,
        count(distinct person_id) as members,
        count(distinct case when in_registry = 1 then person_id end) as members_in_registry
    from rows_of
    group by dibao_household
)
select
    :batch_id, o.dibao_household, m.household_key, o.county_code, o.township, o.village,
    o.support_category, o.support_category_label, m.active, o.head_name, o.head_identity_number,
    m.members, m.members_in_registry
from ordered o
join members m on m.dibao_household = o.dibao_household
where o.row_order = 1
