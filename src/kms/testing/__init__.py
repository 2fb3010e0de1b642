"""Running real parts for tests and benchmarks: a ``kms up`` subprocess and an S3 server process.

Not used by the stack itself. ``S3Server`` needs the test extra (moto's server mode, boto3).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

__all__ = ["wait_http", "free_port", "free_ports", "ChildProcess", "KmsProcess", "S3Server", "anyvalue", "dir_bytes",
           "proc_status_bytes", "proc_cpu_seconds"]  # fmt: skip


def proc_status_bytes(pid: int, field_name: str = "VmHWM") -> int:
    """A memory figure of ``/proc/<pid>/status`` in bytes (VmHWM: peak resident memory)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1]) * 1024
    return 0


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def dir_bytes(path: Path) -> int:
    """Bytes of all files below ``path``."""
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_ports(n: int) -> list[int]:
    """``n`` distinct free ports (all held open while choosing, so none repeats)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def wait_http(url: str, timeout_s: float, proc: subprocess.Popen | None = None, want: int = 200) -> None:
    """Poll ``url`` until it answers ``want``; RuntimeError if ``proc`` exits first, TimeoutError after."""
    deadline = time.monotonic() + timeout_s
    last = None
    # one client for the whole wait: a client per poll loaded the CA bundle every 50 ms (CPU the
    # starting process needs); readiness polls of local test processes verify no certificate
    with httpx.Client(timeout=1.0, verify=False) as client:
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"process exited with {proc.returncode} before {url} answered")
            try:
                r = client.get(url)
                if r.status_code == want:
                    return
                last = r.status_code
            except httpx.HTTPError as e:
                last = e
            time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer {want} within {timeout_s}s (last: {last})")


class ChildProcess:
    """Stopping a test subprocess (``proc``) and reading its output file (``log_path``)."""

    proc: subprocess.Popen | None
    log_path: Path | None

    def stop(self, timeout_s: float = 60.0) -> int:
        """SIGTERM and wait; returns the exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout_s)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path and self.log_path.exists() else ""


@dataclass
class KmsProcess(ChildProcess):
    """``kms up`` in a subprocess on free loopback ports, with its own data dir."""

    data_dir: Path
    extra_args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    cpu: int | None = None  # pin the process to one core (benchmarks)
    port: int = field(default_factory=free_port)
    grpc_port: int = field(default_factory=free_port)
    otlp_http_port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def args(self) -> list[str]:
        return [
            sys.executable, "-m", "kms.cli", "up", "--data-dir", str(self.data_dir), "--host", "127.0.0.1",
            "--port", str(self.port), "--grpc-port", str(self.grpc_port),
            "--otlp-http-port", str(self.otlp_http_port), *self.extra_args,
        ]

    def start(self, timeout_s: float = 60.0, attempts: int = 3) -> KmsProcess:
        """Start and wait for /ready. A port taken by another process between ``free_port`` and
        the bind makes ``kms up`` exit at once: then new ports are picked and it starts again."""
        self.log_path = Path(self.data_dir).with_name(Path(self.data_dir).name + ".log")
        env = {**os.environ, **self.env}
        preexec = (lambda: os.sched_setaffinity(0, {self.cpu})) if self.cpu is not None else None
        for attempt in range(attempts):
            seen = self.log_path.stat().st_size if self.log_path.exists() else 0
            log = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the process
            self.proc = subprocess.Popen(self.args(), stdout=log, stderr=subprocess.STDOUT, env=env,
                                         preexec_fn=preexec)  # fmt: skip
            try:
                wait_http(self.url + "/ready", timeout_s, self.proc)
                return self
            except RuntimeError:
                with open(self.log_path, "rb") as f:
                    f.seek(seen)
                    out = f.read()
                taken = b"address already in use" in out or b"Failed to bind" in out  # HTTP, gRPC
                if not taken or attempt == attempts - 1:
                    raise
                self.port, self.grpc_port, self.otlp_http_port = free_port(), free_port(), free_port()
        return self


    def _status(self, field_name: str) -> int:
        return proc_status_bytes(self.proc.pid, field_name)

    def peak_rss_bytes(self) -> int:
        """The kernel's high-water mark of resident memory (VmHWM) for the process."""
        return self._status("VmHWM")

    def rss_bytes(self) -> int:
        return self._status("VmRSS")


@dataclass
class S3Server:
    """A real S3-compatible server process (moto's server mode) on a free loopback port."""

    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None
    access_key: str = "testing"
    secret_key: str = "testing"
    region: str = "us-east-1"
    _client: object = field(default=None, repr=False)

    @property
    def endpoint(self) -> str:
        """``host:port`` (plain http)."""
        return f"127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 30.0) -> S3Server:
        env = dict(os.environ, AWS_ACCESS_KEY_ID=self.access_key, AWS_SECRET_ACCESS_KEY=self.secret_key)
        self.proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        wait_http(f"http://{self.endpoint}/moto-api/", timeout_s, self.proc)
        return self

    def client(self):
        """A boto3 S3 client for this server."""
        if self._client is None:
            import boto3

            self._client = boto3.client("s3", endpoint_url=f"http://{self.endpoint}", aws_access_key_id=self.access_key,
                                        aws_secret_access_key=self.secret_key, region_name=self.region)
        return self._client

    def create_bucket(self, name: str | None = None) -> str:
        name = name or f"kms-test-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))

    def objstore_kwargs(self) -> dict:
        """Keyword arguments for ``kms.storage.S3ObjectStore(bucket, **kwargs)``."""
        return {"endpoint": self.endpoint, "scheme": "http", "access_key": self.access_key,
                "secret_key": self.secret_key, "region": self.region, "path_style": True}

    def kms_args(self, bucket: str) -> list[str]:
        """``kms up`` flags that put blocks into ``bucket`` on this server."""
        return ["--storage", "s3", "--s3-endpoint", self.endpoint, "--s3-bucket", bucket,
                "--s3-access-key", self.access_key, "--s3-secret-key", self.secret_key,
                "--s3-region", self.region, "--s3-insecure", "true"]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def anyvalue(v):
    """A Python value as an OTLP ``AnyValue`` (list -> array, dict -> kvlist, None -> empty)."""
    from opentelemetry.proto.common.v1 import common_pb2

    av = common_pb2.AnyValue()
    if v is None:
        return av
    if isinstance(v, bool):
        av.bool_value = v
    elif isinstance(v, int):
        av.int_value = v
    elif isinstance(v, float):
        av.double_value = v
    elif isinstance(v, bytes):
        av.bytes_value = v
    elif isinstance(v, list):
        av.array_value.values.extend(anyvalue(x) for x in v)
    elif isinstance(v, dict):
        for k, x in v.items():
            av.kvlist_value.values.add(key=k, value=anyvalue(x))
    else:
        av.string_value = str(v)
    return av
