-- MED_CLAIM_MISMATCH: a registry row says 是否参加城乡居民基本医疗保险 = 是 but the person is
-- not insured in the as-of year, or says otherwise while the person is insured (each row of
-- a person listed twice speaks for itself). Not "not insured" while a candidate enrolment
-- of the person waits in match_review; a person nobody can look up by number is not known
-- to be insured (see MED_NOT_INSURED).
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
    -- The claim that disagrees with insurance, and beside it another row's that does not.
    '建档立卡: 是否参加城乡居民基本医疗保险 = '
        || case when p.insured = 0
            then m.yes_label || case when m.other_rows > 0 then '（另一登记行 = ' || m.other_label || '）' else '' end
            else m.other_label || case when m.yes_rows > 0 then '（另一登记行 = ' || m.yes_label || '）' else '' end
            end
        || '；医保: '
        || substr(cast(:as_of as varchar(10)), 1, 4)
        || case when p.insured = 1 then '年已参保缴费（' || p.insured_schemes || '）'
            when p.identified = 0 then '年无参保缴费记录（建档立卡证件号码无效，无法按号码核对）'
            else '年无参保缴费记录' end
        as evidence,
    string_agg(c.reference, ';') as source_rows
from lookback_persons p
join claims m on m.person_id = p.person_id
join cited c on c.person_id = p.person_id
where p.batch_id = :batch_id and p.living = 1
    and ((p.insured = 0 and m.yes_rows > 0 and p.insurance_pending = 0) or (p.insured = 1 and m.other_rows > 0))
group by p.person_id, p.household_key, p.county_code, p.township, p.village, p.name, p.identity_number,
    m.yes_rows, m.other_rows, m.yes_label, m.other_label, p.insured, p.insured_schemes, p.identified
