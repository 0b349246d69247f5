-- ID_CONFLICT: one valid identity number carried by two or more different people (the
-- linkage says they are not the same person), at least one of them in the registry. Every
-- person involved is a finding, citing their own rows that carry the number. hukou's rows
-- count when it is delivered (optional_sources).
with holders as (
    select r.identity_number, r.person_id
    from reconcile_rows r
    where r.batch_id = :batch_id and r.identity_number is not null
    group by r.identity_number, r.person_id
),
shared as (
    select h.identity_number, count(*) as people
    from holders h
    join reconcile_persons p on p.batch_id = :batch_id and p.person_id = h.person_id
    group by h.identity_number
    having count(*) > 1 and max(p.in_registry) = 1
),
-- The people holding each shared number (a few thousand of the batch's people: the rows
-- read below are theirs, looked up by person, not every row of the batch).
involved as (
    select h.identity_number, h.person_id, s.people
    from holders h
    join shared s on s.identity_number = h.identity_number
),
carrying as (
    select i.identity_number, i.people, r.person_id, r.source, r.source_row, r.source_label, r.name
    from involved i
    join reconcile_rows r on r.batch_id = :batch_id and r.person_id = i.person_id
        and r.identity_number = i.identity_number
),
-- The sources whose rows carry each shared number: every person's finding is made from
-- all of them (made_from), though it cites the person's own rows only.
carriers as (
    select c.identity_number, string_agg(c.source, ';') as sources
    from (select distinct identity_number, source from carrying) c
    group by c.identity_number
)
select
    p.person_id as subject_key,
    p.person_id,
    p.household_key,
    p.county_code, p.township, p.village,
    p.name as subject_name,
    min(r.identity_number) as identity_number,
    '证件号码 ' || min(r.identity_number) || ' 登记在 ' || cast(max(r.people) as varchar(12))
        || ' 个不同的人名下；本人: ' || min(r.source_label || ' ' || coalesce(r.name, '（无姓名）'))
        || case when p.in_registry = 1 then '（建档立卡在册）' else '（不在建档立卡）' end
        as evidence,
    string_agg(r.source || ':' || cast(r.source_row as varchar(12)), ';') as source_rows,
    string_agg(c.sources, ';') as made_from
from carrying r
join carriers c on c.identity_number = r.identity_number
join reconcile_persons p on p.batch_id = :batch_id and p.person_id = r.person_id
group by p.person_id, p.household_key, p.county_code, p.township, p.village, p.name, p.in_registry
