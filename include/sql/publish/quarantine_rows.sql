-- Every quarantined record of one batch, in delivery order.
select
    source,
    source_row,
    file_name,
    position,
    reason_code,
    reason,
    raw_record
from quarantine
where batch_id = :batch_id
order by source, source_row
