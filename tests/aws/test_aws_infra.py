"""Infrastructure: `playcount aws bootstrap` and `infra/cloudformation.yaml` (linted, deployed to moto)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from aws_helpers import BUCKET, receive_all, subscribe_queue
from cfn_helpers import TEMPLATE, Resolver, deploy_glue, job_chain, load_template, refs
from helpers import cli
from playcount.aws import Aws
from playcount.settings import load_settings
from playcount.stores.dynamodb import TABLE_KEYS

pytestmark = pytest.mark.aws

DEPLOYABLE = {"AWS::S3::Bucket", "AWS::DynamoDB::Table", "AWS::SNS::Topic"}
"""What moto's CloudFormation deploys faithfully; IAM and Glue are checked statically."""

TINY = {
    "raw_data/songs/songs.csv": "track_id,artists,album_name,track_name,duration_ms,track_genre\n"
    "T1,Ann,A,One,200000,Pop\nT2,Bob,B,Two,100000,rock\n",
    "raw_data/users/users.csv": "user_id,user_name,user_age,user_country,created_at\n"
    "1,U1,30,NG,2024-01-01\n2,U2,40,GH,2024-01-01\n",
    "raw_data/streams/a.csv": "user_id,track_id,listen_time\n"
    "1,T1,2024-06-25 10:00:00\n2,T1,2024-06-25 11:00:00\n2,T2,2024-06-25 12:00:00\n",
}


def _deployable(template: dict[str, Any]) -> dict[str, Any]:
    """The template cut down to the S3, DynamoDB and SNS resources and the outputs that use only them."""
    resources = {k: v for k, v in template["Resources"].items() if v["Type"] in DEPLOYABLE}
    known = set(resources) | set(template["Parameters"]) | {"AWS::Region", "AWS::StackName", "AWS::AccountId"}
    outputs = {k: v for k, v in template["Outputs"].items() if refs(v) <= known}
    return {**template, "Resources": resources, "Outputs": outputs}


def test_cfn_lint_passes() -> None:
    script = Path(sys.executable).parent / "cfn-lint"
    command = [str(script)] if script.exists() else [shutil.which("cfn-lint") or "cfn-lint"]
    done = subprocess.run([*command, str(TEMPLATE)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_template_grants_least_privilege_and_points_glue_at_the_scripts() -> None:
    template = load_template()
    r = template["Resources"]
    scripts = {
        name: r[name]["Properties"]["Command"]["ScriptLocation"]["Fn::Sub"]
        for name in ("ValidateJob", "TransformJob", "LoadJob")
    }
    assert scripts == {
        "ValidateJob": "s3://${LakeBucket}/${GlueScriptsPrefix}/validate_job.py",
        "TransformJob": "s3://${LakeBucket}/${GlueScriptsPrefix}/transform_job.py",
        "LoadJob": "s3://${LakeBucket}/${GlueScriptsPrefix}/load_to_dynamodb.py",
    }
    for role in ("PipelineRole", "GlueRole"):
        for policy in r[role]["Properties"]["Policies"]:
            for statement in policy["PolicyDocument"]["Statement"]:
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                assert all("*" not in a for a in actions), (role, statement["Sid"])
                if statement["Resource"] == "*":  # only where AWS has no resource ARN, and then conditioned
                    assert statement.get("Condition"), (role, statement["Sid"])
    for table in ("GenreKpisTable", "TopSongsTable", "TopGenresTable"):
        props = r[table]["Properties"]
        assert props["BillingMode"] == "PAY_PER_REQUEST"
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    outputs = set(template["Outputs"])
    assert {"LakeRoot", "Region", "TablePrefix", "TopicArn", "BucketName", "StreamsPrefix"} <= outputs


def test_template_allows_only_glue_5_and_lets_the_glue_role_finish_a_run() -> None:
    template = load_template()
    # the wheel needs Python >= 3.11 and PySpark >= 3.5: Glue 4.0 (Python 3.10, Spark 3.3) cannot install it
    assert template["Parameters"]["GlueVersion"]["AllowedValues"] == ["5.0"]
    assert template["Parameters"]["GlueVersion"]["Default"] == "5.0"
    r = template["Resources"]
    for job in ("ValidateJob", "TransformJob", "LoadJob"):
        assert r[job]["Properties"]["GlueVersion"] == {"Ref": "GlueVersion"}
    [policy] = r["GlueRole"]["Properties"]["Policies"]
    statements = {st["Sid"]: st for st in policy["PolicyDocument"]["Statement"]}
    assert (statements["Notify"]["Action"], statements["Notify"]["Resource"]) == ("sns:Publish", {"Ref": "RunsTopic"})
    assert statements["TopicKey"]["Condition"] == {
        "StringEquals": {"kms:ViaService": {"Fn::Sub": "sns.${AWS::Region}.amazonaws.com"}}
    }
    workflow = statements["WorkflowRunProperties"]
    assert workflow["Action"] == ["glue:GetWorkflowRunProperties", "glue:PutWorkflowRunProperties"]
    assert workflow["Resource"]["Fn::Sub"].endswith(":workflow/${RunWorkflow}")
    load_args = r["LoadJob"]["Properties"]["DefaultArguments"]
    assert (load_args["--finish-run"], load_args["--topic-arn"]) == ("true", {"Ref": "RunsTopic"})
    assert "--finish-run" not in r["ValidateJob"]["Properties"]["DefaultArguments"]
    assert {"ValidateJobName", "TransformJobName", "LoadJobName", "WorkflowName"} <= set(template["Outputs"])


def _glue_part(aws: Aws, schedule: str = "") -> dict[str, str]:
    """The template's Glue jobs, workflow and triggers in moto's Glue (stack `playcount`)."""
    template = load_template()
    names = {
        "AWS::StackName": "playcount",
        "AWS::Region": "us-east-1",
        "AWS::AccountId": "123456789012",
        "AWS::Partition": "aws",
        "LakeBucket": "playcount-cfn",
        "RunsTopic": "arn:aws:sns:us-east-1:123456789012:runs",
        "WorkflowSchedule": schedule,
    }
    names |= {k: v["Default"] for k, v in template["Parameters"].items() if "Default" in v and k not in names}
    return deploy_glue(aws, Resolver(template, names), "arn:aws:iam::123456789012:role/playcount-glue")


def test_the_glue_workflow_chains_validate_transform_load_and_the_load_finishes_the_run(aws: Aws) -> None:
    from playcount.integrations.glue import RUN_ID_PROPERTY, job_args, workflow_run_id
    from playcount.settings import DynamoDBStoreSettings, SnsNotifySettings

    created = _glue_part(aws)
    assert created["RunWorkflow"] == "playcount-run"
    assert job_chain(aws, "playcount-run") == ["playcount-validate", "playcount-transform", "playcount-load"]
    glue = aws.client("glue")
    assert glue.get_trigger(Name="playcount-start")["Trigger"]["Type"] == "ON_DEMAND"
    assert glue.get_job(JobName="playcount-load")["Job"]["GlueVersion"] == "5.0"

    # a workflow run: Glue gives each job its default arguments and the workflow run's ids
    workflow_run = glue.start_workflow_run(Name="playcount-run")["RunId"]
    given = {"--WORKFLOW_NAME": "playcount-run", "--WORKFLOW_RUN_ID": workflow_run}

    def argv(job: str) -> list[str]:
        defaults = glue.get_job(JobName=job)["Job"]["DefaultArguments"]
        return [job, *(part for item in (defaults | given).items() for part in item)]

    validate = job_args(argv("playcount-validate"))
    assert (validate.run_id, validate.workflow, validate.finish_run) == (None, ("playcount-run", workflow_run), False)
    assert validate.settings.root == "s3://playcount-cfn/lake"
    assert workflow_run_id(glue, validate.workflow) is None  # the validate job starts the run ...
    glue.put_workflow_run_properties(  # ... and hands it on as `_run_job` does
        Name="playcount-run", RunId=workflow_run, RunProperties={RUN_ID_PROPERTY: "20240625T120000Z-abcdef"}
    )
    assert workflow_run_id(glue, job_args(argv("playcount-transform")).workflow or ("", "")) == (
        "20240625T120000Z-abcdef"
    )
    load = job_args(argv("playcount-load"))
    assert load.finish_run and load.workflow == ("playcount-run", workflow_run)
    assert isinstance(load.settings.store, DynamoDBStoreSettings) and load.settings.store.table_prefix == "playcount_"
    assert isinstance(load.settings.notify, SnsNotifySettings)
    assert load.settings.notify.topic_arn == "arn:aws:sns:us-east-1:123456789012:runs"


def test_a_workflow_schedule_makes_the_start_trigger_scheduled(aws: Aws) -> None:
    _glue_part(aws, schedule="cron(0 * * * ? *)")
    trigger = aws.client("glue").get_trigger(Name="playcount-start")["Trigger"]
    assert (trigger["Type"], trigger["Schedule"], trigger["State"]) == ("SCHEDULED", "cron(0 * * * ? *)", "ACTIVATED")


def test_template_deploys_to_moto_and_the_pipeline_runs_against_it(aws: Aws) -> None:
    cfn = aws.client("cloudformation")
    cfn.create_stack(
        StackName="playcount",
        TemplateBody=json.dumps(_deployable(load_template())),
        Parameters=[
            {"ParameterKey": "BucketName", "ParameterValue": "playcount-cfn"},
            {"ParameterKey": "TablePrefix", "ParameterValue": "cfn_"},
        ],
    )
    cfn.get_waiter("stack_create_complete").wait(StackName="playcount", WaiterConfig={"Delay": 1})
    stack = cfn.describe_stacks(StackName="playcount")["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    assert outputs["LakeRoot"] == "s3://playcount-cfn/lake"
    assert outputs["GenreKpisTableName"] == "cfn_genre_kpis"
    ddb = aws.client("dynamodb")
    for table, ((pk, _), (sk, _)) in TABLE_KEYS.items():  # the store's keys (SPEC §6)
        described = ddb.describe_table(TableName=f"cfn_{table}")["Table"]
        assert {k["KeyType"]: k["AttributeName"] for k in described["KeySchema"]} == {"HASH": pk, "RANGE": sk}
        assert described["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    s3 = aws.client("s3")

    # the settings from the outputs; the pipeline runs against the deployed names
    Path("playcount.toml").write_text(
        f'root = "{outputs["LakeRoot"]}"\nrun_date = "2024-06-27"\n[aws]\nregion = "{outputs["Region"]}"\n'
        f'[store]\ntype = "dynamodb"\ntable_prefix = "{outputs["TablePrefix"]}"\n'
        f'[notify]\ntype = "sns"\ntopic_arn = "{outputs["TopicArn"]}"\n'
    )
    for key, text in TINY.items():
        s3.put_object(Bucket="playcount-cfn", Key=f"lake/{key}", Body=text.encode())
    queue = subscribe_queue(aws, outputs["TopicArn"])
    code, out, err = cli("run", "--json")
    assert code == 0, err
    assert json.loads(out)["status"] == "succeeded"
    code, out, err = cli("kpis", "top-genres", "--json")
    assert code == 0, err
    assert json.loads(out) == [
        {"date": "2024-06-25", "genre": "pop", "total_streams": 2, "rank": 1},
        {"date": "2024-06-25", "genre": "rock", "total_streams": 1, "rank": 2},
    ]
    code, out, _ = cli("kpis", "genres", "--genre", "Pop", "--json")
    assert json.loads(out)[0]["avg_listen_time"] == 200.0 and json.loads(out)[0]["unique_users"] == 2
    assert [m["MessageAttributes"]["status"]["Value"] for m in receive_all(aws, queue)] == ["succeeded"]


def test_bootstrap_creates_what_is_missing_idempotently_and_writes_the_settings_aside(aws: Aws) -> None:
    args = ("aws", "bootstrap", "--bucket", BUCKET, "--prefix", "lake", "--table-prefix", "boot_", "--topic", "runs")
    code, out, err = cli(*args)
    assert code == 0, err
    assert err.count("created") == 5  # bucket, three tables, topic
    assert out == ""
    assert "settings written to playcount.aws.toml" in err
    written = Path("playcount.aws.toml").read_text()
    settings = tomllib.loads(written)
    assert settings["root"] == f"s3://{BUCKET}/lake"
    assert settings["store"] == {"type": "dynamodb", "table_prefix": "boot_"}
    assert settings["notify"]["type"] == "sns" and settings["notify"]["topic_arn"].endswith(":runs")
    # not picked up by accident: a command without --config still uses the local defaults ...
    assert not Path("playcount.toml").exists()
    assert (load_settings().store.type, load_settings().notify.type) == ("duckdb", "log")
    # ... only one that names the file uses AWS
    named = load_settings("playcount.aws.toml")
    assert (named.root, named.store.type, named.notify.type) == (f"s3://{BUCKET}/lake", "dynamodb", "sns")

    code, again, err = cli(*args)
    assert code == 0 and "created" not in err and err.count("exists") == 5, err
    assert "settings unchanged in playcount.aws.toml" in err
    assert Path("playcount.aws.toml").read_text() == written

    s3, ddb = aws.client("s3"), aws.client("dynamodb")
    assert s3.get_bucket_versioning(Bucket=BUCKET)["Status"] == "Enabled"
    rule = s3.get_bucket_encryption(Bucket=BUCKET)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    block = s3.get_public_access_block(Bucket=BUCKET)["PublicAccessBlockConfiguration"]
    assert all(block.values())
    for table in ("genre_kpis", "top_songs", "top_genres"):
        name = f"boot_{table}"
        assert ddb.describe_table(TableName=name)["Table"]["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
        backups = ddb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]
        assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"


def _lifecycle(s3: Any) -> dict[str, Any]:
    return {r["ID"]: r for r in s3.get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"]}


def test_bootstraps_bucket_expires_old_versions_and_denies_plain_http_as_the_templates(aws: Aws) -> None:
    from playcount.bootstrap import bootstrap

    s3 = aws.client("s3")
    bootstrap(aws, bucket=BUCKET, prefix="lake", tls_policy=True)
    rules = _lifecycle(s3)
    assert rules["expire-noncurrent-versions"]["NoncurrentVersionExpiration"] == {"NoncurrentDays": 30}
    assert rules["abort-incomplete-uploads"]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 2}
    assert all(r["Status"] == "Enabled" for r in rules.values())
    # the template's bucket has the same rules and the same statement
    template = load_template()["Resources"]
    cfn_rules = {r["Id"]: r for r in template["LakeBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]}
    assert cfn_rules["expire-noncurrent-versions"]["NoncurrentVersionExpiration"]["NoncurrentDays"] == 30
    assert cfn_rules["abort-incomplete-uploads"]["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] == 2
    [cfn_statement] = template["LakeBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    [statement] = json.loads(s3.get_bucket_policy(Bucket=BUCKET)["Policy"])["Statement"]
    assert statement == {
        "Sid": cfn_statement["Sid"],
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }
    assert cfn_statement["Condition"] == statement["Condition"] and cfn_statement["Action"] == "s3:*"

    # a rule and a statement of the bucket's owner survive a second bootstrap, which adds nothing twice
    s3.put_bucket_lifecycle_configuration(
        Bucket=BUCKET,
        LifecycleConfiguration={
            "Rules": [
                *s3.get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"],
                {"ID": "owners-tmp", "Status": "Enabled", "Filter": {"Prefix": "tmp/"}, "Expiration": {"Days": 1}},
            ]
        },
    )
    policy = json.loads(s3.get_bucket_policy(Bucket=BUCKET)["Policy"])
    owners = {
        "Sid": "OwnersRead",
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
        "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{BUCKET}/*",
    }
    s3.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps({**policy, "Statement": [owners, *policy["Statement"]]}))
    again = bootstrap(aws, bucket=BUCKET, prefix="lake", tls_policy=True)
    assert again.created == [] and f"bucket {BUCKET}" in again.existing
    assert sorted(_lifecycle(s3)) == ["abort-incomplete-uploads", "expire-noncurrent-versions", "owners-tmp"]
    assert [st["Sid"] for st in json.loads(s3.get_bucket_policy(Bucket=BUCKET)["Policy"])["Statement"]] == [
        "OwnersRead",
        "DenyInsecureTransport",
    ]
    # and it denies: moto enforces the policy, and this client talks plain HTTP to it
    with pytest.raises(Exception, match="Forbidden"):
        s3.put_object(Bucket=BUCKET, Key="lake/x.csv", Body=b"x")


def test_bootstrap_over_a_plain_http_endpoint_leaves_the_tls_policy_out_and_says_so(aws: Aws) -> None:
    code, _, err = cli("aws", "bootstrap", "--bucket", BUCKET, "--prefix", "lake")
    assert code == 0, err
    assert "no deny-without-TLS bucket policy: the S3 endpoint `http://127.0.0.1:" in err
    s3 = aws.client("s3")
    with pytest.raises(Exception, match="NoSuchBucketPolicy"):
        s3.get_bucket_policy(Bucket=BUCKET)
    assert sorted(_lifecycle(s3)) == ["abort-incomplete-uploads", "expire-noncurrent-versions"]
    s3.put_object(Bucket=BUCKET, Key="lake/x.csv", Body=b"x")  # the lake stays usable


def test_bootstrap_never_overwrites_other_settings_and_warns_when_printing(aws: Aws) -> None:
    args = ("aws", "bootstrap", "--bucket", BUCKET, "--prefix", "lake")
    Path("playcount.aws.toml").write_text('root = "s3://another-lake/lake"\n')
    code, out, err = cli(*args)
    assert code == 2, err
    assert "playcount.aws.toml exists with other settings" in err and "not overwritten" in err
    assert Path("playcount.aws.toml").read_text() == 'root = "s3://another-lake/lake"\n'
    assert tomllib.loads(out)["root"] == f"s3://{BUCKET}/lake"  # what it would have written

    code, out, err = cli(*args, "--settings-file", "-")
    assert code == 0, err
    assert tomllib.loads(out)["store"]["type"] == "dynamodb"
    assert "these settings use DynamoDB and SNS" in err and "would apply to every playcount command" in err
    assert not Path("playcount.toml").exists()
