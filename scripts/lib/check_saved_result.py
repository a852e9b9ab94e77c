#!/usr/bin/env python3
"""Checks that a result `martlet client` saved equals the result object in the local S3 (read with boto3).

Usage: python scripts/lib/check_saved_result.py --endpoint URL --saved PATH
The saved file is named `<jobId>-<file>`; the object is `results/<owner>/<jobId>/<file>` in the one bucket.
"""
import argparse
import os
import sys

import boto3


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--saved", required=True)
    args = parser.parse_args()
    s3 = boto3.client("s3", endpoint_url=args.endpoint, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
    name = os.path.basename(args.saved)
    job_id, _, file_name = name.partition("-audio")
    buckets = s3.list_buckets()["Buckets"]
    matches = []
    for bucket in buckets:
        for item in s3.list_objects_v2(Bucket=bucket["Name"], Prefix="results/").get("Contents", []):
            if f"/{job_id}/" in item["Key"]:
                matches.append((bucket["Name"], item["Key"]))
    if len(matches) != 1:
        sys.exit(f"expected one result object for job {job_id}, found {matches}")
    stored = s3.get_object(Bucket=matches[0][0], Key=matches[0][1])["Body"].read()
    with open(args.saved, "rb") as saved:
        if saved.read() != stored:
            sys.exit(f"{args.saved} differs from s3://{matches[0][0]}/{matches[0][1]}")
    print(f"ok: {name} equals s3://{matches[0][0]}/{matches[0][1]} ({len(stored)} bytes)")


if __name__ == "__main__":
    main()
