-- What the batch delivered: the ingest status of each source.
select source, status from ingest_accounting where batch_id = :batch_id
