-- ID_INVALID: a registry person whose identity number is not a valid 18-character number
-- after normalisation (old division codes are valid; a number lost to Excel is not
-- guessed; one ending in 000 that another department delivered alike is the person's). The
-- number shown is the person's valid number from another source, if any.
select
    p.person_id as subject_key,
    p.person_id,
    p.household_key,
    p.county_code, p.township, p.village,
    p.name as subject_name,
    p.identity_number,
    '建档立卡: 证件号码 = ' || coalesce(min(nullif(r.identity_number_raw, '')), '（空白）') || '，'
        || min(case r.identity_number_problem
            when 'blank' then '未填写'
            when 'excel_damaged' then '被Excel按数值存储，末几位已丢失'
            when 'bad_check_character' then '校验码不符'
            when 'bad_birth_date' then '出生日期不存在'
            when 'unknown_province' then '省级区划代码不存在'
            when 'bad_length' then '位数不对'
            when 'bad_characters' then '含无效字符'
            else '无效' end)
        || case when p.identity_number is not null then '；其他部门登记的号码: ' || p.identity_number else '' end
        as evidence,
    string_agg('registry:' || cast(r.source_row as varchar(12)), ';') as source_rows
from staging_registry r
join person_links l on l.batch_id = r.batch_id and l.source = 'registry' and l.source_row = r.source_row
join reconcile_persons p on p.batch_id = l.batch_id and p.person_id = l.person_id
where r.batch_id = :batch_id and l.identity_number is null
group by p.person_id, p.household_key, p.county_code, p.township, p.village, p.name, p.identity_number
