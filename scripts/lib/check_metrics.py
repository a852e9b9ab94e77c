#!/usr/bin/env python3
"""Holds the template's alarms and dashboard to the metrics the code emits, and its alarms to one topic.

Usage: python scripts/lib/check_metrics.py CODE.json [--template template.yaml] [--alarm-topic AlarmTopic]

CODE.json is what `martlet contract` prints; its `metrics` array lists every metric the code emits in
the `Martlet` namespace as {"name", "unit", "dimensions"} (MetricCatalog). Checks, each printed
`ok - …` / `not ok - …: why`, then `N passed, M failed`; exit status 1 when any fails:
  * every Martlet metric the template names (alarms, scaling policies, dashboard widgets) is in the
    contract with exactly its dimension names: CloudWatch matches a metric by its whole dimension
    set, so a missing or extra dimension names a metric nobody writes and the alarm never fires;
  * every alarm does something (notifies or scales), and every SNS action of an alarm or target of
    an EventBridge rule is the alarm topic;
  * the alarm topic lets CloudWatch and EventBridge publish: its policy names both services, and a
    KMS key that encrypts it lets them use the key (the AWS managed key alias/aws/sns cannot).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any, Iterator

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.dont_write_bytecode = True
import check_template  # noqa: E402

NAMESPACE = "Martlet"
ACTION_KEYS = ("AlarmActions", "OKActions", "InsufficientDataActions")


class Report:
    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0

    def check(self, ok: bool, name: str, why: str = "") -> None:
        if ok:
            self.passed += 1
            print(f"ok - {name}")
        else:
            self.failed += 1
            print(f"not ok - {name}: {why or 'failed'}")


# --------------------------------------------------------------------------- where metrics are named


def template_metrics(value: Any) -> Iterator[tuple[str, str, list[str]]]:
    """(namespace, name, dimension names) of every metric a resource's properties name.

    Alarms name a metric at the top level (Namespace, MetricName, Dimensions) or in Metrics[].MetricStat.Metric;
    scaling policies in their CustomizedMetricSpecification: all are a mapping with Namespace and MetricName.
    """
    if isinstance(value, dict):
        if "MetricName" in value and "Namespace" in value:
            dimensions = [d.get("Name") for d in value.get("Dimensions") or [] if isinstance(d, dict)]
            yield str(value["Namespace"]), str(value["MetricName"]), dimensions
        for inner in value.values():
            yield from template_metrics(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from template_metrics(inner)


def template_expressions(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        if isinstance(value.get("Expression"), str):
            yield value["Expression"]
        for inner in value.values():
            yield from template_expressions(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from template_expressions(inner)


def dashboard_body(body: Any) -> dict:
    """The dashboard's JSON, with each ${…} of a Fn::Sub replaced by a placeholder (only names matter here)."""
    if isinstance(body, dict) and "Fn::Sub" in body:
        body = body["Fn::Sub"]
        body = body[0] if isinstance(body, list) else body
    if not isinstance(body, str):
        raise ValueError(f"DashboardBody is neither a string nor a Fn::Sub of one: {json.dumps(body)[:80]}")
    body = re.sub(r"\$\{!", "$LITERAL{", body)
    body = re.sub(r"\$\{[^}]*\}", "SUBSTITUTED", body)
    return json.loads(body)


def dashboard_metrics(body: dict) -> tuple[list[tuple[str, str, list[str]]], list[str]]:
    """(namespace, name, dimension names) of each metric row of each widget, and the expressions."""
    found: list[tuple[str, str, list[str]]] = []
    expressions: list[str] = []
    for widget in body.get("widgets", []):
        properties = widget.get("properties") or {}
        previous: list = []
        for row in properties.get("metrics") or []:
            items = [x for x in row if not isinstance(x, dict)]
            options = [x for x in row if isinstance(x, dict)]
            if any("expression" in o for o in options):
                expressions += [o["expression"] for o in options if "expression" in o]
                continue
            # Shorthands: "." repeats the previous row's item at that place; "..." its leading items.
            if items and items[0] == "...":
                rest = items[1:]
                items = previous[: max(0, len(previous) - len(rest))] + rest
            items = [previous[i] if x == "." and i < len(previous) else x for i, x in enumerate(items)]
            previous = items
            if len(items) >= 2:
                found.append((str(items[0]), str(items[1]), [str(n) for n in items[2::2]]))
    return found, expressions


# --------------------------------------------------------------------------- checks


def check_metrics(template: dict, emitted: dict[str, list[str]], report: Report) -> None:
    resources = template.get("Resources", {})
    named: set[str] = set()
    for rid, res in sorted(resources.items()):
        properties = res.get("Properties", {})
        if res.get("Type") == "AWS::CloudWatch::Dashboard":
            try:
                metrics, expressions = dashboard_metrics(dashboard_body(properties.get("DashboardBody")))
            except (ValueError, json.JSONDecodeError) as error:
                report.check(False, f"{rid}: its body is JSON with the widgets' metrics", str(error))
                continue
        else:
            metrics, expressions = list(template_metrics(properties)), list(template_expressions(properties))
        for expression in expressions:
            if NAMESPACE in expression:
                report.check(False, f"{rid}: expression {expression!r}",
                             f"names {NAMESPACE} metrics in a way this check cannot read (use explicit metrics)")
        for namespace, name, dimensions in sorted({(n, m, tuple(d)) for n, m, d in metrics}):
            if namespace != NAMESPACE:
                continue
            named.add(name)
            label = f"{rid} names {NAMESPACE} {name} [{', '.join(dimensions)}]"
            if name not in emitted:
                report.check(False, label, "the code emits no such metric")
            else:
                report.check(sorted(dimensions) == sorted(emitted[name]), f"{label}, which the code emits",
                             f"the code emits it with dimensions [{', '.join(emitted[name])}]")
    unused = sorted(set(emitted) - named)
    if unused:
        print(f"# emitted, but in no alarm or widget: {', '.join(unused)}")


def check_actions(template: dict, topic: str, report: Report) -> None:
    resources = template.get("Resources", {})
    topics = check_template.of_type(resources, "AWS::SNS::Topic")
    policies = check_template.of_type(resources, "AWS::ApplicationAutoScaling::ScalingPolicy", "AWS::AutoScaling::ScalingPolicy")
    report.check(topic in topics, f"the alarm topic {topic} is an AWS::SNS::Topic of the template")

    def judge(action: Any) -> str | None:
        """None for an action that is fine, else why it is not."""
        ids = check_template.referenced_ids(action)
        if ids & set(policies):
            return None
        if ids & set(topics):
            return None if topic in ids else f"notifies {', '.join(sorted(ids & set(topics)))}, not {topic}"
        if ":sns:" in json.dumps(action):
            return f"notifies a topic outside the template ({json.dumps(action)})"
        return f"unrecognised action {json.dumps(action)}"

    for rid, res in sorted(check_template.of_type(resources, "AWS::CloudWatch::Alarm").items()):
        properties = res.get("Properties", {})
        actions = [a for key in ACTION_KEYS for a in check_template.as_list(properties.get(key) or [])]
        problems = [why for why in map(judge, actions) if why]
        if not actions:
            problems.append("none, so nobody hears of it")
        if any(topic in check_template.referenced_ids(a) for a in actions):
            does = f"notifies {topic}"
        elif any(check_template.referenced_ids(a) & set(policies) for a in actions):
            does = "scales the workers"
        else:
            does = "has an action"
        report.check(not problems, f"{rid} {does}", "; ".join(problems))

    rule_ids = []
    for rid, res in sorted(check_template.of_type(resources, "AWS::Events::Rule").items()):
        targets = res.get("Properties", {}).get("Targets") or []
        sns = [t for t in targets if check_template.referenced_ids(t.get("Arn")) & set(topics) or ":sns:" in json.dumps(t.get("Arn"))]
        if sns:
            rule_ids.append(rid)
            wrong = [json.dumps(t.get("Arn")) for t in sns if topic not in check_template.referenced_ids(t.get("Arn"))]
            report.check(not wrong, f"{rid} sends to {topic}", f"it sends to {', '.join(wrong)}")

    if topic not in topics:
        return
    # The topic policy: CloudWatch and (for the rules above) EventBridge may publish.
    statements = [
        s for p in check_template.of_type(resources, "AWS::SNS::TopicPolicy").values()
        if topic in check_template.referenced_ids(p["Properties"].get("Topics"))
        for s in check_template.as_list(p["Properties"].get("PolicyDocument", {}).get("Statement", []))
        if s.get("Effect") == "Allow" and "sns:Publish" in check_template.as_list(s.get("Action", []))
    ]
    services = {svc for s in statements for svc in check_template.as_list((s.get("Principal") or {}).get("Service", []))}
    needed = {"cloudwatch.amazonaws.com"} | ({"events.amazonaws.com"} if rule_ids else set())
    report.check(needed <= services, f"{topic}'s policy lets {' and '.join(sorted(needed))} publish",
                 f"missing {', '.join(sorted(needed - services))}")
    key = topics[topic].get("Properties", {}).get("KmsMasterKeyId")
    if key is None:
        return
    keys = check_template.referenced_ids(key) & set(check_template.of_type(resources, "AWS::KMS::Key"))
    if not keys:
        report.check(False, f"{topic} is encrypted with a key of the template that CloudWatch may use",
                     f"KmsMasterKeyId {json.dumps(key)}: the AWS managed key's policy cannot let CloudWatch or "
                     "EventBridge use it, so they cannot publish (use a customer managed key)")
        return
    key_id = sorted(keys)[0]
    key_statements = check_template.as_list(resources[key_id]["Properties"].get("KeyPolicy", {}).get("Statement", []))
    allowed = set()
    for s in key_statements:
        actions = set(check_template.as_list(s.get("Action", [])))
        if s.get("Effect") == "Allow" and {"kms:Decrypt"} <= actions and actions & {"kms:GenerateDataKey*", "kms:GenerateDataKey"}:
            allowed |= set(check_template.as_list((s.get("Principal") or {}).get("Service", [])))
    report.check(needed <= allowed, f"{key_id} (the topic's key) lets {' and '.join(sorted(needed))} use it",
                 f"missing {', '.join(sorted(needed - allowed))}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("code", type=Path, help="the JSON `martlet contract` prints")
    parser.add_argument("--template", type=Path, default=Path(__file__).resolve().parents[2] / "template.yaml")
    parser.add_argument("--alarm-topic", default="AlarmTopic", help="logical id of the topic every alarm notifies")
    args = parser.parse_args()
    report = Report()
    code = json.loads(args.code.read_text())
    metrics = code.get("metrics")
    report.check(isinstance(metrics, list) and bool(metrics), "the code's contract lists the metrics it emits",
                 f"{args.code.name} has no `metrics` array")
    template = check_template.load_template(args.template)
    if metrics:
        check_metrics(template, {m["name"]: list(m.get("dimensions", [])) for m in metrics}, report)
    check_actions(template, args.alarm_topic, report)
    print(f"{report.passed} passed, {report.failed} failed")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
