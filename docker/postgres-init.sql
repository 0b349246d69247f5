create database warehouse owner airflow;
