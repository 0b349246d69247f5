-- Row accounting of one batch, per source: delivered = accepted + skipped + quarantined.
select
    source,
    status,
    file_name,
    sheet_name,
    encoding,
    delivered,
    accepted,
    skipped,
    quarantined,
    value_problems,
    delivered = accepted + skipped + quarantined as balanced
from ingest_accounting
where batch_id = :batch_id
order by source
