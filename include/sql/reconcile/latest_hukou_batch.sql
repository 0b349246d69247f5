-- The batch whose hukou delivery says who is dead when this batch did not deliver hukou: the
-- latest earlier run's (as-of date not after this one's) that delivered it.
select r.batch_id
from reconcile_runs r
join ingest_accounting a on a.batch_id = r.batch_id and a.source = 'hukou' and a.status = 'ingested'
where r.batch_id <> :batch_id and r.as_of <= :as_of
order by r.as_of desc, r.sequence desc
limit 1
