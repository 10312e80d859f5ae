"""What a reviewer of ``template.yaml`` checks, as tests: one path from the bucket to the function
for each ``Trigger`` value, no trigger loop, least privilege, failure queues and alarms, every
setting the code reads declared, one bucket-name expression, a scoped Batch Operations role.

``make template-check`` runs the AWS tools (sam validate --lint, cfn-lint, checkov, sam build) on
one copy of the template per ``Trigger`` value; these tests hold the project's own rules, which
those tools cannot know. They resolve the template's Conditions themselves for every ``Trigger``
value (``variant``), so each rule is checked against what CloudFormation would deploy.
"""

from __future__ import annotations

import ast
import re
import shlex
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from checks import template_variants

ROOT = Path(__file__).resolve().parents[2]
HANDLER_SRC = ROOT / "src" / "handler"
FUNCTION = "MarketTotalsFunction"
FUNCTION_ARN = {"Fn::GetAtt": [FUNCTION, "Arn"]}
BUCKET_NAME = "${AWS::StackName}-${AWS::AccountId}-${AWS::Region}"
BUCKET_ARN = f"arn:${{AWS::Partition}}:s3:::{BUCKET_NAME}"
TRIGGERS = ("S3Notification", "EventBridge", "Queue")
MANIFESTS_PREFIX = "batch-manifests/"
REPORTS_PREFIX = "batch-reports/"
PSEUDO_PARAMETERS = {
    "AWS::AccountId",
    "AWS::NoValue",
    "AWS::Partition",
    "AWS::Region",
    "AWS::StackId",
    "AWS::StackName",
    "AWS::URLSuffix",
}
#: Keys that S3 itself writes under the two Batch Operations prefixes: an S3 Inventory report
#: (every format it offers, and the Hive symlinks) meant as a manifest, a CSV manifest, and a
#: job's completion report. None may ever trigger the function.
BATCH_OBJECT_KEYS = (
    f"{MANIFESTS_PREFIX}inventory/bucket/daily/2025-01-02T01-00Z/manifest.json",
    f"{MANIFESTS_PREFIX}inventory/bucket/daily/2025-01-02T01-00Z/manifest.checksum",
    f"{MANIFESTS_PREFIX}inventory/bucket/daily/data/5c0a9d5e-2d7e-4bb1-a0ad-2b1f6c7e3d11.csv.gz",
    f"{MANIFESTS_PREFIX}inventory/bucket/daily/data/5c0a9d5e-2d7e-4bb1-a0ad-2b1f6c7e3d11.orc",
    f"{MANIFESTS_PREFIX}inventory/bucket/daily/data/5c0a9d5e-2d7e-4bb1-a0ad-2b1f6c7e3d11.parquet",
    f"{MANIFESTS_PREFIX}inventory/bucket/daily/hive/dt=2025-01-02-01-00/symlink.txt",
    f"{MANIFESTS_PREFIX}backfill-2025-01.csv",
    f"{REPORTS_PREFIX}job-6a3e0d3c-7f6e-4a1b-9a53-0f1d2c3b4a59/manifest.json",
    f"{REPORTS_PREFIX}job-6a3e0d3c-7f6e-4a1b-9a53-0f1d2c3b4a59/results/4c1f2e9d8b7a.csv",
)


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
    if suffix in ("Ref", "Condition"):
        return {suffix: value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


CfnLoader.add_multi_constructor("!", _intrinsic)


def load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.load(  # CfnLoader is a SafeLoader
        path.read_text(encoding="utf-8"), Loader=CfnLoader
    )
    return loaded


# --- Resolving the Conditions: what CloudFormation deploys for given parameter values ---------

_NO_VALUE = object()


def conditions_for(template: dict[str, Any], params: dict[str, str]) -> dict[str, bool]:
    """Every condition's value for these parameter values (Fn::Equals/Not/And/Or, Condition)."""

    def value(node: Any) -> Any:
        if isinstance(node, dict) and len(node) == 1:
            ((function, argument),) = node.items()
            assert function in operators, f"unsupported in a condition: {function}"
            return operators[function](argument)
        return node

    def truth(name: str) -> bool:
        result = value(template["Conditions"][name])
        assert isinstance(result, bool), name
        return result

    operators: dict[str, Callable[[Any], Any]] = {
        "Ref": lambda name: params[name],
        "Condition": truth,
        "Fn::Equals": lambda pair: str(value(pair[0])) == str(value(pair[1])),
        "Fn::Not": lambda one: not value(one[0]),
        "Fn::And": lambda many: all(value(inner) for inner in many),
        "Fn::Or": lambda many: any(value(inner) for inner in many),
    }

    return {name: truth(name) for name in template.get("Conditions", {})}


def resolve(node: Any, conditions: dict[str, bool]) -> Any:
    """``node`` with every Fn::If replaced by its chosen branch and AWS::NoValue removed."""
    if isinstance(node, dict):
        if set(node) == {"Fn::If"}:
            name, when_true, when_false = node["Fn::If"]
            return resolve(when_true if conditions[name] else when_false, conditions)
        if node == {"Ref": "AWS::NoValue"}:
            return _NO_VALUE
        resolved = {key: resolve(value, conditions) for key, value in node.items()}
        return {key: value for key, value in resolved.items() if value is not _NO_VALUE}
    if isinstance(node, list):
        items = [resolve(item, conditions) for item in node]
        return [item for item in items if item is not _NO_VALUE]
    return node


@dataclass(frozen=True)
class Variant:
    """The template as deployed with ``Trigger=trigger`` (and otherwise the defaults)."""

    trigger: str
    parameters: dict[str, Any]
    resources: dict[str, Any]
    outputs: dict[str, Any]

    def properties(self, name: str) -> dict[str, Any]:
        properties: dict[str, Any] = self.resources[name].get("Properties", {})
        return properties

    def named(self, resource_type: str) -> dict[str, dict[str, Any]]:
        """``{logical id: properties}`` of every resource of this type."""
        return {
            name: resource.get("Properties", {})
            for name, resource in self.resources.items()
            if resource["Type"] == resource_type
        }


def inline_bucket(node: Any) -> Any:
    """``!Sub [text, {Bucket: !Sub name}]`` (the bucket's name chosen by ExistingBucketName,
    once resolved) written as the one ``!Sub`` it stands for."""
    if isinstance(node, dict):
        sub = node.get("Fn::Sub")
        if isinstance(sub, list) and set(sub[1]) == {"Bucket"}:
            value = sub[1]["Bucket"]
            if isinstance(value, dict) and isinstance(value.get("Fn::Sub"), str):
                return {"Fn::Sub": sub[0].replace("${Bucket}", value["Fn::Sub"])}
            if value == {"Ref": "ExistingBucketName"}:
                return {"Fn::Sub": sub[0].replace("${Bucket}", "${ExistingBucketName}")}
        return {key: inline_bucket(value) for key, value in node.items()}
    if isinstance(node, list):
        return [inline_bucket(item) for item in node]
    return node


def deployed(
    template: dict[str, Any], trigger: str, overrides: dict[str, str] | None = None
) -> Variant:
    defaults = {name: str(p.get("Default")) for name, p in template["Parameters"].items()}
    conditions = conditions_for(template, {**defaults, "Trigger": trigger, **(overrides or {})})

    def kept(section: dict[str, Any]) -> dict[str, Any]:
        return {
            name: inline_bucket(resolve(item, conditions))
            for name, item in section.items()
            if conditions.get(item.get("Condition", ""), True)
        }

    return Variant(
        trigger,
        template["Parameters"],
        kept(template["Resources"]),
        kept(template.get("Outputs", {})),
    )


# --- Reading a template ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load(ROOT / "template.yaml")


@pytest.fixture(scope="module", params=TRIGGERS)
def variant(request: pytest.FixtureRequest, template: dict[str, Any]) -> Variant:
    return deployed(template, str(request.param))


@pytest.fixture(scope="module")
def function(template: dict[str, Any]) -> dict[str, Any]:
    properties: dict[str, Any] = template["Resources"][FUNCTION]["Properties"]
    return properties


def env_vars_read_by_code() -> dict[str, str]:
    """``{name: file}`` of every environment variable src/handler reads: ``os.environ.get``,
    ``os.environ[...]``, ``os.getenv`` and ``.get`` on a mapping named ``env``/``environ``."""
    found: dict[str, str] = {}
    for path in sorted(HANDLER_SRC.rglob("*.py")):
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


def references(node: Any) -> Iterator[str]:
    """Every logical id or parameter that ``node`` refers to (Ref, GetAtt, Sub variables)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref":
                yield value
            elif key == "Fn::GetAtt":
                yield value[0]
            elif key == "Fn::Sub":
                text, variables = (value, {}) if isinstance(value, str) else value
                for name in re.findall(r"\$\{([^!}][^}]*)\}", text):
                    if name not in variables:
                        yield name.split(".", 1)[0] if not name.startswith("AWS::") else name
                yield from references(variables)
            else:
                yield from references(value)
    elif isinstance(node, list):
        for item in node:
            yield from references(item)


def sub_strings(node: Any) -> Iterator[str]:
    """The template string of every Fn::Sub in ``node``."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Fn::Sub":
                yield value if isinstance(value, str) else value[0]
            yield from sub_strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from sub_strings(item)


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def s3_grants(policy: Any) -> dict[str, list[str]]:
    """``{resource (Fn::Sub text): sorted s3 actions}`` of the Allow statements in ``policy``."""
    grants: dict[str, list[str]] = {}
    for statement in statements(policy):
        actions = [a for a in as_list(statement["Action"]) if a.startswith("s3:")]
        if statement["Effect"] == "Allow" and actions:
            for resource in as_list(statement["Resource"]):
                granted = grants.setdefault(resource["Fn::Sub"], [])
                granted[:] = sorted({*granted, *actions})
    return grants


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


def suffix_filter(rules: list[dict[str, Any]]) -> Any:
    """The value of an S3 key filter that must be one suffix rule and nothing else."""
    (rule,) = rules
    assert rule["Name"] == "suffix"
    return rule["Value"]


def paths_to_function(variant: Variant) -> list[tuple[str, Any]]:
    """``(kind, key filter)`` of every way a new object in the bucket reaches the function."""
    notifications = variant.properties("MarketBucket").get("NotificationConfiguration", {})
    assert not notifications.get("TopicConfigurations"), "no SNS path is expected"
    found: list[tuple[str, Any]] = []
    for config in notifications.get("LambdaConfigurations", []):
        assert config["Function"] == FUNCTION_ARN
        path = ("S3Notification", suffix_filter(config["Filter"]["S3Key"]["Rules"]))
        found += [path] if path not in found else []  # one path, one entry per event type
    mappings = variant.named("AWS::Lambda::EventSourceMapping").values()
    for config in notifications.get("QueueConfigurations", []):
        queue, _ = config["Queue"]["Fn::GetAtt"]
        for mapping in mappings:
            if mapping["EventSourceArn"] == {"Fn::GetAtt": [queue, "Arn"]}:
                assert mapping["FunctionName"] == {"Ref": FUNCTION}
                path = ("Queue", suffix_filter(config["Filter"]["S3Key"]["Rules"]))
                found += [path] if path not in found else []
    if notifications.get("EventBridgeConfiguration", {}).get("EventBridgeEnabled"):
        for rule in variant.named("AWS::Events::Rule").values():
            pattern = rule["EventPattern"]
            targets_function = any(t["Arn"] == FUNCTION_ARN for t in rule["Targets"])
            if pattern["source"] == ["aws.s3"] and targets_function:
                assert pattern["detail"]["bucket"]["name"] == [{"Ref": "MarketBucket"}]
                (key_filter,) = pattern["detail"]["object"]["key"]
                assert set(key_filter) == {"suffix"}, "the key filter is a suffix and nothing else"
                found.append(("EventBridge", key_filter["suffix"]))
    return found


def delivered_events(variant: Variant) -> set[str]:
    """The kinds of S3 event that reach the function: notification event types, or the rule's
    detail types."""
    notifications = variant.properties("MarketBucket").get("NotificationConfiguration", {})
    configs = [
        *notifications.get("LambdaConfigurations", []),
        *notifications.get("QueueConfigurations", []),
    ]
    found = {config["Event"] for config in configs}
    for rule in variant.named("AWS::Events::Rule").values():
        found |= set(rule["EventPattern"]["detail-type"])
    return found


def test_every_trigger_delivers_creations_deletions_and_restores(variant: Variant) -> None:
    """(r4) An archived input is totalled when its restore completes, on every Trigger."""
    expected = (
        {"Object Created", "Object Deleted", "Object Restore Completed"}
        if variant.trigger == "EventBridge"
        else {
            "s3:ObjectCreated:*",
            "s3:ObjectRemoved:*",
            "s3:LifecycleExpiration:*",
            "s3:ObjectRestore:Completed",
        }
    )
    assert delivered_events(variant) == expected


# --- The function and its settings -------------------------------------------------------------


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


def test_the_function_declares_no_sam_events(function: dict[str, Any]) -> None:
    # SAM's Events cannot take a Condition: one there would be a second path in every variant.
    assert "Events" not in function


# --- Triggers: one path per Trigger value, filtered on the input suffix ------------------------


def test_trigger_values_are_the_tested_ones(template: dict[str, Any]) -> None:
    trigger = template["Parameters"]["Trigger"]
    assert tuple(trigger["AllowedValues"]) == TRIGGERS
    assert trigger["Default"] == "S3Notification"  # the behaviour before Trigger existed


def test_each_trigger_is_exactly_one_path_from_bucket_to_function(variant: Variant) -> None:
    assert [kind for kind, _ in paths_to_function(variant)] == [variant.trigger]


def test_only_the_chosen_path_may_invoke_the_function(variant: Variant) -> None:
    principals = {
        permission["Principal"]
        for permission in variant.named("AWS::Lambda::Permission").values()
        if permission["FunctionName"] in (FUNCTION_ARN, {"Ref": FUNCTION})
    }
    expected = {
        "S3Notification": {"s3.amazonaws.com"},
        "EventBridge": {"events.amazonaws.com"},
        "Queue": set(),  # the event source mapping polls with the function's own role
    }
    assert principals == expected[variant.trigger]
    mappings = variant.named("AWS::Lambda::EventSourceMapping")
    assert len(mappings) == (1 if variant.trigger == "Queue" else 0)


def test_every_invoke_permission_names_its_source(variant: Variant) -> None:
    for name, permission in variant.named("AWS::Lambda::Permission").items():
        assert permission["Action"] == "lambda:InvokeFunction", name
        assert permission["SourceArn"], name
        if permission["Principal"] == "s3.amazonaws.com":
            # The bucket ARN as a !Sub, never !GetAtt MarketBucket.Arn: that would close the
            # bucket -> permission -> bucket cycle.
            assert permission["SourceArn"] == {"Fn::Sub": BUCKET_ARN}, name
            assert permission["SourceAccount"] == {"Ref": "AWS::AccountId"}, name
        else:
            assert permission["SourceArn"] == {"Fn::GetAtt": ["ObjectCreatedRule", "Arn"]}, name


def test_trigger_filter_and_input_suffix_come_from_one_parameter(
    variant: Variant, function: dict[str, Any]
) -> None:
    ((_, key_filter),) = paths_to_function(variant)
    assert key_filter == {"Ref": "InputSuffix"}
    assert function["Environment"]["Variables"]["INPUT_SUFFIX"] == {"Ref": "InputSuffix"}
    assert function["Environment"]["Variables"]["RESULT_NAME"] == {"Ref": "ResultName"}


def test_the_bucket_comes_after_its_notification_destination(variant: Variant) -> None:
    # S3 checks a destination when the notification is written; without a conditional DependsOn,
    # a reference from the bucket is what orders it after the permission or the queue policy.
    after = {"S3Notification": "S3InvokePermission", "Queue": "InputQueuePolicy"}
    referred = set(references(variant.resources["MarketBucket"]))
    if variant.trigger in after:
        assert after[variant.trigger] in referred
    assert "DependsOn" not in variant.resources["MarketBucket"]


def test_every_reference_exists_in_every_variant(variant: Variant) -> None:
    # CloudFormation refuses a template whose deployed resources name one that is not created.
    known = set(variant.parameters) | PSEUDO_PARAMETERS | set(variant.resources)
    for name, item in {**variant.resources, **variant.outputs}.items():
        missing = set(references(item)) - known
        missing |= set(as_list(item.get("DependsOn", []))) - set(variant.resources)
        assert not missing, f"{variant.trigger}: {name} refers to {missing}"


def test_input_suffix_pattern_excludes_every_name_s3_writes_for_batch_operations(
    template: dict[str, Any],
) -> None:
    pattern = re.compile(template["Parameters"]["InputSuffix"]["AllowedPattern"])
    assert pattern.fullmatch(template["Parameters"]["InputSuffix"]["Default"])
    for accepted in ("market_infos.json", "infos.json", "prices.json", "a.json"):
        assert pattern.fullmatch(accepted), accepted
    for rejected in ("json", ".json", "manifest.json", "t.json", "a/b.json", "x.csv"):
        assert not pattern.fullmatch(rejected), rejected
    # No value the parameter accepts is a suffix of an object S3 writes under either prefix.
    for key in BATCH_OBJECT_KEYS:
        name = key.rsplit("/", 1)[1]
        for start in range(len(name)):
            assert not pattern.fullmatch(name[start:]), (key, name[start:])


def test_no_trigger_matches_a_result_or_a_batch_object(template: dict[str, Any]) -> None:
    pattern = re.compile(template["Parameters"]["InputSuffix"]["AllowedPattern"])
    for env, values in parameter_values(template):
        suffix = values["InputSuffix"]
        assert pattern.fullmatch(suffix), env
        assert not values["ResultName"].endswith(suffix), env
        assert values["Trigger"] in TRIGGERS, env
        for key in BATCH_OBJECT_KEYS:
            assert not key.endswith(suffix), (env, key)


# --- Trigger=Queue ----------------------------------------------------------------------------


def test_queue_trigger_reports_batch_failures_and_has_a_dlq_and_alarm(
    template: dict[str, Any], function: dict[str, Any]
) -> None:
    queued = deployed(template, "Queue")
    ((_, mapping),) = queued.named("AWS::Lambda::EventSourceMapping").items()
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BatchSize"] == {"Ref": "QueueBatchSize"}
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": {"Ref": "QueueMaximumConcurrency"}}
    assert "MaximumBatchingWindowInSeconds" not in mapping

    queue_name, _ = mapping["EventSourceArn"]["Fn::GetAtt"]
    queue = queued.properties(queue_name)
    assert queue["SqsManagedSseEnabled"]
    assert queue["VisibilityTimeout"] >= 6 * function["Timeout"]  # AWS's advice
    assert queue["RedrivePolicy"]["maxReceiveCount"] >= 5  # ditto, so throttles don't redrive
    dlq_name, attribute = queue["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"]
    assert attribute == "Arn"
    assert dlq_name not in (queue_name, "FailureQueue")  # its own dead-letter queue
    dlq = queued.properties(dlq_name)
    assert dlq["SqsManagedSseEnabled"]
    # The DLQ keeps a message's first enqueue time: it must keep messages longer.
    assert dlq["MessageRetentionPeriod"] > queue.get("MessageRetentionPeriod", 345600)

    alarmed = [
        alarm
        for alarm in queued.named("AWS::CloudWatch::Alarm").values()
        if {"Name": "QueueName", "Value": {"Fn::GetAtt": [dlq_name, "QueueName"]}}
        in alarm["Dimensions"]
    ]
    assert len(alarmed) == 1
    assert alarmed[0]["MetricName"] == "ApproximateNumberOfMessagesVisible"

    sizes = template["Parameters"]["QueueBatchSize"]
    assert 1 <= sizes["MinValue"] <= sizes["Default"] <= sizes["MaxValue"] <= 10
    concurrency = template["Parameters"]["QueueMaximumConcurrency"]
    assert 2 <= concurrency["MinValue"] <= concurrency["Default"] <= concurrency["MaxValue"]
    assert concurrency["MaxValue"] <= 1000


def test_queue_policies_are_tls_only_and_let_only_this_bucket_send(
    template: dict[str, Any],
) -> None:
    queued = deployed(template, "Queue")
    policies = {
        queue["Ref"]: policy["PolicyDocument"]
        for policy in queued.named("AWS::SQS::QueuePolicy").values()
        for queue in policy["Queues"]
    }
    for queue in queued.named("AWS::SQS::Queue"):
        deny = [s for s in statements(policies[queue]) if s["Effect"] == "Deny"]
        assert deny[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    (send,) = [s for s in statements(policies["InputQueue"]) if s["Effect"] == "Allow"]
    assert send["Principal"] == {"Service": "s3.amazonaws.com"}
    assert send["Action"] == "sqs:SendMessage"
    assert send["Condition"] == {
        "ArnEquals": {"aws:SourceArn": {"Fn::Sub": BUCKET_ARN}},
        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
    }


def test_the_function_may_consume_the_input_queue_only_with_trigger_queue(
    variant: Variant,
) -> None:
    policy = variant.properties("FunctionRole")["Policies"]
    consume = [s for s in statements(policy) if "sqs:ReceiveMessage" in as_list(s["Action"])]
    if variant.trigger != "Queue":
        assert not consume
        return
    (statement,) = consume
    assert sorted(statement["Action"]) == [
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "sqs:ReceiveMessage",
    ]
    assert statement["Resource"] == {"Fn::GetAtt": ["InputQueue", "Arn"]}


# --- Trigger=EventBridge ----------------------------------------------------------------------


def test_eventbridge_rule_filters_retries_and_dead_letters(template: dict[str, Any]) -> None:
    bridged = deployed(template, "EventBridge")
    notifications = bridged.properties("MarketBucket")["NotificationConfiguration"]
    assert notifications == {"EventBridgeConfiguration": {"EventBridgeEnabled": True}}
    ((rule_name, rule),) = bridged.named("AWS::Events::Rule").items()
    assert rule["EventPattern"] == {
        "source": ["aws.s3"],
        "detail-type": ["Object Created", "Object Deleted", "Object Restore Completed"],
        "detail": {
            "bucket": {"name": [{"Ref": "MarketBucket"}]},
            "object": {"key": [{"suffix": {"Ref": "InputSuffix"}}]},
        },
    }
    (target,) = rule["Targets"]
    assert target["Arn"] == FUNCTION_ARN
    assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0
    assert 60 <= target["RetryPolicy"]["MaximumEventAgeInSeconds"] <= 86400
    dead_letters, _ = target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"]
    assert bridged.resources[dead_letters]["Type"] == "AWS::SQS::Queue"
    # EventBridge may send to that queue, for this rule only.
    allowed = [
        s
        for policy in bridged.named("AWS::SQS::QueuePolicy").values()
        if {"Ref": dead_letters} in policy["Queues"]
        for s in statements(policy)
        if s["Effect"] == "Allow"
    ]
    (send,) = allowed
    assert send["Principal"] == {"Service": "events.amazonaws.com"}
    assert send["Action"] == "sqs:SendMessage"
    assert send["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": [rule_name, "Arn"]}}}
    # Without EventBridge, nothing but the function's role may send to FailureQueue.
    for trigger in ("S3Notification", "Queue"):
        other = deployed(template, trigger)
        policy = other.properties("FailureQueuePolicy")
        assert all(s["Effect"] == "Deny" for s in statements(policy)), trigger


# --- Least privilege ---------------------------------------------------------------------------


def test_no_allow_statement_grants_every_action_or_resource(variant: Variant) -> None:
    found = list(statements(variant.resources))
    assert len(found) >= 5
    for statement in found:
        if statement["Effect"] != "Allow":
            continue  # the TLS-only policies deny s3:* / sqs:* to insecure transport
        for action in as_list(statement["Action"]):
            assert action != "*", statement
            assert not action.endswith(":*"), statement
        assert "*" not in as_list(statement.get("Resource", [])), statement


def test_s3_access_is_limited_to_inputs_and_results(variant: Variant) -> None:
    policy = variant.properties("FunctionRole")["Policies"]
    assert s3_grants(policy) == {
        f"{BUCKET_ARN}/*${{InputSuffix}}": ["s3:GetObject", "s3:GetObjectVersion"],
        # DeleteObject withdraws a result whose input is gone: on results only.
        f"{BUCKET_ARN}/*${{ResultName}}": ["s3:DeleteObject", "s3:GetObject", "s3:PutObject"],
        # HEAD of a missing result answers 404 only with ListBucket (else 403).
        BUCKET_ARN: ["s3:ListBucket"],
    }


def test_batch_operations_role_can_invoke_only_this_function(variant: Variant) -> None:
    role = variant.properties("BatchOperationsRole")
    (trust,) = statements(role["AssumeRolePolicyDocument"])
    assert trust["Principal"] == {"Service": "batchoperations.s3.amazonaws.com"}
    assert trust["Action"] == "sts:AssumeRole"
    granted = list(statements(role["Policies"]))
    assert all(s["Effect"] == "Allow" for s in granted)
    lambda_grants = [
        s for s in granted if any(a.startswith("lambda:") for a in as_list(s["Action"]))
    ]
    (invoke,) = lambda_grants
    assert invoke["Action"] == "lambda:InvokeFunction"
    assert invoke["Resource"] == FUNCTION_ARN  # unqualified: no other function or version
    assert all(a.startswith(("s3:", "lambda:")) for s in granted for a in as_list(s["Action"])), (
        granted
    )
    assert s3_grants(role["Policies"]) == {
        f"{BUCKET_ARN}/{MANIFESTS_PREFIX}*": ["s3:GetObject", "s3:GetObjectVersion"],
        f"{BUCKET_ARN}/{REPORTS_PREFIX}*": ["s3:PutObject"],
        BUCKET_ARN: ["s3:GetBucketLocation"],
    }
    # Nothing else in the template lets Batch Operations in, or grants lambda:InvokeFunction.
    for name, resource in variant.resources.items():
        if name != "BatchOperationsRole":
            assert "batchoperations" not in str(resource), name
            iam = [s for s in statements(resource) if "lambda:InvokeFunction" in str(s)]
            assert not iam, name
    assert variant.outputs["BatchOperationsRoleArn"]["Value"] == {
        "Fn::GetAtt": ["BatchOperationsRole", "Arn"]
    }
    assert variant.outputs["BatchManifestsPrefix"]["Value"] == MANIFESTS_PREFIX
    assert variant.outputs["BatchReportsPrefix"]["Value"] == REPORTS_PREFIX


def test_only_s3_inventory_may_write_into_the_bucket_and_only_manifests(variant: Variant) -> None:
    bucket_policy = variant.properties("MarketBucketPolicy")
    (allow,) = [s for s in statements(bucket_policy) if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "s3.amazonaws.com"}
    assert allow["Action"] == "s3:PutObject"
    assert allow["Resource"] == {"Fn::Sub": f"{BUCKET_ARN}/{MANIFESTS_PREFIX}*"}
    assert allow["Condition"] == {
        "ArnEquals": {"aws:SourceArn": {"Fn::Sub": BUCKET_ARN}},
        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
    }


def test_the_bucket_name_is_one_expression(
    template: dict[str, Any], function: dict[str, Any]
) -> None:
    bucket = template["Resources"]["MarketBucket"]["Properties"]
    assert bucket["BucketName"] == {"Fn::Sub": BUCKET_NAME}
    env = deployed(template, "S3Notification").properties(FUNCTION)["Environment"]["Variables"]
    assert env["RESULT_BUCKET"] == {"Fn::Sub": BUCKET_NAME}
    # Every S3 ARN in the template is this bucket's (or under it), spelt the same way.
    resources = {
        name: resource
        for trigger in TRIGGERS
        for name, resource in deployed(template, trigger).resources.items()
    }
    arns = [text for text in sub_strings(resources) if ":s3:::" in text]
    assert len(arns) >= 8
    for text in arns:
        assert text == BUCKET_ARN or text.startswith(f"{BUCKET_ARN}/"), text


def test_bucket_is_encrypted_private_versioned_and_tls_only(variant: Variant) -> None:
    bucket = variant.properties("MarketBucket")
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert bucket["VersioningConfiguration"]["Status"] == "Enabled"
    rules = bucket["LifecycleConfiguration"]["Rules"]
    assert any("NoncurrentVersionExpiration" in rule for rule in rules)
    denies = [
        s for s in statements(variant.resources["MarketBucketPolicy"]) if s["Effect"] == "Deny"
    ]
    assert {"Bool": {"aws:SecureTransport": "false"}} in [s["Condition"] for s in denies]


def test_the_bucket_refuses_sse_c_uploads(variant: Variant) -> None:
    """(r4) An SSE-C object can never be read by the function: S3 refuses its upload."""
    denies = [
        s for s in statements(variant.resources["MarketBucketPolicy"]) if s["Effect"] == "Deny"
    ]
    (sse_c,) = [s for s in denies if "s3:x-amz-server-side-encryption-customer-algorithm" in str(s)]
    assert sse_c["Principal"] == "*"
    assert sse_c["Action"] == "s3:PutObject"
    assert sse_c["Resource"] == {"Fn::Sub": "${MarketBucket.Arn}/*"}
    # Null false: the header is present, whatever its value.
    assert sse_c["Condition"] == {
        "Null": {"s3:x-amz-server-side-encryption-customer-algorithm": "false"}
    }


def test_failed_events_go_to_an_encrypted_queue(variant: Variant, function: dict[str, Any]) -> None:
    config = function["EventInvokeConfig"]
    assert 0 <= config["MaximumRetryAttempts"] <= 2
    assert 60 <= config["MaximumEventAgeInSeconds"] <= 21600
    on_failure = config["DestinationConfig"]["OnFailure"]
    assert on_failure["Type"] == "SQS"
    queue_name, attribute = on_failure["Destination"]["Fn::GetAtt"]
    assert attribute == "Arn"
    queue = variant.resources[queue_name]
    assert queue["Type"] == "AWS::SQS::Queue"
    assert queue["Properties"].get("SqsManagedSseEnabled") or queue["Properties"].get(
        "KmsMasterKeyId"
    )
    alarmed = {
        str(dimension["Value"])
        for alarm in variant.named("AWS::CloudWatch::Alarm").values()
        for dimension in alarm["Dimensions"]
    }
    assert str({"Fn::GetAtt": [queue_name, "QueueName"]}) in alarmed
    assert str({"Ref": FUNCTION}) in alarmed
    # Every queue of the variant is alarmed on, or is the input queue the function drains.
    for name in variant.named("AWS::SQS::Queue"):
        assert name == "InputQueue" or str({"Fn::GetAtt": [name, "QueueName"]}) in alarmed, name
    assert {"BucketName", "FunctionName", "FailureQueueUrl"} <= set(variant.outputs)


def test_every_suppression_says_why(template: dict[str, Any]) -> None:
    skipped = 0
    for name, resource in template["Resources"].items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            assert re.fullmatch(r"CKV_AWS_\d+", skip["id"]), (name, skip)
            assert len(skip.get("comment", "").split()) >= 5, (name, skip)
            skipped += 1
    assert skipped >= 9
    # Suppressions live in Metadata, each with its reason: no inline ones in comments.
    assert "checkov:skip" not in (ROOT / "template.yaml").read_text(encoding="utf-8")


# --- samconfig.toml and the variants make template-check checks ------------------------------


def test_samconfig_examples_name_real_parameters(template: dict[str, Any]) -> None:
    text = (ROOT / "samconfig.toml").read_text(encoding="utf-8")
    examples = re.findall(r'^#\s*parameter_overrides\s*=\s*"([^"]*)"', text, re.MULTILINE)
    assert examples, "samconfig.toml shows how to choose the trigger"
    assert any("Trigger=" in example for example in examples)
    for example in examples:
        for name, value in (item.split("=", 1) for item in shlex.split(example)):
            parameter = template["Parameters"][name]
            assert value in [str(v) for v in parameter.get("AllowedValues", [value])], example


def test_template_variants_differ_only_in_the_trigger_default(
    template: dict[str, Any], tmp_path: Path
) -> None:
    paths = template_variants.write_variants(ROOT / "template.yaml", "Trigger", tmp_path)
    assert [path.parent.name for path in paths] == list(TRIGGERS)
    for path in paths:
        copy = load(path)
        assert copy["Parameters"]["Trigger"]["Default"] == path.parent.name
        copy["Parameters"]["Trigger"]["Default"] = template["Parameters"]["Trigger"]["Default"]
        assert copy == template, path


def test_template_variants_refuses_a_parameter_it_cannot_edit(tmp_path: Path) -> None:
    source = tmp_path / "template.yaml"
    source.write_text("Parameters:\n  Trigger:\n    Type: String\n    Default: A\n", "utf-8")
    with pytest.raises(template_variants.TemplateShapeError, match="AllowedValues"):
        template_variants.write_variants(source, "Trigger", tmp_path / "out")
    with pytest.raises(template_variants.TemplateShapeError, match="no parameter"):
        template_variants.write_variants(source, "Missing", tmp_path / "out")
    assert template_variants.main(["--template", str(source), "--out", str(tmp_path)]) == 1


# --- (r4) Hardening: who may send, redrive and assume -------------------------------------------


def test_the_input_queue_refuses_every_sender_but_this_buckets_notifications(
    template: dict[str, Any],
) -> None:
    """A principal of the account whose IAM allows SendMessage is refused too: an explicit Deny
    for any request not made on behalf of this bucket, in this account."""
    queued = deployed(template, "Queue")
    (policy,) = [
        p["PolicyDocument"]
        for p in queued.named("AWS::SQS::QueuePolicy").values()
        if p["Queues"] == [{"Ref": "InputQueue"}]
    ]
    sends = [
        s
        for s in statements(policy)
        if s["Effect"] == "Deny" and "sqs:SendMessage" in as_list(s["Action"])
    ]
    assert all(s["Principal"] == "*" for s in sends)
    assert all(s["Resource"] == {"Fn::GetAtt": ["InputQueue", "Arn"]} for s in sends)
    # Two statements: the keys of one statement are ANDed, and each must refuse on its own.
    assert sorted((s["Condition"] for s in sends), key=str) == sorted(
        [
            {"ArnNotEquals": {"aws:SourceArn": {"Fn::Sub": BUCKET_ARN}}},
            {"StringNotEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}},
        ],
        key=str,
    )


def test_dead_letter_queues_take_redrives_only_from_their_own_source(
    template: dict[str, Any],
) -> None:
    queued = deployed(template, "Queue")
    queues = queued.named("AWS::SQS::Queue")
    input_name = {"Fn::Sub": "${AWS::StackName}-input"}
    assert queues["InputQueue"]["QueueName"] == input_name
    assert queues["InputDeadLetterQueue"]["RedriveAllowPolicy"] == {
        "redrivePermission": "byQueue",
        "sourceQueueArns": [
            {
                "Fn::Sub": "arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:"
                "${AWS::StackName}-input"
            }
        ],
    }
    # The failure queue is a destination, never a dead-letter queue of any queue.
    for trigger in TRIGGERS:
        failure = deployed(template, trigger).properties("FailureQueue")
        assert failure["RedriveAllowPolicy"] == {"redrivePermission": "denyAll"}


def test_batch_operations_trust_is_scoped_to_the_account(variant: Variant) -> None:
    (trust,) = statements(variant.properties("BatchOperationsRole")["AssumeRolePolicyDocument"])
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}


def test_the_function_acts_only_on_its_bucket_and_owner(template: dict[str, Any]) -> None:
    """(r4) SOURCE_BUCKETS is the stack's bucket (or the existing one); EXPECTED_BUCKET_OWNER
    the account."""
    for overrides, bucket in (
        ({}, {"Fn::Sub": BUCKET_NAME}),
        ({"ExistingBucketName": "markets"}, {"Ref": "ExistingBucketName"}),
    ):
        env = deployed(template, "Queue", overrides).properties(FUNCTION)["Environment"]
        assert env["Variables"]["SOURCE_BUCKETS"] == bucket
        assert env["Variables"]["RESULT_BUCKET"] == bucket
        assert env["Variables"]["EXPECTED_BUCKET_OWNER"] == {"Ref": "AWS::AccountId"}


# --- (issue 26) An existing bucket ---------------------------------------------------------------

EXISTING = {"ExistingBucketName": "markets"}
EXISTING_ARN = "arn:${AWS::Partition}:s3:::${ExistingBucketName}"


@pytest.mark.parametrize("trigger", TRIGGERS)
def test_an_existing_bucket_gets_no_new_bucket_and_only_its_own_notifications(
    template: dict[str, Any], trigger: str
) -> None:
    variant = deployed(template, trigger, EXISTING)
    assert "MarketBucket" not in variant.resources
    assert "MarketBucketPolicy" not in variant.resources
    notifications = variant.properties("BucketNotifications")
    assert notifications["BucketName"] == {"Ref": "ExistingBucketName"}
    assert notifications["IdPrefix"] == {"Fn::Sub": "${AWS::StackName}-"}
    assert notifications["ExpectedBucketOwner"] == {"Ref": "AWS::AccountId"}
    assert notifications["EventBridge"] == ("true" if trigger == "EventBridge" else "false")
    entries = [
        *notifications.get("LambdaFunctionConfigurations", []),
        *notifications.get("QueueConfigurations", []),
    ]
    if trigger == "EventBridge":
        assert entries == []
        (rule,) = variant.named("AWS::Events::Rule").values()
        assert rule["EventPattern"]["detail"]["bucket"]["name"] == [{"Ref": "ExistingBucketName"}]
    else:
        (entry,) = entries
        assert entry["Id"] == {"Fn::Sub": "${AWS::StackName}-inputs"}
        # The same events as the created bucket's notifications deliver.
        assert set(entry["Events"]) == delivered_events(deployed(template, trigger))
        rules = entry["Filter"]["Key"]["FilterRules"]
        assert rules == [{"Name": "suffix", "Value": {"Ref": "InputSuffix"}}]
    # Every S3 ARN now names the existing bucket.
    arns = [text for text in sub_strings(variant.resources) if ":s3:::" in text]
    assert arns
    for text in arns:
        assert text == EXISTING_ARN or text.startswith(f"{EXISTING_ARN}/"), text


def test_the_custom_resource_may_only_read_and_write_that_buckets_notifications(
    template: dict[str, Any],
) -> None:
    variant = deployed(template, "S3Notification", EXISTING)
    function = variant.properties("BucketNotificationsFunction")
    assert function["CodeUri"] == "src/bucket_notifications/"
    assert (ROOT / "src" / "bucket_notifications" / "app.py").is_file()
    (statement,) = statements(function["Policies"])
    assert statement["Action"] == ["s3:GetBucketNotification", "s3:PutBucketNotification"]
    assert statement["Resource"] == {"Fn::Sub": EXISTING_ARN}
    # Without the parameter, none of it exists.
    assert "BucketNotificationsFunction" not in deployed(template, "S3Notification").resources
