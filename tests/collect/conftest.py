"""Real HTTP(S) exporters on 127.0.0.1 for scrape tests, and a recording sink."""

from __future__ import annotations

import ssl
import subprocess
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from kms.metrics.samples import SampleBatch


class _Handler(BaseHTTPRequestHandler):
    timeout = 5  # seconds a connection may idle (or stall in its TLS handshake)

    def log_message(self, *args) -> None:  # keep the test output quiet
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        ex: Exporter = self.server.exporter  # type: ignore[attr-defined]
        ex.requests.append(dict(self.headers.items()) | {"path": self.path})
        if ex.delay_s:
            time.sleep(ex.delay_s)
        if ex.authorization and self.headers.get("Authorization") != ex.authorization:
            self.send_response(401)
            self.end_headers()
            return
        body = ex.body.encode()
        self.send_response(200)
        self.send_header("Content-Type", ex.content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@dataclass
class Exporter:
    """A metrics endpoint whose body, content type, required Authorization and delay tests set."""

    body: str = "test_metric 1\n"
    content_type: str = "text/plain; version=0.0.4; charset=utf-8"
    authorization: str = ""
    delay_s: float = 0.0
    tls: ssl.SSLContext | None = None
    requests: list[dict] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    def start(self) -> Exporter:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.server.exporter = self  # type: ignore[attr-defined]
        if self.tls is not None:
            # the handshake happens in each connection's own thread (on its first read), so a client
            # that never finishes one cannot hold up the accept loop for the others
            self.server.socket = self.tls.wrap_socket(self.server.socket, server_side=True,
                                                      do_handshake_on_connect=False)
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture
def exporters():
    made: list[Exporter] = []

    def make(**kw) -> Exporter:
        ex = Exporter(**kw).start()
        made.append(ex)
        return ex

    yield make
    for ex in made:
        ex.stop()


class Sink:
    """Records every stored batch (the receiver's contract: take a batch or raise)."""

    def __init__(self) -> None:
        self.batches: list[SampleBatch] = []
        self.lock = threading.Lock()

    def __call__(self, batch: SampleBatch) -> None:
        batch.check()
        with self.lock:
            self.batches.append(batch)

    def samples(self, name: str) -> list[tuple[dict, int, float]]:
        """(labels without __name__, ts, value) of every stored sample of ``name``."""
        out = []
        with self.lock:
            batches = list(self.batches)
        for b in batches:
            for ls, pts in b.by_series().items():
                d = dict(ls)
                if d.pop("__name__") == name:
                    out += [(d, t, v) for t, v in pts]
        return out

    def wait(self, cond, timeout_s: float = 10.0):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            got = cond()
            if got:
                return got
            time.sleep(0.05)
        raise AssertionError("condition not met in time")


@pytest.fixture
def sink() -> Sink:
    return Sink()


@dataclass
class Certs:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="session")
def certs(tmp_path_factory) -> Certs:
    """A CA, a server certificate for the name ``exporter.test`` only, and a client certificate."""
    d = tmp_path_factory.mktemp("certs")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=kms test CA", cwd=d)
    for name, cn in (("server", "exporter.test"), ("client", "scraper")):
        _openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={cn}", cwd=d)
        (d / f"{name}.ext").write_text(f"subjectAltName=DNS:{cn}\n" if name == "server" else "extendedKeyUsage=clientAuth\n")
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                 "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext", cwd=d)
    return Certs(d / "ca.pem", d / "server.pem", d / "server.key", d / "client.pem", d / "client.key")


@pytest.fixture
def kube_api():
    """A Kubernetes API server double (no cluster runs here) and a kubeconfig file for it."""
    from kms.testing.kube_api import FakeKubeApi

    server = FakeKubeApi().start()
    yield server
    server.stop()


@pytest.fixture
def kubeconfig(kube_api, tmp_path) -> str:
    return str(kube_api.kubeconfig(tmp_path / "kubeconfig", namespace="shop"))
