-- Candidate pairs of one batch the linkage left for people to decide, strongest first, with
-- what the review file shows of each row (lookback.link.review.review_file_rows).
select
    source_1,
    source_row_1,
    name_1,
    identity_1_masked,
    county_1,
    village_1,
    household_1,
    relation_1,
    birth_date_1,
    source_2,
    source_row_2,
    name_2,
    identity_2_masked,
    county_2,
    village_2,
    household_2,
    relation_2,
    birth_date_2,
    score,
    explanation_zh,
    explanation,
    decision
from match_review
where batch_id = :batch_id
order by score desc, source_1, source_row_1
