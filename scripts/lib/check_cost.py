#!/usr/bin/env python3
"""Holds docs/cost.md to the resource types template.yaml declares, so no cost goes unpriced.

Usage: python scripts/lib/check_cost.py [--template template.yaml] [--doc docs/cost.md]

Every resource type of the template is either in BILLABLE (it can cost money: it must be named in
the cost document, by its type name) or in FREE (no charge of its own). A type in neither fails the
check until someone classifies it here and, if it is billable, prices it in the document.
Prints `ok - …` / `not ok - …: why` per type, then `N passed, M failed`; exit status 1 when any fails.
"""
from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.dont_write_bytecode = True
import check_template  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]

# Types that cost money by themselves, by use, or through what they create (alarms of scaling
# policies and capacity providers, instances of groups, volumes and addresses of launch templates).
BILLABLE = {
    "AWS::Serverless::Function", "AWS::Lambda::Function", "AWS::Lambda::Url",
    "AWS::Serverless::HttpApi", "AWS::Serverless::Api", "AWS::ApiGatewayV2::Api", "AWS::ApiGateway::RestApi",
    "AWS::SQS::Queue", "AWS::DynamoDB::Table", "AWS::Serverless::SimpleTable", "AWS::S3::Bucket",
    "AWS::ECS::Cluster", "AWS::ECS::Service", "AWS::ECS::CapacityProvider",
    "AWS::AutoScaling::AutoScalingGroup", "AWS::EC2::LaunchTemplate", "AWS::EC2::Instance", "AWS::EC2::Volume",
    "AWS::EC2::EIP", "AWS::EC2::NatGateway", "AWS::EC2::VPCEndpoint",
    "AWS::ApplicationAutoScaling::ScalingPolicy", "AWS::AutoScaling::ScalingPolicy",
    "AWS::CloudWatch::Alarm", "AWS::CloudWatch::CompositeAlarm", "AWS::CloudWatch::Dashboard",
    "AWS::Logs::LogGroup", "AWS::Logs::MetricFilter", "AWS::Logs::SubscriptionFilter",
    "AWS::SNS::Topic", "AWS::SNS::Subscription", "AWS::Events::Rule", "AWS::Events::EventBus",
    "AWS::SecretsManager::Secret", "AWS::KMS::Key", "AWS::ECR::Repository",
}
# Types with no charge of their own.
FREE = {
    "AWS::IAM::Role", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IAM::InstanceProfile",
    "AWS::Lambda::Permission", "AWS::ApiGatewayV2::Integration", "AWS::ApiGatewayV2::Route", "AWS::ApiGatewayV2::RouteResponse",
    "AWS::ApiGatewayV2::Stage", "AWS::ApiGatewayV2::Deployment", "AWS::S3::BucketPolicy",
    "AWS::SNS::TopicPolicy", "AWS::SQS::QueuePolicy", "AWS::KMS::Alias", "AWS::EC2::SecurityGroup",
    "AWS::EC2::SecurityGroupIngress", "AWS::EC2::SecurityGroupEgress", "AWS::ECS::TaskDefinition",
    "AWS::ECS::ClusterCapacityProviderAssociations", "AWS::ApplicationAutoScaling::ScalableTarget",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--template", type=Path, default=ROOT / "template.yaml")
    parser.add_argument("--doc", type=Path, default=ROOT / "docs" / "cost.md")
    args = parser.parse_args()
    template = check_template.load_template(args.template)
    doc = args.doc.read_text() if args.doc.exists() else ""
    counts = Counter(res.get("Type", "?") for res in template.get("Resources", {}).values())
    passed = failed = 0

    def report(ok: bool, name: str, why: str) -> None:
        nonlocal passed, failed
        print(f"ok - {name}" if ok else f"not ok - {name}: {why}")
        passed, failed = passed + ok, failed + (not ok)

    report(bool(doc), f"{args.doc.name} exists", "no cost document")
    for rtype, count in sorted(counts.items()):
        name = f"{rtype} ({count} in the template)"
        if rtype in FREE:
            report(True, f"{name} is free", "")
        elif rtype in BILLABLE:
            # The exact type name, not a longer one it begins (AWS::SNS::Topic in AWS::SNS::TopicPolicy).
            named = re.search(rf"(?<![\w:]){re.escape(rtype)}(?![\w:])", doc)
            report(bool(named), f"{name} is priced in {args.doc.name}", f"billable, and {args.doc.name} does not name it")
        else:
            report(False, f"{name} is classified", "neither BILLABLE nor FREE in check_cost.py: classify it (and price it if billable)")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
