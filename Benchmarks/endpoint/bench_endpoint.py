"""Round trips per second through boto3 (keep-alive) against two AWS-compatible endpoints.

Usage: bench_endpoint.py --ours URL --moto URL [--floor URL] [--seconds S]
SQS: send + receive + delete of one message per round trip. DynamoDB: put + get of one item.
Prints a table and the ratios ours / moto, and two bounds on any ratio measured through boto3:
boto3 against a server that does no work (--floor: Benchmarks/endpoint/floor_server.c, fixed
answers over keep-alive HTTP/1.1), and boto3 with no server at all (botocore's Stubber answers in
process, so no signing or HTTP either). Server time per round trip = measured time - the floor's.
"""
import argparse
import time
import uuid

import boto3
from botocore.config import Config


def clients(url):
    session = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1")
    config = Config(retries={"max_attempts": 1}, max_pool_connections=1, tcp_keepalive=True)
    return session.client("sqs", endpoint_url=url, config=config), session.client("dynamodb", endpoint_url=url, config=config)


def rate(seconds, step):
    for _ in range(20):
        step()
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        step()
        count += 1
    return count / (time.perf_counter() - start)


def stubbed_rates(seconds):
    """Round trips per second of boto3 alone: requests serialized and answers parsed, no network."""
    from botocore.stub import Stubber
    sqs, dynamodb = clients("http://127.0.0.1:9")
    queue = "http://127.0.0.1:9/000000000000/q"
    sqs_stub, ddb_stub = Stubber(sqs), Stubber(dynamodb)
    sqs_stub.activate()
    ddb_stub.activate()

    def sqs_step():
        sqs_stub.add_response("send_message", {"MessageId": "m", "MD5OfMessageBody": "d1f8e3b1c0f1d1c94dfb4ff0c1c79d6c"})
        sqs_stub.add_response("receive_message", {"Messages": [{"MessageId": "m", "ReceiptHandle": "r", "Body": "b", "MD5OfBody": "92eb5ffee6ae2fec3ad71c777531578f"}]})
        sqs_stub.add_response("delete_message", {})
        sqs.send_message(QueueUrl=queue, MessageBody='{"jobId":"1","input":"s3://bucket/key"}')
        message = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=1, WaitTimeSeconds=1)["Messages"][0]
        sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])

    def ddb_step():
        ddb_stub.add_response("put_item", {})
        ddb_stub.add_response("get_item", {"Item": {"pk": {"S": "job#1"}, "status": {"S": "QUEUED"}, "progress": {"N": "0"}}})
        key = {"pk": {"S": "job#1"}}
        dynamodb.put_item(TableName="t", Item={**key, "status": {"S": "QUEUED"}, "progress": {"N": "0"}})
        dynamodb.get_item(TableName="t", Key=key)

    return rate(seconds, sqs_step), rate(seconds, ddb_step)


def sqs_rate(url, seconds):
    sqs, _ = clients(url)
    queue = sqs.create_queue(QueueName="bench-" + uuid.uuid4().hex[:8])["QueueUrl"]

    def step():
        sqs.send_message(QueueUrl=queue, MessageBody='{"jobId":"1","input":"s3://bucket/key"}')
        message = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=1, WaitTimeSeconds=1)["Messages"][0]
        sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])

    return rate(seconds, step)


def dynamodb_rate(url, seconds):
    _, dynamodb = clients(url)
    table = "bench-" + uuid.uuid4().hex[:8]
    dynamodb.create_table(TableName=table, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                          AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
    counter = [0]

    def step():
        counter[0] += 1
        key = {"pk": {"S": f"job#{counter[0]}"}}
        dynamodb.put_item(TableName=table, Item={**key, "status": {"S": "QUEUED"}, "progress": {"N": "0"}})
        dynamodb.get_item(TableName=table, Key=key)

    return rate(seconds, step)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--ours", required=True)
    parser.add_argument("--moto", required=True)
    parser.add_argument("--floor", help="a server that does no work (floor_server.c)")
    parser.add_argument("--seconds", type=float, default=5)
    args = parser.parse_args()
    rows = []
    for name, measure in (("SQS send+receive+delete", sqs_rate), ("DynamoDB put+get", dynamodb_rate)):
        ours, moto = measure(args.ours, args.seconds), measure(args.moto, args.seconds)
        floor = measure(args.floor, args.seconds) if args.floor else float("nan")
        rows.append((name, ours, moto, floor))
    stubbed = stubbed_rates(args.seconds)
    print(f"{'round trip (boto3, keep-alive)':34} {'martlet/s':>10} {'moto/s':>10} {'ratio':>7} {'no-work server/s':>17} {'best ratio':>11} {'boto3 alone/s':>14}")
    for (name, ours, moto, floor), alone in zip(rows, stubbed):
        print(f"{name:34} {ours:10.0f} {moto:10.0f} {ours / moto:6.1f}x {floor:17.0f} {floor / moto:10.1f}x {alone:14.0f}")
    print("(best ratio: what a server that takes no time at all would score against moto through boto3)")
    if args.floor:
        print("server time per round trip (measured time minus the no-work server's):")
        for name, ours, moto, floor in rows:
            ours_server, moto_server = 1e6 / ours - 1e6 / floor, 1e6 / moto - 1e6 / floor
            print(f"  {name:32} martlet {ours_server:7.0f} µs, moto {moto_server:7.0f} µs: {moto_server / max(ours_server, 1):5.1f}x")


if __name__ == "__main__":
    main()
