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

-- The platform's own database (mlops package state that belongs in SQL rather than in the lake).
CREATE ROLE mlops LOGIN PASSWORD :'mlops_password';
CREATE DATABASE mlops OWNER mlops;
