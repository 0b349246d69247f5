-- MED_CLAIM_MISMATCH: a registry row says 是否参加城乡居民基本医疗保险 = 是 but the person is
-- not insured in the as-of year, or says otherwise while the person is insured (each row of
-- a person listed twice speaks for itself). Not "not insured" while a candidate enrolment
-- of the person waits in match_review; a person nobody can look up by number is not known
-- to be insured (see MED_NOT_INSURED).
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
    -- The claim that disagrees with insurance, and beside it another row's that does not.
    '建档立卡: 是否参加城乡居民基本医疗保险 = '
        || case when p.insured = 0
            then p.claims_insured_label || case when p.claims_otherwise_rows > 0
                then '（另一登记行 = ' || p.claims_otherwise_label || '）' else '' end
            else p.claims_otherwise_label || case when p.claims_insured_rows > 0
                then '（另一登记行 = ' || p.claims_insured_label || '）' else '' end
            end
        || '；医保: '
        || substr(cast(:as_of as varchar(10)), 1, 4)
        || case when p.insured = 1 then '年已参保缴费（' || p.insured_schemes || '）'
            when p.identified = 0 then '年无参保缴费记录（建档立卡证件号码无效，无法按号码核对）'
            else '年无参保缴费记录' end
        as evidence,
    string_agg(c.reference, ';') as source_rows
from reconcile_persons p
join cited c on c.person_id = p.person_id
where p.batch_id = :batch_id and p.living = 1
    and ((p.insured = 0 and p.claims_insured_rows > 0 and p.insurance_pending = 0)
        or (p.insured = 1 and p.claims_otherwise_rows > 0))
group by p.person_id, p.household_key, p.county_code, p.township, p.village, p.name, p.identity_number,
    p.claims_insured_rows, p.claims_otherwise_rows, p.claims_insured_label, p.claims_otherwise_label,
    p.insured, p.insured_schemes, p.identified
