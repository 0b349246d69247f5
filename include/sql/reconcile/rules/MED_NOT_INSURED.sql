-- MED_NOT_INSURED: a living registry person with no insurance row of the as-of year that
-- says 参保缴费, in either scheme. Not while such a row waits in match_review as a candidate
-- for the person: the linkage could not decide, the review decides, the next run reports.
-- A person nobody can look up by number (no valid number of their own, tied to no other
-- row) is not known to be insured: reported, and the evidence says why the insurance
-- records could not be searched.
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
    '建档立卡: 在册（是否参加城乡居民基本医疗保险 = '
        || case when p.claims_insured_rows > 0 and p.claims_otherwise_rows > 0
                then p.claims_insured_label || '、' || p.claims_otherwise_label
            when p.claims_insured_rows > 0 then p.claims_insured_label else p.claims_otherwise_label end
        || '）；医保: ' || substr(cast(:as_of as varchar(10)), 1, 4) || '年无参保缴费记录'
        || case
            when p.identified = 0 then '（建档立卡证件号码无效，无法按号码核对）'
            when p.insurance_status_label is not null then '（参保状态 = ' || p.insurance_status_label || '）'
            when p.insurance_latest_year is not null
                then '（最近参保年度 ' || cast(p.insurance_latest_year as varchar(12)) || '）'
            else '（医保无此人任何记录）' end
        as evidence,
    string_agg(c.reference, ';') as source_rows
from reconcile_persons p
join cited c on c.person_id = p.person_id
where p.batch_id = :batch_id and p.in_registry = 1 and p.living = 1 and p.insured = 0
    and p.insurance_pending = 0
group by p.person_id, p.household_key, p.county_code, p.township, p.village, p.name, p.identity_number,
    p.identified, p.insurance_status_label, p.insurance_latest_year,
    p.claims_insured_rows, p.claims_otherwise_rows, p.claims_insured_label, p.claims_otherwise_label
