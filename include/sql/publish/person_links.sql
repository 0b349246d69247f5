-- Every accepted row of one batch with the person and household it was linked to.
select
    person_id,
    source,
    source_row,
    household_key,
    match_method,
    match_score,
    conflicting_identity
from person_links
where batch_id = :batch_id
order by source, source_row
