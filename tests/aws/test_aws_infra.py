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
from helpers import cli
from playcount.aws import Aws
from playcount.settings import load_settings
from playcount.stores.dynamodb import TABLE_KEYS

pytestmark = pytest.mark.aws

TEMPLATE = Path(__file__).resolve().parents[2] / "infra" / "cloudformation.yaml"
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


def _load_template() -> dict[str, Any]:
    """The template as plain data, short-form intrinsics (`!Ref`, `!Sub`, `!GetAtt`) as long form."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def intrinsic(name: str) -> Any:
        def construct(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
            if isinstance(node, yaml.ScalarNode):
                value: Any = loader.construct_scalar(node)
                if name == "Fn::GetAtt":
                    value = value.split(".", 1)
            else:
                value = loader.construct_sequence(node, deep=True)  # type: ignore[arg-type]
            return {name: value}

        return construct

    for tag, name in (("!Ref", "Ref"), ("!Sub", "Fn::Sub"), ("!GetAtt", "Fn::GetAtt")):
        Loader.add_constructor(tag, intrinsic(name))
    data: dict[str, Any] = yaml.load(TEMPLATE.read_text(), Loader=Loader)  # noqa: S506 - SafeLoader subclass
    return data


def _refs(value: Any) -> set[str]:
    """Logical names a value refers to (Ref, GetAtt, ${Name} / ${Name.Attr} in Sub)."""
    import re

    if isinstance(value, dict):
        out: set[str] = set()
        for k, v in value.items():
            if k == "Ref":
                out.add(v)
            elif k == "Fn::GetAtt":
                out.add(v[0])
            elif k == "Fn::Sub":
                text = v if isinstance(v, str) else v[0]
                out |= {m.split(".")[0] for m in re.findall(r"\$\{([^}!]+)\}", text)}
            else:
                out |= _refs(v)
        return out
    if isinstance(value, list):
        return set().union(*(_refs(v) for v in value)) if value else set()
    return set()


def _deployable(template: dict[str, Any]) -> dict[str, Any]:
    """The template cut down to the S3, DynamoDB and SNS resources and the outputs that use only them."""
    resources = {k: v for k, v in template["Resources"].items() if v["Type"] in DEPLOYABLE}
    known = set(resources) | set(template["Parameters"]) | {"AWS::Region", "AWS::StackName", "AWS::AccountId"}
    outputs = {k: v for k, v in template["Outputs"].items() if _refs(v) <= known}
    return {**template, "Resources": resources, "Outputs": outputs}


def test_cfn_lint_passes() -> None:
    script = Path(sys.executable).parent / "cfn-lint"
    command = [str(script)] if script.exists() else [shutil.which("cfn-lint") or "cfn-lint"]
    done = subprocess.run([*command, str(TEMPLATE)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_template_grants_least_privilege_and_points_glue_at_the_scripts() -> None:
    template = _load_template()
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


def test_template_deploys_to_moto_and_the_pipeline_runs_against_it(aws: Aws) -> None:
    cfn = aws.client("cloudformation")
    cfn.create_stack(
        StackName="playcount",
        TemplateBody=json.dumps(_deployable(_load_template())),
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


def test_bootstrap_creates_what_is_missing_idempotently_and_prints_the_settings(aws: Aws) -> None:
    args = ("aws", "bootstrap", "--bucket", BUCKET, "--prefix", "lake", "--table-prefix", "boot_", "--topic", "runs")
    code, out, err = cli(*args)
    assert code == 0, err
    assert err.count("created") == 5  # bucket, three tables, topic
    settings = tomllib.loads(out)
    assert settings["root"] == f"s3://{BUCKET}/lake"
    assert settings["store"] == {"type": "dynamodb", "table_prefix": "boot_"}
    assert settings["notify"]["type"] == "sns" and settings["notify"]["topic_arn"].endswith(":runs")
    Path("playcount.toml").write_text(out)
    loaded = load_settings()
    assert loaded.store.type == "dynamodb" and loaded.notify.type == "sns"

    code, again, err = cli(*args)
    assert code == 0 and "created" not in err and err.count("exists") == 5
    assert again == out

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
