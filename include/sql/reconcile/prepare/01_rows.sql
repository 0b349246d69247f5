-- Every accepted row of the batch with its person and place: the rules read people across
-- sources from here. The identity number is the valid number the row carries, as the
-- linkage established it (a number ending in 000 that another department corroborated
-- included); identity_borrowed says it is someone else's (a child entered with a parent's
-- number), and then its birth date is not the row's. source_rank orders whose word counts
-- first (the registry's). A dibao row's allowance household is known by its head's valid
-- number: its own head number when borne out (a head's own row, 本人, or a second row of its
-- village and head name gives it); else the one number borne out among the rows of its
-- village with the same head name (a head number Excel damaged on one row, or someone
-- else's, does not make a household of that row); else its own head number, the member's own
-- when the row is the head's, or its place and head's name. A registry row's household
-- (户编号) is kept with it: a person's household is their first registry row's.
-- Stored in person order (the table's key), so that a person's rows lie together for the
-- statements that read them person by person; each source's rows are read in their own
-- order and their links looked up (CROSS JOIN: SQLite would otherwise walk the links in
-- person order and fetch each source row from elsewhere in its table).
insert into reconcile_rows (
    batch_id, source, source_row, source_rank, source_label, person_id, household_key,
    identity_number, identity_borrowed, birth_date, name, county_code, township, village, dibao_household,
    household_number
)
with attested as (
    -- Per village and head name (as it sounds: 张na is 张娜), the head numbers borne out: the
    -- number of a head's own row (本人), or a head number that two rows give.
    select county_code, village_key, head_name_pinyin, identity_number as number
    from staging_dibao
    where batch_id = :batch_id and relation_to_head = 'head' and identity_number is not null
    union
    select county_code, village_key, head_name_pinyin, head_identity_number
    from staging_dibao
    where batch_id = :batch_id and head_identity_number is not null
    group by county_code, village_key, head_name_pinyin, head_identity_number
    having count(*) >= 2
),
allowance_heads as (
    select county_code, village_key, head_name_pinyin, min(number) as head_number, count(*) as numbers
    from attested
    group by county_code, village_key, head_name_pinyin
)
select l.batch_id, l.source, l.source_row, 1, '建档立卡', l.person_id, l.household_key,
    l.identity_number, case when l.identity_borrowed then 1 else 0 end,
    case when l.identity_borrowed then null else l.identity_birth_date end,
    r.name, r.county_code, r.township, r.village, null, r.household_number
from staging_registry r
cross join person_links l
where r.batch_id = :batch_id and l.batch_id = r.batch_id and l.source_row = r.source_row and l.source = 'registry'
union all
select l.batch_id, l.source, l.source_row, 2, '医保', l.person_id, l.household_key,
    l.identity_number, case when l.identity_borrowed then 1 else 0 end,
    case when l.identity_borrowed then null else l.identity_birth_date end,
    i.name, i.county_code, null, null, null, null
from staging_insurance i
cross join person_links l
where i.batch_id = :batch_id and l.batch_id = i.batch_id and l.source_row = i.source_row and l.source = 'insurance'
union all
select l.batch_id, l.source, l.source_row, 3, '民政', l.person_id, l.household_key,
    l.identity_number, case when l.identity_borrowed then 1 else 0 end,
    case when l.identity_borrowed then null else l.identity_birth_date end,
    d.name, d.county_code, d.township, d.village,
    coalesce('head:' || a.number, case when h.numbers = 1 then 'head:' || h.head_number end,
        'head:' || d.head_identity_number,
        case when d.relation_to_head = 'head' then 'head:' || d.identity_number end,
        'name:' || coalesce(d.county_code, '') || '|' || coalesce(d.village_key, '') || '|' || coalesce(d.head_name, '')),
    null
from staging_dibao d
cross join person_links l
left join attested a on a.county_code = d.county_code and a.village_key = d.village_key
    and a.head_name_pinyin = d.head_name_pinyin and a.number = d.head_identity_number
left join allowance_heads h on h.county_code = d.county_code and h.village_key = d.village_key
    and h.head_name_pinyin = d.head_name_pinyin
where d.batch_id = :batch_id and l.batch_id = d.batch_id and l.source_row = d.source_row and l.source = 'dibao'
union all
select l.batch_id, l.source, l.source_row, 4, '住建', l.person_id, l.household_key,
    l.identity_number, case when l.identity_borrowed then 1 else 0 end,
    case when l.identity_borrowed then null else l.identity_birth_date end,
    h.head_name, h.county_code, h.township, h.village, null, null
from staging_housing h
cross join person_links l
where h.batch_id = :batch_id and l.batch_id = h.batch_id and l.source_row = h.source_row and l.source = 'housing'
union all
select l.batch_id, l.source, l.source_row, 5, '公安', l.person_id, l.household_key,
    l.identity_number, case when l.identity_borrowed then 1 else 0 end,
    case when l.identity_borrowed then null else l.identity_birth_date end,
    k.name, k.county_code, null, null, null, null
from staging_hukou k
cross join person_links l
where k.batch_id = :batch_id and l.batch_id = k.batch_id and l.source_row = k.source_row and l.source = 'hukou'
order by 6, 4, 3  -- person_id, source_rank, source_row: the table's key
