-- MED_NOT_SUBSIDISED: a living registry person insured in the residents' scheme in the
-- as-of year whose enrolment names no subsidised-enrolment category (资助参保类别).
with cited as (
    select l.person_id, l.source || ':' || cast(l.source_row as varchar(12)) as reference
    from person_links l
    where l.batch_id = :batch_id and l.source in ('registry', 'insurance')
)
select
    p.person_id as subject_key,
    p.person_id,
    p.household_key,
    p.county_code, p.township, p.village,
    p.name as subject_name,
    p.identity_number,
    '建档立卡: 在册贫困人口；医保: ' || substr(cast(:as_of as varchar(10)), 1, 4)
        || '年城乡居民基本医疗保险已参保缴费，资助参保类别为空（应为 建档立卡贫困人口 等）' as evidence,
    string_agg(c.reference, ';') as source_rows
from reconcile_persons p
join cited c on c.person_id = p.person_id
where p.batch_id = :batch_id and p.in_registry = 1 and p.living = 1 and p.residents_unsubsidised = 1
group by p.person_id, p.household_key, p.county_code, p.township, p.village, p.name, p.identity_number
