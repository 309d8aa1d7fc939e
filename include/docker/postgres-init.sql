-- One Postgres for the whole stack: a role and a database per consumer.
-- Run once by the postgres image on an empty data volume (/docker-entrypoint-initdb.d/); to re-run it,
-- `docker compose down -v` (this deletes the Airflow, MLflow and mlops databases).
-- Passwords come from the postgres service's environment (psql's \getenv, PostgreSQL 15+), so the
-- values in docker-compose.yaml / .env are the only place they are set.
\set ON_ERROR_STOP on

\getenv airflow_password AIRFLOW_DB_PASSWORD
\getenv mlflow_password MLFLOW_DB_PASSWORD
\getenv mlops_password MLOPS_DB_PASSWORD

-- Airflow metadata database (AIRFLOW__DATABASE__SQL_ALCHEMY_CONN).
CREATE ROLE airflow LOGIN PASSWORD :'airflow_password';
CREATE DATABASE airflow OWNER airflow;

-- MLflow tracking and model registry backend store (mlflow server --backend-store-uri).
CREATE ROLE mlflow LOGIN PASSWORD :'mlflow_password';
CREATE DATABASE mlflow OWNER mlflow;

-- The platform's own database (the promotion ledger). Two roles: mlops_owner owns the database and its schema
-- (cannot log in; migrations run as it, `SET ROLE mlops_owner`), mlops is what the platform logs in as
-- (MLOPS__REGISTRY__LEDGER_URI): it owns nothing, so it cannot drop the ledger's append-only triggers nor
-- rewrite its history. ledger-schema.sql (run next) creates the tables as mlops_owner and grants mlops
-- only SELECT/INSERT on the records and SELECT/INSERT/UPDATE on the head rows.
CREATE ROLE mlops_owner NOLOGIN;
CREATE ROLE mlops LOGIN PASSWORD :'mlops_password';
CREATE DATABASE mlops OWNER mlops_owner;
REVOKE ALL ON DATABASE mlops FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE mlops TO mlops;
