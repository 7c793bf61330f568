"""`playcount aws bootstrap`: create what a run on AWS needs, idempotently.

A bucket configured as `infra/cloudformation.yaml` configures its own (versioning, SSE-S3
encryption, public access blocked, noncurrent versions expired after 30 days, incomplete uploads
aborted after 2, requests without TLS denied unless the endpoint is plain HTTP), the three KPI
tables (on-demand, point-in-time recovery) and the SNS topic. Whatever exists is kept and
brought to that configuration (a bucket's other lifecycle rules and policy statements are
kept); the result says what was created and which settings to use.

Those settings point at DynamoDB and SNS, so they go to a file of their own
(`SETTINGS_FILE`, `playcount.aws.toml`), used only when named (`--config playcount.aws.toml`),
never to `playcount.toml`, which every playcount command in its folder reads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from playcount.aws import Aws
from playcount.errors import PlaycountError
from playcount.stores.dynamodb import TABLE_KEYS

__all__ = ["SETTINGS_FILE", "LIFECYCLE_RULES", "TLS_STATEMENT_SID", "BootstrapResult", "bootstrap", "tls_statement"]

_TAGS = [{"Key": "app", "Value": "playcount"}]

SETTINGS_FILE = "playcount.aws.toml"
"""Where `playcount aws bootstrap` writes the settings: not `playcount.toml`, so they apply only
to commands that name them."""

LIFECYCLE_RULES: list[dict[str, Any]] = [
    # archive moves and staging leave old versions behind: keep them a month (as the template)
    {
        "ID": "expire-noncurrent-versions",
        "Status": "Enabled",
        "Filter": {"Prefix": ""},
        "NoncurrentVersionExpiration": {"NoncurrentDays": 30},
    },
    {
        "ID": "abort-incomplete-uploads",
        "Status": "Enabled",
        "Filter": {"Prefix": ""},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 2},
    },
]
"""The lake bucket's lifecycle rules (the template's `LifecycleConfiguration`)."""

TLS_STATEMENT_SID = "DenyInsecureTransport"


def _partition(region: str) -> str:
    return "aws-cn" if region.startswith("cn-") else "aws-us-gov" if region.startswith("us-gov-") else "aws"


def tls_statement(bucket: str, region: str = "us-east-1") -> dict[str, Any]:
    """The bucket policy statement that denies every request without TLS (the template's)."""
    arn = f"arn:{_partition(region)}:s3:::{bucket}"
    return {
        "Sid": TLS_STATEMENT_SID,
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [arn, f"{arn}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


@dataclass
class BootstrapResult:
    """What exists now, what this call created, and the settings that point at it."""

    bucket: str
    prefix: str
    region: str
    table_prefix: str
    tables: dict[str, str]
    topic_arn: str
    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """What was deliberately left out, and why."""

    @property
    def root(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    def settings_toml(self) -> str:
        """Settings for runs against these resources (`SETTINGS_FILE`)."""
        return "\n".join(
            [
                "# playcount on AWS, written by `playcount aws bootstrap`: the KPI store is DynamoDB,",
                "# notifications go to SNS. Used only where named: playcount run --config playcount.aws.toml",
                f"root = {json.dumps(self.root)}",
                "",
                "[aws]",
                f"region = {json.dumps(self.region)}",
                "",
                "[store]",
                'type = "dynamodb"',
                f"table_prefix = {json.dumps(self.table_prefix)}",
                "",
                "[notify]",
                'type = "sns"',
                f"topic_arn = {json.dumps(self.topic_arn)}",
                "",
            ]
        )


def _code(e: Exception) -> str:
    response = getattr(e, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def _ensure_bucket(s3: Any, bucket: str, region: str, result: BootstrapResult, tls_policy: bool) -> None:
    try:
        s3.head_bucket(Bucket=bucket)
        result.existing.append(f"bucket {bucket}")
    except Exception as e:
        code = _code(e)
        if code in ("403", "AccessDenied", "Forbidden"):
            raise PlaycountError(
                f"the bucket `{bucket}` exists but these credentials cannot use it",
                fix="choose another --bucket (names are global) or use credentials of its account",
            ) from e
        if code not in ("404", "NoSuchBucket", "NotFound"):
            raise
        kwargs: dict[str, Any] = {"Bucket": bucket}
        if region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        s3.create_bucket(**kwargs)
        result.created.append(f"bucket {bucket}")
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    _ensure_lifecycle(s3, bucket)
    if tls_policy:
        _ensure_tls_policy(s3, bucket, region)
    else:
        result.notes.append(
            f"no deny-without-TLS bucket policy: the S3 endpoint `{s3.meta.endpoint_url}` is plain HTTP "
            "(an emulator or a local store), which the policy would lock out"
        )


def _ensure_lifecycle(s3: Any, bucket: str) -> None:
    """Our lifecycle rules, replacing those of the same ID; the bucket's other rules are kept."""
    try:
        rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket).get("Rules", [])
    except Exception as e:
        if _code(e) != "NoSuchLifecycleConfiguration":
            raise
        rules = []
    ours = {r["ID"] for r in LIFECYCLE_RULES}
    kept = [r for r in rules if r.get("ID") not in ours]
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [*kept, *LIFECYCLE_RULES]})


def _ensure_tls_policy(s3: Any, bucket: str, region: str) -> None:
    """The deny-without-TLS statement in the bucket policy; the policy's other statements are kept."""
    try:
        policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    except Exception as e:
        if _code(e) != "NoSuchBucketPolicy":
            raise
        policy = {"Version": "2012-10-17", "Statement": []}
    statements = policy.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    wanted = tls_statement(bucket, region)
    if wanted in statements:
        return
    policy["Statement"] = [st for st in statements if st.get("Sid") != TLS_STATEMENT_SID] + [wanted]
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))


def _ensure_table(ddb: Any, table: str, name: str, result: BootstrapResult) -> None:
    (pk, pk_type), (sk, sk_type) = TABLE_KEYS[table]
    try:
        described = ddb.describe_table(TableName=name)["Table"]
    except Exception as e:
        if _code(e) != "ResourceNotFoundException":
            raise
        ddb.create_table(
            TableName=name,
            AttributeDefinitions=[
                {"AttributeName": pk, "AttributeType": pk_type},
                {"AttributeName": sk, "AttributeType": sk_type},
            ],
            KeySchema=[{"AttributeName": pk, "KeyType": "HASH"}, {"AttributeName": sk, "KeyType": "RANGE"}],
            BillingMode="PAY_PER_REQUEST",
            Tags=_TAGS,
        )
        ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
        result.created.append(f"table {name}")
    else:
        keys = {k["KeyType"]: k["AttributeName"] for k in described["KeySchema"]}
        if keys != {"HASH": pk, "RANGE": sk}:
            raise PlaycountError(
                f"the table `{name}` exists with keys `{keys}`, not HASH `{pk}` / RANGE `{sk}`",
                fix="choose another --table-prefix, or delete that table",
            )
        result.existing.append(f"table {name}")
    ddb.update_continuous_backups(TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})


def bootstrap(
    aws: Aws,
    *,
    bucket: str,
    prefix: str = "",
    table_prefix: str = "playcount_",
    topic: str = "playcount-runs",
    tls_policy: bool | None = None,
) -> BootstrapResult:
    """Create (or bring to the expected configuration) the bucket, the tables and the topic.

    `tls_policy`: add the bucket policy statement that denies requests without TLS; by default
    yes, unless the S3 endpoint itself is plain HTTP (moto, a local S3-compatible store), where
    it would deny every request.
    """
    s3 = aws.client("s3")
    region = s3.meta.region_name
    if tls_policy is None:
        tls_policy = not str(s3.meta.endpoint_url).startswith("http://")
    result = BootstrapResult(
        bucket=bucket,
        prefix=prefix.strip("/"),
        region=region,
        table_prefix=table_prefix,
        tables={t: f"{table_prefix}{t}" for t in TABLE_KEYS},
        topic_arn="",
    )
    _ensure_bucket(s3, bucket, region, result, tls_policy)
    ddb = aws.client("dynamodb")
    for table, name in result.tables.items():
        _ensure_table(ddb, table, name, result)
    sns = aws.client("sns")
    arns = [t["TopicArn"] for page in sns.get_paginator("list_topics").paginate() for t in page["Topics"]]
    found = [arn for arn in arns if arn.rsplit(":", 1)[-1] == topic]
    if found:
        result.topic_arn = found[0]
        result.existing.append(f"topic {topic}")
    else:
        result.topic_arn = sns.create_topic(Name=topic, Tags=_TAGS)["TopicArn"]
        result.created.append(f"topic {topic}")
    return result
