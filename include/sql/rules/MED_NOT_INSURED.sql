-- MED_NOT_INSURED: a living registry person with no insurance row of the as-of year that
-- says 参保缴费, in either scheme. Not while such a row waits in match_review as a candidate
-- for the person: the linkage could not decide, the review decides, the next run reports.
-- A person nobody can look up by number (no valid number of their own, tied to no other
-- row) is not known to be insured: reported, and the evidence says why the insurance
-- records could not be searched.
with claims as (
    select l.person_id,
        sum(case when r.claims_insured = 'yes' then 1 else 0 end) as yes_rows,
        sum(case when r.claims_insured = 'yes' then 0 else 1 end) as other_rows,
        min(case when r.claims_insured = 'yes' then r.claims_insured_label end) as yes_label,
        min(case when r.claims_insured = 'yes' then null
            else coalesce(nullif(r.claims_insured_label, ''), '（空白）') end) as other_label
    from staging_registry r
    join person_links l on l.batch_id = r.batch_id and l.source = 'registry' and l.source_row = r.source_row
    where r.batch_id = :batch_id
    group by l.person_id
),
cited as (
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
        || case when m.yes_rows > 0 and m.other_rows > 0 then m.yes_label || '、' || m.other_label
            when m.yes_rows > 0 then m.yes_label else m.other_label end
        || '）；医保: ' || substr(cast(:as_of as varchar(10)), 1, 4) || '年无参保缴费记录'
        || case
            when p.identified = 0 then '（建档立卡证件号码无效，无法按号码核对）'
            when p.insurance_status_label is not null then '（参保状态 = ' || p.insurance_status_label || '）'
            when p.insurance_latest_year is not null
                then '（最近参保年度 ' || cast(p.insurance_latest_year as varchar(12)) || '）'
            else '（医保无此人任何记录）' end
        as evidence,
    string_agg(c.reference, ';') as source_rows
from lookback_persons p
join claims m on m.person_id = p.person_id
join cited c on c.person_id = p.person_id
where p.batch_id = :batch_id and p.in_registry = 1 and p.living = 1 and p.insured = 0
    and p.insurance_pending = 0
group by p.person_id, p.household_key, p.county_code, p.township, p.village, p.name, p.identity_number,
    p.identified, p.insurance_status_label, p.insurance_latest_year, m.yes_rows, m.other_rows, m.yes_label, m.other_label
