"""playcount on Airflow 3 (MWAA or self-hosted): the original design's DAG. Nothing but wiring.

wait_for_stream_files -> run_validation_job -> check_validation_status -> run_transform_job
-> check_transform_status -> load_to_dynamodb -> archive_streamed_data -> notify_success;
either check, on failure -> notify_failure (SNS, with the reason; the DAG run ends failed).

The callables are in `playcount.integrations.airflow`; the Variables and the connection
`aws_default` are described in docs/airflow.md.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.providers.amazon.aws.sensors.s3 import S3KeySensor
from airflow.providers.standard.operators.python import BranchPythonOperator, PythonOperator
from airflow.sdk import DAG, TriggerRule

from playcount.integrations import airflow as pc

default_args = {
    "owner": "playcount",
    "retries": 3,
    "retry_delay": timedelta(minutes=1),
    "retry_exponential_backoff": 2.0,  # 1, 2, 4 minutes
    "max_retry_delay": timedelta(minutes=15),
    # a terminal playcount error (a wrong Variable, a bad file, a corrupt store) fails its task at once,
    # without these retries: the tasks raise it as AirflowFailException (`errors.is_transient`)
    "on_failure_callback": pc.notify_task_failure,
}

with DAG(
    dag_id="streaming_pipeline",
    description="playcount: validate, transform, load KPIs to DynamoDB, archive, notify",
    schedule="@hourly",
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=default_args,
    tags=["playcount"],
    doc_md=__doc__,
) as dag:
    wait_for_stream_files = S3KeySensor(
        task_id="wait_for_stream_files",
        aws_conn_id=pc.CONN_ID,
        bucket_name="{{ var.value.S3_BUCKET }}",
        bucket_key=pc.STREAM_FILES_KEY,
        wildcard_match=True,
        check_fn=pc.has_stream_files,
        mode="reschedule",
        poke_interval=timedelta(minutes=1),
        timeout=timedelta(minutes=55),
        soft_fail=True,  # no file this hour: the DAG run is skipped, not failed
        on_failure_callback=None,  # its failure reaches notify_failure through check_validation_status
    )
    run_validation_job = pc.PlaycountJobOperator(
        task_id="run_validation_job", step="validate", aws_conn_id=pc.CONN_ID, on_failure_callback=None
    )
    check_validation_status = BranchPythonOperator(
        task_id="check_validation_status",
        python_callable=pc.check_validation_status,
        trigger_rule=TriggerRule.NONE_SKIPPED,  # also when the job failed: it reports why
    )
    run_transform_job = pc.PlaycountJobOperator(
        task_id="run_transform_job", step="transform", aws_conn_id=pc.CONN_ID, on_failure_callback=None
    )
    check_transform_status = BranchPythonOperator(
        task_id="check_transform_status",
        python_callable=pc.check_transform_status,
        trigger_rule=TriggerRule.NONE_SKIPPED,
    )
    load_to_dynamodb = pc.PlaycountJobOperator(task_id="load_to_dynamodb", step="load", aws_conn_id=pc.CONN_ID)
    archive_streamed_data = PythonOperator(task_id="archive_streamed_data", python_callable=pc.archive_streamed_data)
    notify_success = PythonOperator(task_id="notify_success", python_callable=pc.notify_success)
    notify_failure = PythonOperator(
        task_id="notify_failure",
        python_callable=pc.notify_failure,
        # runs when a check chose it, whichever; the other check is then skipped
        trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS,
        on_failure_callback=None,  # it fails on purpose, after notifying
    )

    wait_for_stream_files >> run_validation_job >> check_validation_status >> [run_transform_job, notify_failure]
    run_transform_job >> check_transform_status >> [load_to_dynamodb, notify_failure]
    load_to_dynamodb >> archive_streamed_data >> notify_success
