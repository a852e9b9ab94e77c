#!/usr/bin/env python3
"""Compares two `endpoint_suite.py --json` outputs (e.g. ours and moto): the differential check.

Usage: python scripts/lib/endpoint_diff.py A.json B.json

Prints, per check present in both runs, nothing when the observed results agree, else the paths
where they differ. A differing check listed in KNOWN_MOTO_DEVIATIONS is printed as
"known deviation" (with the reason) and does not fail the comparison. Checks present in only one
run (e.g. "ours only" authentication checks) are listed, not failed. Exits 1 when a check present
in both runs differs and is not a known deviation, 2 on bad input, else 0.
"""
import json
import sys

# Checks where moto (5.2.x, server mode) does not do what AWS documents. endpoint_suite.py reports
# them as "# TODO known moto deviation" when run with --name moto, and this script reports a
# difference in them as "known deviation" rather than a failure. name -> reason (with the source
# of AWS's behaviour).
KNOWN_MOTO_DEVIATIONS = {
    "sqs invalid characters in the body -> InvalidMessageContents":
        "moto accepts any body (moto/sqs has no character validation); AWS allows only #x9 #xA #xD "
        "#x20-#xD7FF #xE000-#xFFFD #x10000-#x10FFFF and rejects others with InvalidMessageContents "
        "(SQS API reference SendMessage; botocore sqs model docs; aws.md 4.3)",
    "sqs unknown operation (X-Amz-Target AmazonSQS.NoSuchOp) -> UnknownOperationException/InvalidAction":
        "moto answers HTTP 500 with an HTML page; AWS answers 400 with a JSON error "
        "(JSON-protocol UnknownOperationException; SQS API reference Common Errors: InvalidAction, 400)",
    "sqs malformed JSON body -> SerializationException":
        "moto ignores an unparseable body and runs the operation (HTTP 200); AWS JSON-protocol services "
        "reject it with 400 SerializationException",
    "ddb GetItem ProjectionExpression with #name.#name and #name[index] paths":
        "moto does not see #l used in `#l[1]` and answers ValidationException \"Value provided in "
        "ExpressionAttributeNames unused in expressions\"; AWS accepts document paths built from "
        "expression attribute names with list indexes (DynamoDB Developer Guide: Referring to item "
        "attributes / Document paths, Expression attribute names)",
    "ddb TTL expiry: an item whose ttl is in the past disappears (polled up to 10 s)":
        "moto never deletes expired items; AWS deletes them in the background, \"typically within two "
        "days\" / \"within a few days\" (DynamoDB API reference UpdateTimeToLive; Developer Guide TTL; "
        "aws.md 6), so this check pins our emulator's quick sweep, not a guarantee AWS gives",
    "ddb TransactWriteItems: the same ClientRequestToken twice applies the transaction once":
        "moto ignores ClientRequestToken and applies the transaction again; AWS makes a call with a "
        "token it saw in the last 10 minutes succeed without applying it twice (DynamoDB API reference "
        "TransactWriteItems, ClientRequestToken; botocore fills the token in for every call)",
}


ABSENT = object()   # a key one side does not have


def differences(a, b, path="$"):
    """Yields (path, a, b) for every place where two JSON values differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            sub = f"{path}.{key}"
            if key not in a:
                yield sub, ABSENT, b[key]
            elif key not in b:
                yield sub, a[key], ABSENT
            else:
                yield from differences(a[key], b[key], sub)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for index, (x, y) in enumerate(zip(a, b)):
            yield from differences(x, y, f"{path}[{index}]")
    elif a != b:
        yield path, a, b


def short(value, limit=160):
    text = "<absent>" if value is ABSENT else json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def main(argv):
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    runs = []
    for path in argv[1:]:
        try:
            with open(path) as f:
                runs.append(json.load(f))
        except (OSError, ValueError) as e:
            print(f"endpoint_diff: cannot read {path}: {e}", file=sys.stderr)
            return 2
    a, b = runs
    label_a = a.get("_meta", {}).get("name", argv[1])
    label_b = b.get("_meta", {}).get("name", argv[2])
    if label_a == label_b:
        label_a, label_b = argv[1], argv[2]
    names_a = {k for k in a if not k.startswith("_")}
    names_b = {k for k in b if not k.startswith("_")}
    same = differing = known = 0
    for name in sorted(names_a & names_b):
        diffs = list(differences(a[name], b[name]))
        if not diffs:
            same += 1
            continue
        if name in KNOWN_MOTO_DEVIATIONS:
            known += 1
            print(f"known deviation - {name}: {KNOWN_MOTO_DEVIATIONS[name]}")
        else:
            differing += 1
            print(f"differs - {name}")
        for path, x, y in diffs:
            print(f"    {path}: {label_a}={short(x)} {label_b}={short(y)}")
    for name in sorted(names_a - names_b):
        print(f"only in {label_a} - {name}")
    for name in sorted(names_b - names_a):
        print(f"only in {label_b} - {name}")
    print(f"{same} agree, {differing} differ, {known} known deviations, "
          f"{len(names_a ^ names_b)} in one run only")
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
