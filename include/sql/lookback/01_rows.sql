-- Every accepted row of the batch with its person and place: the rules read people across
-- sources from here. The identity number is the valid number the row carries, as the
-- linkage established it (a number ending in 000 that another department corroborated
-- included); identity_borrowed says it is someone else's (a child entered with a parent's
-- number), and then its birth date is not the row's. source_rank orders whose word counts
-- first (the registry's). A dibao row's allowance household is known by its head's valid
-- number: the head number of the row, else the member's own when the row is the head's,
-- else the one head number that rows of the same village and head name carry (a head number
-- Excel damaged on one row does not make a household of that row); else by its place and
-- head's name.
insert into lookback_rows (
    batch_id, source, source_row, source_rank, source_label, person_id, household_key,
    identity_number, identity_borrowed, birth_date, name, county_code, township, village, dibao_household
)
select l.batch_id, l.source, l.source_row, 1, '建档立卡', l.person_id, l.household_key,
    l.identity_number, case when l.identity_borrowed then 1 else 0 end,
    case when l.identity_borrowed then null else l.identity_birth_date end,
    r.name, r.county_code, r.township, r.village, null
from person_links l
join staging_registry r on r.batch_id = l.batch_id and r.source_row = l.source_row
where l.batch_id = :batch_id and l.source = 'registry'
union all
select l.batch_id, l.source, l.source_row, 2, '医保', l.person_id, l.household_key,
    l.identity_number, case when l.identity_borrowed then 1 else 0 end,
    case when l.identity_borrowed then null else l.identity_birth_date end,
    i.name, i.county_code, null, null, null
from person_links l
join staging_insurance i on i.batch_id = l.batch_id and i.source_row = l.source_row
where l.batch_id = :batch_id and l.source = 'insurance'
union all
select l.batch_id, l.source, l.source_row, 3, '民政', l.person_id, l.household_key,
    l.identity_number, case when l.identity_borrowed then 1 else 0 end,
    case when l.identity_borrowed then null else l.identity_birth_date end,
    d.name, d.county_code, d.township, d.village,
    coalesce('head:' || d.head_identity_number,
        case when d.relation_to_head = 'head' then 'head:' || d.identity_number end,
        case when n.numbers = 1 then 'head:' || n.head_identity_number end,
        'name:' || coalesce(d.county_code, '') || '|' || coalesce(d.village_key, '') || '|' || coalesce(d.head_name, ''))
from person_links l
join staging_dibao d on d.batch_id = l.batch_id and d.source_row = l.source_row
left join (
    select county_code, village_key, head_name, min(head_identity_number) as head_identity_number,
        count(distinct head_identity_number) as numbers
    from staging_dibao
    where batch_id = :batch_id and head_identity_number is not null
    group by county_code, village_key, head_name
) n on n.county_code = d.county_code and n.village_key = d.village_key and n.head_name = d.head_name
where l.batch_id = :batch_id and l.source = 'dibao'
union all
select l.batch_id, l.source, l.source_row, 4, '住建', l.person_id, l.household_key,
    l.identity_number, case when l.identity_borrowed then 1 else 0 end,
    case when l.identity_borrowed then null else l.identity_birth_date end,
    h.head_name, h.county_code, h.township, h.village, null
from person_links l
join staging_housing h on h.batch_id = l.batch_id and h.source_row = l.source_row
where l.batch_id = :batch_id and l.source = 'housing'
union all
select l.batch_id, l.source, l.source_row, 5, '公安', l.person_id, l.household_key,
    l.identity_number, case when l.identity_borrowed then 1 else 0 end,
    case when l.identity_borrowed then null else l.identity_birth_date end,
    k.name, k.county_code, null, null, null
from person_links l
join staging_hukou k on k.batch_id = l.batch_id and k.source_row = l.source_row
where l.batch_id = :batch_id and l.source = 'hukou'
