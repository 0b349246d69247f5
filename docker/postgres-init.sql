-- Run once by the postgres image, when its data volume is first initialised (as the
-- superuser airflow, in Airflow's metadata database): the lookback warehouse is a database
-- of its own, owned by a role of its own, so that the pipeline's tables and Airflow's never
-- share a schema or a password. LOOKBACK_WAREHOUSE_URL in docker-compose.yaml names both.
-- The password comes from the container's environment (LOOKBACK_WAREHOUSE_PASSWORD, from
-- .env); psql quotes it as a literal (:'...'), and stops at a missing one.
\set ON_ERROR_STOP on
\getenv warehouse_password LOOKBACK_WAREHOUSE_PASSWORD
create role lookback login password :'warehouse_password';
create database warehouse owner lookback;
