#!/usr/bin/env python3
"""Holds template.yaml to what the application's code declares, so the two cannot drift.

Usage: python scripts/lib/check_contract.py CODE.json [--template template.yaml]

CODE.json is what `martlet contract` prints (ApplicationContract in Functions/Handlers): the
handlers and the WebSocket and HTTP routes each serves, the environment each reads, the tables
(partition key, TTL attribute), the queue (with a dead-letter queue), the bucket (prefixes with
lifecycle rules) and the worker's environment. The template's side comes from check_template.py.
Checks, each printed `ok - …` / `not ok - …`; exit status 1 when any fails:
  * every function's Handler is one the code registers, and every route handler is used;
  * every WebSocket and HTTP route of the template goes to a function whose handler serves it,
    and every route the code serves is in the template;
  * a handler that answers as the route response has two-way routes (a `$default` route response);
  * every function gives its handler the variables it reads;
  * the template has the tables (keys, TTL), the queue with a dead-letter queue, and the bucket the code uses;
  * the worker's task definition gives it the variables the worker reads.
"""
import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.dont_write_bytecode = True
import check_template  # noqa: E402

failures = 0


def check(ok: bool, text: str) -> None:
    global failures
    print(("ok - " if ok else "not ok - ") + text)
    failures += 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("code")
    parser.add_argument("--template", default=str(Path(__file__).resolve().parents[2] / "template.yaml"))
    args = parser.parse_args()
    code = json.loads(Path(args.code).read_text())
    template = check_template.contract(check_template.load_template(Path(args.template)))

    handlers = code["handlers"]
    functions = template["functions"]
    handler_of = {fid: f["handler"] for fid, f in functions.items()}
    for fid, handler in sorted(handler_of.items()):
        check(handler in handlers, f"{fid}: handler {handler!r} is registered by the code")
    for name in sorted(handlers):
        check(name in handler_of.values(), f"handler {name!r} is used by a function of the template")

    for kind, template_routes in (("webSocketRoutes", template["websocketRoutes"]), ("httpRoutes", template["httpRoutes"])):
        served = {route: name for name, h in handlers.items() for route in (h.get(kind) or [])}
        for route, fid in sorted(template_routes.items()):
            handler = handler_of.get(fid)
            check(route in (handlers.get(handler, {}).get(kind) or []),
                  f"{kind} {route!r} goes to {fid}, whose handler {handler!r} serves it")
        for route, name in sorted(served.items()):
            check(route in template_routes, f"{kind} {route!r} (served by {name!r}) is routed by the template")
    for name, handler in sorted(handlers.items()):
        if handler.get("answersOnRoute"):
            for route in handler.get("webSocketRoutes") or []:
                check(route in template["websocketTwoWayRoutes"],
                      f"webSocketRoutes {route!r}: {name!r} answers as the route response, and the route is two-way ($default route response)")

    for fid, function in sorted(functions.items()):
        handler = handlers.get(function["handler"])
        if handler is None:
            continue
        given = set(function["environment"])
        missing = sorted(set(handler["environment"]) - given)
        check(not missing, f"{fid} gives {function['handler']!r} the variables it reads" + (f"; missing {missing}" if missing else ""))
        if handler.get("environmentOneOf"):
            check(bool(given & set(handler["environmentOneOf"])), f"{fid} gives one of {handler['environmentOneOf']}")

    tables = template["tables"]
    for name, table in sorted(code["tables"].items()):
        found = [tid for tid, t in tables.items()
                 if t.get("partitionKey", {}).get("name") == table["partitionKey"] and t.get("ttl") == table["ttl"]]
        check(bool(found), f"table {name!r} (key {table['partitionKey']}, TTL {table['ttl']}) exists: {found}")
    queues = template["queues"]
    check(any(q.get("deadLetterQueue") for q in queues.values()), f"the jobs queue has a dead-letter queue: {sorted(queues)}")
    buckets = template["buckets"]
    for name, bucket in sorted(code["buckets"].items()):
        found = [bid for bid, b in buckets.items() if set(bucket["prefixes"]) <= set(b.get("expiringPrefixes", []))]
        check(bool(found), f"bucket {name!r} with lifecycle rules for {bucket['prefixes']} exists: {found}")
    workers = template.get("workers", {})
    needed = set(code["worker"]["environment"])
    for wid, worker in sorted(workers.items()):
        missing = sorted(needed - set(worker["environment"]))
        check(not missing, f"{wid} gives the worker the variables it reads" + (f"; missing {missing}" if missing else ""))
    check(bool(workers), "the template defines the worker's task")
    print(f"# contract: {failures} not ok")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
