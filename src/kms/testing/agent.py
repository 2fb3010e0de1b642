"""``kms agent`` in a subprocess on free loopback ports, for tests and benchmarks."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from kms.testing import ChildProcess, free_port, wait_http

__all__ = ["AgentProcess"]


@dataclass
class AgentProcess(ChildProcess):
    data_dir: Path
    remote: str
    extra_args: list[str] = field(default_factory=list)
    grpc_port: int = field(default_factory=free_port)
    otlp_http_port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.otlp_http_port}"

    def args(self) -> list[str]:
        remote = ["--remote", self.remote] if self.remote else []  # none: --config names the exporters
        return [sys.executable, "-m", "kms.cli", "agent", *remote, "--data-dir", str(self.data_dir),
                "--host", "127.0.0.1", "--grpc-port", str(self.grpc_port),
                "--otlp-http-port", str(self.otlp_http_port), *self.extra_args]

    def start(self, timeout_s: float = 30.0) -> AgentProcess:
        self.log_path = Path(str(self.data_dir) + ".log")
        log = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the process
        self.proc = subprocess.Popen(self.args(), stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ))
        wait_http(self.url + "/ready", timeout_s, self.proc)
        return self

    def metric(self, name: str) -> float:
        """A value of the agent's own /metrics (summed over labels)."""
        total = 0.0
        for line in httpx.get(self.url + "/metrics", timeout=5).text.splitlines():
            if line.startswith(name) and line[len(name):len(name) + 1] in (" ", "{"):
                total += float(line.rsplit(" ", 1)[1])
        return total
