-- The batch's rows the link stage placed (none: the batch has not been linked).
select count(*) from person_links where batch_id = :batch_id
