"""Entry points for orchestrators and job runners (Airflow, Glue). Each is a thin shell over
`playcount.pipeline`; heavy optional packages are imported only here."""
