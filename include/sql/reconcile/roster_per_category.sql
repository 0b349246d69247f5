-- The run's visit roster, households per visit category.
select visit_category, count(*) from visit_roster where run_id = :run_id
group by visit_category order by visit_category
