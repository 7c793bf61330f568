"""Helpers for the AWS tier: upload a landing zone, list and read objects, receive SNS messages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from playcount.aws import Aws

REGION = "us-east-1"
BUCKET = "playcount-lake"
TABLE_PREFIX = "test_"


def upload_tree(aws: Aws, folder: Path, bucket: str, prefix: str) -> list[str]:
    """Upload every file under `folder` to `s3://bucket/prefix/<relative path>`; return the keys."""
    s3 = aws.client("s3")
    keys = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        key = f"{prefix}/{path.relative_to(folder).as_posix()}"
        s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
        keys.append(key)
    return keys


def keys(aws: Aws, bucket: str, prefix: str = "") -> list[str]:
    """Every key under `prefix`, sorted."""
    s3 = aws.client("s3")
    out: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        out += [o["Key"] for o in page.get("Contents", [])]
    return sorted(out)


def body(aws: Aws, bucket: str, key: str) -> bytes:
    data: bytes = aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    return data


def subscribe_queue(aws: Aws, topic_arn: str, name: str = "runs") -> str:
    """An SQS queue subscribed to the topic; returns its URL."""
    sqs = aws.client("sqs")
    url: str = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    aws.client("sns").subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn)
    return url


def receive_all(aws: Aws, queue_url: str) -> list[dict[str, Any]]:
    """Every message waiting in the queue (SNS envelopes, parsed)."""
    sqs = aws.client("sqs")
    out: list[dict[str, Any]] = []
    while True:
        got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        messages = got.get("Messages", [])
        if not messages:
            return out
        for m in messages:
            out.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
