#!/usr/bin/env python3
"""An example model for Martlet's CommandModel: captions a job's input file and parameters.

The worker starts this script once per job, in the job's work folder, with the job on stdin:

    {"jobId": "...", "model": "...", "parameters": {...}, "inputPath": "/path/or/null", "outputDir": "/work/folder"}

It reports on stdout, one line each (flush after every line):

    PROGRESS <0-100> <message>        (or {"progress": 42, "message": "..."})
    RESULT <path> [content-type]      (or {"result": "path", "contentType": "...", "summary": "..."})

Anything else on stdout or stderr is log. Exit non-zero to fail the attempt (the worker may retry it).
On cancellation or timeout the worker sends SIGTERM to the process group, then SIGKILL after 5 seconds.

Parameters understood here: "prompt" (string, optional), "steps" (1-100, default 5),
"stepMilliseconds" (0-10000, default 0), "fail" (string: print it to stderr and exit 1).
Plain Python 3, no third-party imports.
"""

import hashlib
import json
import os
import signal
import sys
import time

# A PyTorch model would be loaded here, once, before reading the job, e.g.:
#
#     import torch
#     device = "cuda" if torch.cuda.is_available() else "cpu"
#     model = torch.load("/models/captioner.pt", map_location=device).eval()
#
# and run in `caption()` below under `with torch.inference_mode():`, calling `progress()` between
# denoising steps or batches. A long-lived worker process (one per GPU) avoids reloading weights per job.


def progress(percent, message):
    print(f"PROGRESS {percent} {message}", flush=True)


def log(message):
    print(message, file=sys.stderr, flush=True)


def on_sigterm(signum, frame):
    log("cancelled: stopping")
    sys.exit(128 + signum)


def describe_input(path):
    """A few facts about the input file: size, digest, and a peek at its content."""
    if not path:
        return None
    with open(path, "rb") as file:
        data = file.read()
    facts = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    try:
        text = data.decode("utf-8")
        facts["kind"] = "text"
        facts["lines"] = text.count("\n") + (1 if text and not text.endswith("\n") else 0)
        facts["words"] = len(text.split())
        facts["preview"] = text[:80]
    except UnicodeDecodeError:
        facts["kind"] = "binary"
        facts["magic"] = data[:8].hex()
    return facts


def caption(job, steps, pause):
    parameters = job.get("parameters") or {}
    prompt = str(parameters.get("prompt", ""))
    words = prompt.split()
    # Stand-in for inference: a little deterministic work per step.
    digest = hashlib.sha256(prompt.encode()).digest()
    for step in range(1, steps + 1):
        for _ in range(2000):
            digest = hashlib.sha256(digest).digest()
        if pause:
            time.sleep(pause)
        progress(int(step * 90 / steps), f"step {step}/{steps}")
    description = describe_input(job.get("inputPath"))
    if description and description["kind"] == "text":
        text = f"a text of {description['lines']} lines and {description['words']} words"
    elif description:
        text = f"a binary file of {description['bytes']} bytes"
    else:
        text = f"a prompt of {len(words)} words" if words else "nothing in particular"
    return {
        "jobId": job.get("jobId"),
        "caption": text,
        "prompt": prompt,
        "input": description,
        "fingerprint": digest.hex()[:16],
    }


def main():
    signal.signal(signal.SIGTERM, on_sigterm)
    job = json.load(sys.stdin)
    parameters = job.get("parameters") or {}
    log(f"job {job.get('jobId')} for model {job.get('model')}")

    if parameters.get("fail"):
        log(str(parameters["fail"]))
        return 1

    steps = parameters.get("steps", 5)
    if not isinstance(steps, (int, float)) or not 1 <= steps <= 100:
        log("steps must be a number from 1 to 100")
        return 2
    pause = parameters.get("stepMilliseconds", 0) / 1000

    progress(0, "starting")
    result = caption(job, int(steps), pause)
    output_dir = job.get("outputDir") or "."
    path = os.path.join(output_dir, "caption.json")
    with open(path, "w") as file:
        json.dump(result, file, indent=2)
    progress(100, "done")
    # Or, with a summary: print(json.dumps({"result": "caption.json", "summary": result["caption"]}))
    print("RESULT caption.json application/json", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
