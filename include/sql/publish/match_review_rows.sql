-- Candidate pairs of one batch the linkage left for people to decide, strongest first.
select
    source_1,
    source_row_1,
    name_1,
    identity_1_masked,
    source_2,
    source_row_2,
    name_2,
    identity_2_masked,
    score,
    explanation,
    decision
from match_review
where batch_id = :batch_id
order by score desc, source_1, source_row_1
