"""What a reviewer of ``template.yaml`` checks, as tests: no trigger loop, least privilege, a
failure destination, every setting the code reads declared, one bucket-name expression.

``make template-check`` runs the AWS tools (sam validate --lint, cfn-lint, checkov, sam build);
these tests hold the project's own rules, which those tools cannot know.
"""

from __future__ import annotations

import ast
import shlex
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
HANDLER_SRC = ROOT / "src" / "handler"
FUNCTION = "MarketTotalsFunction"
BUCKET_NAME = "${AWS::StackName}-${AWS::AccountId}-${AWS::Region}"


class CfnLoader(yaml.SafeLoader):
    """A YAML loader that turns CloudFormation's short tags into their long form
    (``!Ref X`` -> ``{"Ref": "X"}``, ``!GetAtt A.B`` -> ``{"Fn::GetAtt": ["A", "B"]}``)."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


CfnLoader.add_multi_constructor("!", _intrinsic)


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.load(  # CfnLoader is a SafeLoader
        (ROOT / "template.yaml").read_text(encoding="utf-8"), Loader=CfnLoader
    )
    return loaded


@pytest.fixture(scope="module")
def function(template: dict[str, Any]) -> dict[str, Any]:
    properties: dict[str, Any] = template["Resources"][FUNCTION]["Properties"]
    return properties


def env_vars_read_by_code() -> dict[str, str]:
    """``{name: file}`` of every environment variable src/handler reads: ``os.environ.get``,
    ``os.environ[...]``, ``os.getenv`` and ``.get`` on a mapping named ``env``/``environ``."""
    found: dict[str, str] = {}
    for path in sorted(HANDLER_SRC.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            target: ast.expr | None = None
            key: ast.expr | None = None
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args:
                if node.func.attr in ("get", "getenv"):
                    target, key = node.func.value, node.args[0]
            elif isinstance(node, ast.Subscript):
                target, key = node.value, node.slice
            if target is None or not isinstance(key, ast.Constant):
                continue
            if ast.unparse(target) in ("os", "os.environ", "environ", "env"):
                found[str(key.value)] = path.name
    return found


def statements(node: Any) -> Iterator[dict[str, Any]]:
    """Every IAM statement anywhere in ``node`` (roles, policies, bucket and queue policies)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Statement":
                yield from value if isinstance(value, list) else [value]
            else:
                yield from statements(value)
    elif isinstance(node, list):
        for item in node:
            yield from statements(item)


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def parameter_values(template: dict[str, Any]) -> Iterator[tuple[str, dict[str, str]]]:
    """The parameters each samconfig.toml environment deploys with (defaults + overrides)."""
    defaults = {name: str(p.get("Default")) for name, p in template["Parameters"].items()}
    config = tomllib.loads((ROOT / "samconfig.toml").read_text(encoding="utf-8"))
    for env, commands in config.items():
        if not isinstance(commands, dict):
            continue
        overrides = commands.get("deploy", {}).get("parameters", {}).get("parameter_overrides", "")
        pairs = (item.split("=", 1) for item in shlex.split(overrides))
        yield env, {**defaults, **dict(pairs)}


def test_the_scan_finds_the_settings_and_powertools_variables() -> None:
    files = set(env_vars_read_by_code().values())
    assert {"settings.py", "observability.py"} <= files


def test_every_env_var_the_code_reads_is_declared(function: dict[str, Any]) -> None:
    declared = set(function["Environment"]["Variables"])
    missing = {name: file for name, file in env_vars_read_by_code().items() if name not in declared}
    assert not missing, f"read by the code but not declared in template.yaml: {missing}"


def test_entry_point_is_the_contracts(function: dict[str, Any]) -> None:
    assert function["CodeUri"] == "src/"
    assert function["Runtime"] == "python3.13"
    module, _, name = function["Handler"].rpartition(".")
    source = (ROOT / "src" / Path(*module.split("."))).with_suffix(".py")
    assert f"def {name}(" in source.read_text(encoding="utf-8")


def test_trigger_filter_and_input_suffix_come_from_one_parameter(function: dict[str, Any]) -> None:
    (event,) = function["Events"].values()
    assert event["Type"] == "S3"
    assert event["Properties"]["Events"] == "s3:ObjectCreated:*"
    (rule,) = event["Properties"]["Filter"]["S3Key"]["Rules"]
    assert rule["Name"] == "suffix"
    assert rule["Value"] == function["Environment"]["Variables"]["INPUT_SUFFIX"]
    assert rule["Value"] == {"Ref": "InputSuffix"}
    assert function["Environment"]["Variables"]["RESULT_NAME"] == {"Ref": "ResultName"}


def test_results_cannot_trigger_the_function(template: dict[str, Any]) -> None:
    for env, values in parameter_values(template):
        assert not values["ResultName"].endswith(values["InputSuffix"]), env


def test_no_allow_statement_grants_every_action_or_resource(template: dict[str, Any]) -> None:
    found = list(statements(template["Resources"]))
    assert len(found) >= 5
    for statement in found:
        if statement["Effect"] != "Allow":
            continue  # the TLS-only policies deny s3:* / sqs:* to insecure transport
        for action in as_list(statement["Action"]):
            assert action != "*", statement
            assert not action.endswith(":*"), statement
        assert "*" not in as_list(statement.get("Resource", [])), statement


def test_s3_access_is_limited_to_inputs_and_results(template: dict[str, Any]) -> None:
    policy = template["Resources"]["FunctionRole"]["Properties"]["Policies"]
    s3 = [s for s in statements(policy) if any(a.startswith("s3:") for a in as_list(s["Action"]))]
    bucket_arn = f"arn:${{AWS::Partition}}:s3:::{BUCKET_NAME}"
    grants = {s["Resource"]["Fn::Sub"]: sorted(as_list(s["Action"])) for s in s3}
    assert grants == {
        f"{bucket_arn}/*${{InputSuffix}}": ["s3:GetObject", "s3:GetObjectVersion"],
        f"{bucket_arn}/*${{ResultName}}": ["s3:GetObject", "s3:PutObject"],
        # HEAD of a missing result answers 404 only with ListBucket (else 403).
        bucket_arn: ["s3:ListBucket"],
    }


def test_the_bucket_name_is_one_expression(
    template: dict[str, Any], function: dict[str, Any]
) -> None:
    bucket = template["Resources"]["MarketBucket"]["Properties"]
    assert bucket["BucketName"] == {"Fn::Sub": BUCKET_NAME}
    assert function["Environment"]["Variables"]["RESULT_BUCKET"] == {"Fn::Sub": BUCKET_NAME}
    # The event names the bucket resource itself, so the notification lands on that bucket.
    (event,) = function["Events"].values()
    assert event["Properties"]["Bucket"] == {"Ref": "MarketBucket"}


def test_bucket_is_encrypted_private_versioned_and_tls_only(template: dict[str, Any]) -> None:
    bucket = template["Resources"]["MarketBucket"]["Properties"]
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert bucket["VersioningConfiguration"]["Status"] == "Enabled"
    rules = bucket["LifecycleConfiguration"]["Rules"]
    assert any("NoncurrentVersionExpiration" in rule for rule in rules)
    (deny,) = statements(template["Resources"]["MarketBucketPolicy"])
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_failed_events_go_to_an_encrypted_queue(
    template: dict[str, Any], function: dict[str, Any]
) -> None:
    config = function["EventInvokeConfig"]
    assert 0 <= config["MaximumRetryAttempts"] <= 2
    assert 60 <= config["MaximumEventAgeInSeconds"] <= 21600
    on_failure = config["DestinationConfig"]["OnFailure"]
    assert on_failure["Type"] == "SQS"
    queue_name, attribute = on_failure["Destination"]["Fn::GetAtt"]
    assert attribute == "Arn"
    queue = template["Resources"][queue_name]
    assert queue["Type"] == "AWS::SQS::Queue"
    assert queue["Properties"].get("SqsManagedSseEnabled") or queue["Properties"].get(
        "KmsMasterKeyId"
    )
    alarmed = {
        str(dimension["Value"])
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::CloudWatch::Alarm"
        for dimension in resource["Properties"]["Dimensions"]
    }
    assert str({"Fn::GetAtt": [queue_name, "QueueName"]}) in alarmed
    assert str({"Ref": FUNCTION}) in alarmed
    assert {"BucketName", "FunctionName", "FailureQueueUrl"} <= set(template["Outputs"])
