#!/usr/bin/env python3
"""The application contract of template.yaml, and checks that cfn-lint does not make.

    check_template.py [--template template.yaml]
        Prints the contract as JSON: functions (logical id -> handler, environment variable names),
        WebSocket routes (route key -> function), HTTP routes ("METHOD /path" -> function), queues
        (-> dead-letter queue), tables (keys, TTL attribute, indexes), buckets (lifecycle prefixes)
        and workers (ECS task definition -> container, environment variable names).

    check_template.py --expect contract.json [--translate [OUT.json]] [--json OUT.json]
        Compares the contract with what the application code declares (`martlet contract`;
        scripts/lib/contract.expected.json until then), checks the template's own invariants
        (WebSocket API shape, IAM least privilege, log groups of the template with retention, the
        worker task's GPU, user, health check and stop timeout, the bucket's protection), and with
        --translate runs the SAM transform offline (aws-sam-translator, as `sam deploy` would) and
        lints the generated CloudFormation with cfn-lint. Prints `ok - …` / `not ok - …` lines;
        exits 1 if any check fails.

Runs with the peers' venv (scripts/lib/peers.sh installs cfn-lint, which brings PyYAML,
aws-sam-translator and the CloudFormation YAML decoder).
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

# --------------------------------------------------------------------------- loading


def load_template(path: Path) -> dict:
    """The template as plain dicts and lists; intrinsic functions become {"Ref": …}, {"Fn::Sub": …}."""
    try:
        from cfnlint.decode import cfn_yaml

        data = cfn_yaml.load(str(path))
    except ImportError:  # PyYAML alone: map each short-form tag to its long form.
        import yaml

        class Loader(yaml.SafeLoader):
            pass

        def construct(loader: yaml.Loader, suffix: str, node: yaml.Node) -> Any:
            name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
            if isinstance(node, yaml.ScalarNode):
                value: Any = loader.construct_scalar(node)
                if suffix == "GetAtt":
                    value = value.split(".", 1)
            elif isinstance(node, yaml.SequenceNode):
                value = loader.construct_sequence(node, deep=True)
            else:
                value = loader.construct_mapping(node, deep=True)
            return {name: value}

        Loader.add_multi_constructor("!", construct)
        data = yaml.load(path.read_text(), Loader=Loader)
    # Drop the decoder's node classes (line numbers): plain JSON types from here on.
    return json.loads(json.dumps(data))


def referenced_ids(value: Any) -> set[str]:
    """Logical ids a value refers to through Ref, Fn::GetAtt or ${…} in Fn::Sub."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                found.add(inner)
            elif key == "Fn::GetAtt":
                target = inner[0] if isinstance(inner, list) else str(inner).split(".", 1)[0]
                found.add(target)
            elif key == "Fn::Sub":
                text = inner[0] if isinstance(inner, list) else inner
                local = set(inner[1]) if isinstance(inner, list) and len(inner) > 1 else set()
                for name in re.findall(r"\$\{([^}!]+)\}", str(text)):
                    base = name.split(".", 1)[0]
                    if base not in local and not base.startswith("AWS::"):
                        found.add(base)
                if isinstance(inner, list) and len(inner) > 1:
                    found |= referenced_ids(inner[1])
            else:
                found |= referenced_ids(inner)
    elif isinstance(value, list):
        for inner in value:
            found |= referenced_ids(inner)
    return found


def of_type(resources: dict, *types: str) -> dict:
    return {k: v for k, v in resources.items() if v.get("Type") in types}


# --------------------------------------------------------------------------- the contract


def contract(template: dict) -> dict:
    resources = template.get("Resources", {})
    globals_fn = template.get("Globals", {}).get("Function", {})
    global_env = globals_fn.get("Environment", {}).get("Variables", {}) or {}
    functions = of_type(resources, "AWS::Serverless::Function", "AWS::Lambda::Function")

    out: dict[str, Any] = {"functions": {}, "websocketRoutes": {}, "httpRoutes": {}}
    for name, res in sorted(functions.items()):
        props = res.get("Properties", {})
        env = dict(global_env) if res["Type"] == "AWS::Serverless::Function" else {}
        env.update(props.get("Environment", {}).get("Variables", {}) or {})
        out["functions"][name] = {
            "handler": props.get("Handler", globals_fn.get("Handler")),
            "environment": sorted(env),
        }
        for event in (props.get("Events") or {}).values():
            if event.get("Type") == "HttpApi":
                ep = event.get("Properties", {})
                out["httpRoutes"][f"{str(ep.get('Method', 'ANY')).upper()} {ep.get('Path', '/')}"] = name

    apis = of_type(resources, "AWS::ApiGatewayV2::Api")
    integrations = of_type(resources, "AWS::ApiGatewayV2::Integration")
    route_responses = [r.get("Properties", {}) for r in of_type(resources, "AWS::ApiGatewayV2::RouteResponse").values()]
    out["websocketTwoWayRoutes"] = []
    for route_id, route in of_type(resources, "AWS::ApiGatewayV2::Route").items():
        props = route.get("Properties", {})
        if props.get("RouteResponseSelectionExpression") and any(
                route_id in referenced_ids(r.get("RouteId")) and r.get("RouteResponseKey") == "$default" for r in route_responses):
            out["websocketTwoWayRoutes"].append(props.get("RouteKey"))
        api = next(iter(referenced_ids(props.get("ApiId")) & set(apis)), None)
        targets = set()
        for integration in referenced_ids(props.get("Target")) & set(integrations):
            targets |= referenced_ids(integrations[integration]["Properties"].get("IntegrationUri")) & set(functions)
        target = ",".join(sorted(targets)) or None
        if api and apis[api]["Properties"].get("ProtocolType") == "WEBSOCKET":
            out["websocketRoutes"][props.get("RouteKey")] = target
        else:
            out["httpRoutes"][props.get("RouteKey")] = target
    out["websocketRoutes"] = dict(sorted(out["websocketRoutes"].items()))
    out["websocketTwoWayRoutes"].sort()
    out["httpRoutes"] = dict(sorted(out["httpRoutes"].items()))

    queues = of_type(resources, "AWS::SQS::Queue")
    out["queues"] = {}
    for name, res in sorted(queues.items()):
        redrive = res.get("Properties", {}).get("RedrivePolicy") or {}
        dlq = sorted(referenced_ids(redrive.get("deadLetterTargetArn")) & set(queues))
        out["queues"][name] = {"deadLetterQueue": dlq[0]} if dlq else {}

    out["tables"] = {}
    for name, res in sorted(of_type(resources, "AWS::DynamoDB::Table").items()):
        props = res.get("Properties", {})
        types = {a["AttributeName"]: a["AttributeType"] for a in props.get("AttributeDefinitions", [])}

        def keys(schema: list) -> dict:
            k: dict[str, Any] = {}
            for element in schema:
                role = "partitionKey" if element["KeyType"] == "HASH" else "sortKey"
                k[role] = {"name": element["AttributeName"], "type": types.get(element["AttributeName"])}
            return k

        table = keys(props.get("KeySchema", []))
        ttl = props.get("TimeToLiveSpecification") or {}
        table["ttl"] = ttl.get("AttributeName") if ttl.get("Enabled") in (True, "true") else None
        table["indexes"] = {
            index["IndexName"]: keys(index["KeySchema"]) for index in props.get("GlobalSecondaryIndexes", [])
        }
        out["tables"][name] = table

    out["buckets"] = {}
    for name, res in sorted(of_type(resources, "AWS::S3::Bucket").items()):
        rules = (res.get("Properties", {}).get("LifecycleConfiguration") or {}).get("Rules", [])
        prefixes = sorted(
            r.get("Prefix") or (r.get("Filter") or {}).get("Prefix")
            for r in rules
            if r.get("ExpirationInDays") is not None and (r.get("Prefix") or (r.get("Filter") or {}).get("Prefix"))
        )
        out["buckets"][name] = {"expiringPrefixes": prefixes}

    out["workers"] = {}
    for name, res in sorted(of_type(resources, "AWS::ECS::TaskDefinition").items()):
        for container in res.get("Properties", {}).get("ContainerDefinitions", []):
            out["workers"][name] = {
                "container": container.get("Name"),
                "environment": sorted(e["Name"] for e in container.get("Environment", [])),
            }
    return out


# --------------------------------------------------------------------------- comparison


class Report:
    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0

    def ok(self, message: str) -> None:
        self.passed += 1
        print(f"ok - {message}")

    def fail(self, message: str) -> None:
        self.failed += 1
        print(f"not ok - {message}")

    def check(self, condition: bool, message: str, detail: str = "") -> None:
        if condition:
            self.ok(message)
        else:
            self.fail(f"{message}{': ' + detail if detail else ''}")


def compare(expected: Any, actual: Any, path: str, report: Report) -> bool:
    """Reports every difference under path; True when there is none."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        same = True
        for key in expected.keys() - actual.keys():
            report.fail(f"{path}.{key}: declared by the code, missing from the template")
            same = False
        for key in actual.keys() - expected.keys():
            report.fail(f"{path}.{key}: in the template, not declared by the code")
            same = False
        for key in sorted(expected.keys() & actual.keys()):
            same &= compare(expected[key], actual[key], f"{path}.{key}", report)
        return same
    if isinstance(expected, list) and isinstance(actual, list) and all(isinstance(x, str) for x in expected + actual):
        for item in sorted(set(expected) - set(actual)):
            report.fail(f"{path}: {item} declared by the code, missing from the template")
        for item in sorted(set(actual) - set(expected)):
            report.fail(f"{path}: {item} in the template, not declared by the code")
        return set(expected) == set(actual)
    if expected != actual:
        report.fail(f"{path}: the code declares {json.dumps(expected)}, the template has {json.dumps(actual)}")
        return False
    return True


def compare_contract(expected: dict, actual: dict, report: Report) -> None:
    for section in sorted(expected.keys() | actual.keys()):
        if section not in actual:
            report.fail(f"{section}: declared by the code, missing from the template")
            continue
        if section not in expected:
            report.fail(f"{section}: in the template, not declared by the code")
            continue
        exp, act = expected[section], actual[section]
        if isinstance(exp, dict) and isinstance(act, dict):
            for key in sorted(exp.keys() - act.keys()):
                report.fail(f"{section}.{key}: declared by the code, missing from the template")
            for key in sorted(act.keys() - exp.keys()):
                report.fail(f"{section}.{key}: in the template, not declared by the code")
            for key in sorted(exp.keys() & act.keys()):
                if compare(exp[key], act[key], f"{section}.{key}", report):
                    report.ok(f"{section}.{key} matches ({describe(act[key])})")
        elif compare(exp, act, section, report):
            report.ok(f"{section} matches")


def describe(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "handler" in value:
        return f"handler {value['handler']}, {len(value['environment'])} environment variables"
    if isinstance(value, dict) and "environment" in value:
        return f"container {value.get('container')}, {len(value['environment'])} environment variables"
    if isinstance(value, dict) and "partitionKey" in value:
        return f"key {value['partitionKey']['name']}, TTL {value.get('ttl')}, indexes {', '.join(value.get('indexes', {})) or 'none'}"
    return json.dumps(value, sort_keys=True)


# --------------------------------------------------------------------------- template invariants

# Actions that take no resource-level permission: "*" is the only resource AWS accepts for them.
STAR_RESOURCE_ONLY = {"ecr:GetAuthorizationToken"}


def as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def check_invariants(template: dict, report: Report) -> None:
    resources = template.get("Resources", {})
    globals_fn = template.get("Globals", {}).get("Function", {})
    functions = of_type(resources, "AWS::Serverless::Function")

    # Functions: one zip, one runtime, the Handler picks the handler.
    for name, res in sorted(functions.items()):
        props = {**globals_fn, **res.get("Properties", {})}
        report.check(
            props.get("Runtime") == "provided.al2023" and props.get("CodeUri") == "dist/lambda/bootstrap.zip"
            and bool(props.get("Handler")),
            f"{name} runs dist/lambda/bootstrap.zip on provided.al2023 with Handler {props.get('Handler')}",
            f"Runtime {props.get('Runtime')}, CodeUri {props.get('CodeUri')}",
        )

    # The WebSocket API (cfn-lint accepts a misspelled ProtocolType).
    for name, res in of_type(resources, "AWS::ApiGatewayV2::Api").items():
        props = res["Properties"]
        report.check(
            props.get("ProtocolType") == "WEBSOCKET" and props.get("RouteSelectionExpression") == "$request.body.action",
            f"{name} is a WebSocket API routing on $request.body.action",
            f"ProtocolType {props.get('ProtocolType')}, RouteSelectionExpression {props.get('RouteSelectionExpression')}",
        )
    for name, res in of_type(resources, "AWS::ApiGatewayV2::Integration").items():
        function = referenced_ids(res["Properties"].get("IntegrationUri")) & set(functions)
        permitted = [
            p for p in of_type(resources, "AWS::Lambda::Permission").values()
            if referenced_ids(p["Properties"].get("FunctionName")) & function
            and p["Properties"].get("Principal") == "apigateway.amazonaws.com"
        ]
        report.check(
            res["Properties"].get("IntegrationType") == "AWS_PROXY" and bool(function) and bool(permitted),
            f"{name} is an AWS_PROXY integration of {', '.join(sorted(function)) or '?'} with a Lambda permission",
        )
    for name, res in of_type(resources, "AWS::ApiGatewayV2::Stage").items():
        settings = res["Properties"].get("DefaultRouteSettings") or {}
        report.check(
            "ThrottlingBurstLimit" in settings and "ThrottlingRateLimit" in settings,
            f"{name} throttles (burst and rate limits)",
        )

    # IAM: no "*" action; a "*" resource only for actions that take nothing else; ManageConnections
    # only on the WebSocket API's stage.
    for name, res in sorted(of_type(resources, "AWS::IAM::Role").items()):
        props = res["Properties"]
        problems = []
        for policy in props.get("Policies", []):
            for statement in as_list(policy["PolicyDocument"].get("Statement", [])):
                if statement.get("Effect") != "Allow":
                    continue
                actions = [a for a in as_list(statement.get("Action", [])) if isinstance(a, str)]
                resources_ = as_list(statement.get("Resource", []))
                for action in actions:
                    if action == "*" or action.endswith(":*"):
                        problems.append(f"wildcard action {action}")
                if "*" in resources_ and not set(actions) <= STAR_RESOURCE_ONLY:
                    problems.append(f"resource * for {', '.join(actions)}")
                if "execute-api:ManageConnections" in actions:
                    for resource in resources_:
                        text = json.dumps(resource)
                        if not re.search(r"\$\{WebSocketApi\}/\$\{StageName\}/(POST|GET|DELETE)/@connections/\*", text):
                            problems.append(f"execute-api:ManageConnections on {text}")
        managed = [json.dumps(m) for m in props.get("ManagedPolicyArns", [])]
        principal = json.dumps(props.get("AssumeRolePolicyDocument", {}))
        if managed and "ec2.amazonaws.com" not in principal:
            problems.append(f"managed policies {', '.join(managed)}")
        report.check(not problems, f"{name} grants named actions on named resources", "; ".join(problems))
    for name, res in sorted(functions.items()):
        props = res.get("Properties", {})
        report.check(
            "Role" in props and "Policies" not in props,
            f"{name} uses its own role (no SAM default AWSLambdaBasicExecutionRole on resource *)",
        )

    # Logs: each function writes to a log group of the template (LoggingConfig, or one named after the
    # function), never to one Lambda creates without retention; every log group expires its events.
    log_groups = of_type(resources, "AWS::Logs::LogGroup")
    for name, res in sorted(functions.items()):
        target = referenced_ids((res.get("Properties", {}).get("LoggingConfig") or {}).get("LogGroup")) & set(log_groups)
        target |= {g for g, group in log_groups.items() if name in referenced_ids(group.get("Properties", {}).get("LogGroupName"))}
        report.check(bool(target), f"{name} logs to a log group of the template ({', '.join(sorted(target)) or 'none'})")
    for name, res in sorted(log_groups.items()):
        report.check("RetentionInDays" in res.get("Properties", {}), f"{name} expires its events (RetentionInDays)")

    # Queue, tables, bucket.
    queues = of_type(resources, "AWS::SQS::Queue")
    for name, res in sorted(queues.items()):
        redrive = res["Properties"].get("RedrivePolicy")
        if redrive:
            report.check(
                bool(referenced_ids(redrive.get("deadLetterTargetArn")) & set(queues)) and "maxReceiveCount" in redrive,
                f"{name} redrives to a dead-letter queue after maxReceiveCount receives",
            )
    for name, res in sorted(of_type(resources, "AWS::S3::Bucket").items()):
        props = res["Properties"]
        block = props.get("PublicAccessBlockConfiguration") or {}
        sse = (props.get("BucketEncryption") or {}).get("ServerSideEncryptionConfiguration") or [{}]
        cors = (props.get("CorsConfiguration") or {}).get("CorsRules") or [{}]
        report.check(
            all(block.get(k) is True for k in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets")),
            f"{name} blocks public access",
        )
        report.check(
            sse[0].get("ServerSideEncryptionByDefault", {}).get("SSEAlgorithm") in ("AES256", "aws:kms"),
            f"{name} encrypts objects at rest",
        )
        report.check(
            {"GET", "PUT", "POST"} <= set(cors[0].get("AllowedMethods", [])) and bool(cors[0].get("AllowedOrigins")),
            f"{name} allows browser GET/PUT/POST from the allowed origin",
        )

    # The GPU worker task.
    for name, res in sorted(of_type(resources, "AWS::ECS::TaskDefinition").items()):
        for container in res["Properties"].get("ContainerDefinitions", []):
            cname = f"{name}/{container.get('Name')}"
            gpus = [r for r in container.get("ResourceRequirements", []) if r.get("Type") == "GPU"]
            report.check(bool(gpus) and str(gpus[0].get("Value")) == "1", f"{cname} reserves one GPU")
            user = str(container.get("User", ""))
            report.check(bool(user) and user.split(":")[0] not in ("0", "root"), f"{cname} runs as a non-root user ({user})")
            command = " ".join(container.get("HealthCheck", {}).get("Command", []))
            report.check("localhost:8080/healthz" in command, f"{cname} health-checks http://localhost:8080/healthz")
            report.check(container.get("StopTimeout") == 120, f"{cname} gets 120 s to stop (Spot notice)")
            logging = container.get("LogConfiguration") or {}
            group = referenced_ids((logging.get("Options") or {}).get("awslogs-group")) & set(log_groups)
            report.check(
                logging.get("LogDriver") == "awslogs" and bool(group),
                f"{cname} logs with awslogs to a log group of the template ({', '.join(sorted(group)) or 'none'})",
            )
    for name, res in sorted(of_type(resources, "AWS::AutoScaling::AutoScalingGroup").items()):
        report.check(str(res["Properties"].get("MinSize")) == "0", f"{name} can scale to zero instances (MinSize 0)")
    targets = of_type(resources, "AWS::ApplicationAutoScaling::ScalableTarget")
    for name, res in sorted(targets.items()):
        report.check(res["Properties"].get("MinCapacity") == 0, f"{name} can scale the service to zero tasks")
    policies = of_type(resources, "AWS::ApplicationAutoScaling::ScalingPolicy")
    tracking = [
        p for p in policies.values()
        if p["Properties"].get("PolicyType") == "TargetTrackingScaling"
        and "ApproximateNumberOfMessagesVisible" in json.dumps(p)
        and "RunningTaskCount" in json.dumps(p)
    ]
    report.check(bool(tracking), "the worker service tracks backlog per task (visible messages / running tasks)")


# --------------------------------------------------------------------------- SAM transform


def translate(path: Path, out: Path | None, report: Report) -> None:
    """Runs the SAM transform offline, as `sam deploy` would after uploading the zip, and lints the result."""
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    try:
        from samtranslator.translator.transform import transform
    except ImportError as error:
        report.fail(f"SAM transform: aws-sam-translator is not installed ({error})")
        return
    template = copy.deepcopy(load_template(path))
    # `sam deploy` uploads local CodeUri paths and puts their S3 location in the template.
    for scope in [template.get("Globals", {}).get("Function", {})] + [
        r.get("Properties", {}) for r in template.get("Resources", {}).values() if r.get("Type") == "AWS::Serverless::Function"
    ]:
        if isinstance(scope.get("CodeUri"), str) and not scope["CodeUri"].startswith("s3://"):
            scope["CodeUri"] = f"s3://martlet-deploy-bucket/{Path(scope['CodeUri']).name}"

    class NoManagedPolicies:  # The template names no SAM managed policy: nothing to look up in IAM.
        def load(self) -> dict:
            return {}

    try:
        translated = transform(template, {}, NoManagedPolicies())
    except Exception as error:  # noqa: BLE001 - the translator's errors are the report
        report.fail(f"SAM transform: {error}")
        return
    counts: dict[str, int] = {}
    for res in translated["Resources"].values():
        counts[res["Type"]] = counts.get(res["Type"], 0) + 1
    report.ok(f"SAM transform: {len(translated['Resources'])} CloudFormation resources "
              f"({counts.get('AWS::Lambda::Function', 0)} functions, {counts.get('AWS::Lambda::Permission', 0)} permissions)")
    text = json.dumps(translated, indent=1)
    if out:
        out.write_text(text)
    try:
        from cfnlint.api import lint
    except ImportError as error:
        report.fail(f"cfn-lint of the transformed template: cfn-lint is not installed ({error})")
        return
    matches = lint(text)
    errors = [m for m in matches if m.rule.id.startswith("E")]
    for match in matches:
        print(f"# cfn-lint (transformed): {match.rule.id} {match.message} ({match.linenumber}:{match.columnnumber})")
    report.check(not errors, f"cfn-lint of the transformed template: {len(errors)} errors, {len(matches) - len(errors)} other findings")


# --------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--template", type=Path, default=ROOT / "template.yaml")
    parser.add_argument("--expect", type=Path, help="JSON contract the application code declares")
    parser.add_argument("--translate", nargs="?", const="", metavar="OUT.json",
                        help="run the SAM transform offline and lint its output (optionally keep it in OUT.json)")
    parser.add_argument("--json", type=Path, metavar="OUT.json", help="also write the template's contract here")
    args = parser.parse_args()

    template = load_template(args.template)
    actual = contract(template)
    if args.json:
        args.json.write_text(json.dumps(actual, indent=2) + "\n")
    if not args.expect and args.translate is None:
        print(json.dumps(actual, indent=2))
        return 0

    report = Report()
    if args.expect:
        expected = json.loads(args.expect.read_text())
        compare_contract(expected, actual, report)
        check_invariants(template, report)
    if args.translate is not None:
        translate(args.template, Path(args.translate) if args.translate else None, report)
    print(f"# template contract: {report.passed} ok, {report.failed} not ok")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
