"""Runs deploy plans and status queries through a :class:`Runner`: the real one calls helm,
kubectl and kms as subprocesses; tests pass a recording double."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from kms.deploy.plan import Step

__all__ = ["Runner", "SubprocessRunner", "Result", "execute", "status"]


@dataclass
class Result:
    code: int
    stdout: str = ""
    stderr: str = ""


class Handle(Protocol):
    def stop(self) -> None: ...


class Runner(Protocol):
    def run(self, argv: list[str]) -> Result: ...

    def start(self, argv: list[str], wait_port: int) -> Handle: ...


class _Proc:
    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def _resolve(argv: list[str]) -> list[str]:
    # `kms` may not be on PATH (a venv): run this interpreter's module instead.
    if argv[0] == "kms" and not shutil.which("kms"):
        return [sys.executable, "-m", "kms.cli", *argv[1:]]
    return argv


class SubprocessRunner:
    def run(self, argv: list[str]) -> Result:
        try:
            p = subprocess.run(_resolve(argv), capture_output=True, text=True)
        except FileNotFoundError:
            return Result(127, "", f"{argv[0]}: command not found (install it or use --dry-run)")
        return Result(p.returncode, p.stdout, p.stderr)

    def start(self, argv: list[str], wait_port: int) -> Handle:
        proc = subprocess.Popen(_resolve(argv), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 15  # kubectl port-forward listens within a few seconds
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", wait_port), timeout=0.5).close()
                return _Proc(proc)
            except OSError:
                time.sleep(0.2)
        _Proc(proc).stop()
        raise RuntimeError(f"port-forward on {wait_port} did not start: {' '.join(argv)}")


def execute(steps: list[Step], runner: Runner, say: Callable[[str], None], *, dry_run: bool = False) -> int:
    """Run ``steps`` in order with progress lines; stop at the first failure (its exit code)."""
    handles: list[Handle] = []
    try:
        for i, step in enumerate(steps, 1):
            say(f"[{i}/{len(steps)}] {step.title}\n    $ {' '.join(step.argv)}")
            if dry_run:
                continue
            if step.background:
                try:
                    handles.append(runner.start(step.argv, step.wait_port))
                except RuntimeError as e:
                    say(f"    failed: {e}")
                    return 1
                continue
            r = runner.run(step.argv)
            if r.code != 0:
                say(f"    failed (exit {r.code}): {(r.stderr or r.stdout).strip()[-2000:]}")
                return r.code
    finally:
        for h in reversed(handles):
            h.stop()
    return 0


def status(releases: list[str], namespace: str, context: str, runner: Runner, say: Callable[[str], None]) -> int:
    """Each release's helm status and every pod's readiness; 1 when something is not deployed or ready."""
    ctx = ["--kube-context", context] if context else []
    r = runner.run(["helm", "list", "--namespace", namespace, "--output", "json", *ctx])
    if r.code != 0:
        say(f"helm list failed: {r.stderr.strip()}")
        return r.code
    found = {x["name"]: x for x in json.loads(r.stdout or "[]")}
    bad = 0
    for name in releases:
        x = found.get(name)
        state = x["status"] if x else "not installed"
        bad += state != "deployed"
        say(f"release {name:32} {state}{'  chart ' + x['chart'] if x else ''}")
    r = runner.run(["kubectl", "get", "pods", "--namespace", namespace, "--output", "json",
                    *(["--context", context] if context else [])])  # fmt: skip
    if r.code != 0:
        say(f"kubectl get pods failed: {r.stderr.strip()}")
        return r.code
    for pod in json.loads(r.stdout or "{}").get("items", []):
        conds = {c["type"]: c["status"] for c in pod.get("status", {}).get("conditions", [])}
        ready = conds.get("Ready") == "True" or pod.get("status", {}).get("phase") == "Succeeded"
        bad += not ready
        say(f"pod     {pod['metadata']['name']:32} {'ready' if ready else 'NOT READY (' + pod.get('status', {}).get('phase', '?') + ')'}")
    return 1 if bad else 0
