#!/usr/bin/env bash
# Try the Airflow DAG on a laptop: a self-hosted Airflow (SQLite), moto standing in for AWS.
# Run from the repository root, in a virtualenv with `pip install -e '.[aws,airflow,dev]'`.
# docs/airflow.md walks through it; tests/airflow/test_tryout.py runs it.
set -euo pipefail

export AIRFLOW_HOME="${AIRFLOW_HOME:-$PWD/.airflow-tryout}"  # Airflow's config, SQLite database, logs
export AIRFLOW__CORE__DAGS_FOLDER="$PWD/dags"                 # the folder holding streaming_pipeline_dag.py
export AIRFLOW__CORE__LOAD_EXAMPLES=False
mkdir -p "$AIRFLOW_HOME"
airflow db migrate

# moto on 127.0.0.1 plays S3, DynamoDB and SNS; fake credentials lead there
PORT="${MOTO_PORT:-5000}"
moto_server -H 127.0.0.1 -p "$PORT" > "$AIRFLOW_HOME/moto.log" 2>&1 &
MOTO_PID=$!
trap 'kill "$MOTO_PID"' EXIT
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1
export AWS_ENDPOINT_URL="http://127.0.0.1:$PORT"
python -c "
import time, urllib.request
for _ in range(100):
    try:
        urllib.request.urlopen('$AWS_ENDPOINT_URL/moto-api/'); break
    except OSError:
        time.sleep(0.2)
"

# the bucket, the KPI tables and the topic; a landing zone in the bucket
playcount aws bootstrap --bucket playcount-tryout --prefix lake --settings-file "$AIRFLOW_HOME/playcount.aws.toml"
playcount generate --out "$AIRFLOW_HOME/landing" --songs 200 --users 100 --streams 1000 --files 2 --start 2024-06-25
python -c "
import boto3, pathlib
s3, landing = boto3.client('s3'), pathlib.Path('$AIRFLOW_HOME/landing')
for path in sorted(landing.rglob('*.csv')):
    s3.upload_file(str(path), 'playcount-tryout', 'lake/' + path.relative_to(landing).as_posix())
"

# the DAG's connection and Variables, as environment variables
export AIRFLOW_CONN_AWS_DEFAULT="{\"conn_type\": \"aws\", \"extra\": {\"region_name\": \"us-east-1\", \"endpoint_url\": \"$AWS_ENDPOINT_URL\"}}"
export AIRFLOW_VAR_S3_BUCKET=playcount-tryout AIRFLOW_VAR_PLAYCOUNT_LAKE_PREFIX=lake \
       AIRFLOW_VAR_S3_STREAMING_PREFIX=lake/raw_data/streams \
       AIRFLOW_VAR_SNS_TOPIC_ARN=arn:aws:sns:us-east-1:123456789012:playcount-runs
airflow dags test streaming_pipeline

# the KPIs the DAG run loaded into DynamoDB
playcount kpis top-genres --config "$AIRFLOW_HOME/playcount.aws.toml"
