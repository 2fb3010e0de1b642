"""``kms demo``: start the auto-instrumented frontend and backend against a running stack, drive
them with the load generator, print where to look, and stop them (flushing their telemetry)."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from kms.config import parse_duration
from kms.demo import ITEMS
from kms.demo.load import LoadSettings, run_load
from kms.errors import KmsError

__all__ = ["register", "service_env", "instrument_command"]

NAMESPACE = "kms-demo"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="run an auto-instrumented frontend -> backend app and a load generator against a running stack",
        description=(
            "Start two real HTTP services, a frontend calling a backend that reads SQLite, both run under "
            "opentelemetry-instrument (zero-code auto-instrumentation, as the OpenTelemetry Operator injects "
            "it): traces, logs with trace context and HTTP metrics with exemplars go to --otlp. The backend "
            "fails now and then and has a slow path. A load generator drives the frontend for --duration; "
            "then the services stop and flush. Needs the demo extra: pip install 'kube-monitoring-stack[demo]'."
        ),
    )
    p.add_argument("--otlp", default="http://127.0.0.1:4318", metavar="ENDPOINT",
                   help="where the services export: http(s)://host:port (OTLP/HTTP) or grpc://host:port "
                        "(default http://127.0.0.1:4318, the local kms up)")
    p.add_argument("--api", default="http://127.0.0.1:3200", metavar="URL",
                   help="the stack's query API, for the hints printed (default http://127.0.0.1:3200)")
    p.add_argument("--tenant", default=None, help="X-Scope-OrgID the services send (default none)")
    p.add_argument("--frontend-port", type=int, default=8080, help="frontend port on 127.0.0.1 (default 8080)")
    p.add_argument("--backend-port", type=int, default=8081, help="backend port on 127.0.0.1 (default 8081)")
    p.add_argument("--concurrency", type=int, default=4, help="load generator workers (default 4)")
    p.add_argument("--rate", type=float, default=5.0, help="requests per second in all (default 5; 0 = unthrottled)")
    p.add_argument("--duration", default="10m", help="how long the load runs (default 10m; 0 = until --requests)")
    p.add_argument("--requests", type=int, default=0, help="stop after this many requests (default 0 = no bound)")
    p.add_argument("--error-rate", type=float, default=0.03, help="share of backend lookups that fail (default 0.03)")
    p.add_argument("--slow-rate", type=float, default=0.05, help="share of backend lookups that are slow (default 0.05)")
    p.add_argument("--log-dir", default=None, help="where the services' output goes (default a temporary folder)")
    p.set_defaults(run=_run)


def instrument_command() -> list[str]:
    """The ``opentelemetry-instrument`` launcher next to this Python, or on PATH."""
    here = Path(sys.executable).parent / "opentelemetry-instrument"
    found = str(here) if here.exists() else shutil.which("opentelemetry-instrument")
    if not found:
        raise KmsError("opentelemetry-instrument not found: pip install 'kube-monitoring-stack[demo]'")
    return [found]


def service_env(service: str, otlp: str, tenant: str | None) -> dict[str, str]:
    """The standard OTEL_* settings an operator-injected workload would get."""
    grpc = otlp.startswith("grpc://")
    env = {
        "OTEL_SERVICE_NAME": service,
        "OTEL_RESOURCE_ATTRIBUTES": f"service.namespace={NAMESPACE},service.version=1.0.0,deployment.environment=demo",
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp.replace("grpc://", "http://") if grpc else otlp,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc" if grpc else "http/protobuf",
        "OTEL_TRACES_EXPORTER": "otlp", "OTEL_METRICS_EXPORTER": "otlp", "OTEL_LOGS_EXPORTER": "otlp",
        "OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED": "true",
        "OTEL_SEMCONV_STABILITY_OPT_IN": "http",  # http.server.request.duration in seconds
        "OTEL_METRICS_EXEMPLAR_FILTER": "trace_based",
        "OTEL_METRIC_EXPORT_INTERVAL": "5000", "OTEL_BSP_SCHEDULE_DELAY": "1000", "OTEL_BLRP_SCHEDULE_DELAY": "1000",
    }
    if tenant:
        env["OTEL_EXPORTER_OTLP_HEADERS"] = f"X-Scope-OrgID={urllib.parse.quote(tenant)}"
    return env


def _check_listening(otlp: str) -> None:
    u = urllib.parse.urlsplit(otlp.replace("grpc://", "http://"))
    try:
        socket.create_connection((u.hostname or "127.0.0.1", u.port or 4318), timeout=3).close()
    except OSError:
        raise KmsError(f"nothing listens at {otlp}: start `kms up` first (or point --otlp at a collector)") from None


def _wait_healthy(url: str, proc: subprocess.Popen, log: Path, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise KmsError(f"{url} exited with {proc.returncode}; its output is in {log}:\n"
                           + log.read_text(errors="replace")[-2000:])
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=1):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    raise KmsError(f"{url} did not answer within {timeout_s:g}s; see {log}")


_LOOK_AT = [  # (what, API path, query parameter, query)
    ("error traces", "/api/search", "q", '{ resource.service.name = "backend" && status = error }'),
    ("slow traces", "/api/search", "q", '{ resource.service.name = "frontend" && duration > 300ms }'),
    ("error logs", "/loki/api/v1/query_range", "query", '{service_name="backend"} |= "failed"'),
    ("exemplars", "/prometheus/api/v1/query_exemplars", "query",
     'http_server_request_duration_seconds_bucket{job="kms-demo/frontend"}'),
    ("RED metrics", "/prometheus/api/v1/query", "query",
     "sum by (service, status_code) (rate(traces_spanmetrics_calls_total[1m]))"),
    ("service graph", "/prometheus/api/v1/query", "query", "traces_service_graph_request_total"),
]


def _hints(api: str, frontend: str) -> str:
    lines = [f"  {'the app':<14}{frontend}/checkout?item=apple&qty=2"]
    lines += [f"  {what:<14}{api}{path}?{urllib.parse.urlencode({param: query})}"
              for what, path, param, query in _LOOK_AT]
    lines += [f"  {'Grafana':<14}kms grafana -o grafana, start Grafana with that provisioning, open kms / "
              "Application RED", f"  {'every link':<14}kms verify"]
    return "\n".join(lines)


def _run(args: argparse.Namespace) -> int:
    launcher = instrument_command()
    _check_listening(args.otlp)
    log_dir = Path(args.log_dir or tempfile.mkdtemp(prefix="kms-demo-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    backend = f"http://127.0.0.1:{args.backend_port}"
    frontend = f"http://127.0.0.1:{args.frontend_port}"
    specs = [
        ("backend", backend, ["backend", "--port", str(args.backend_port), "--error-rate", str(args.error_rate),
                              "--slow-rate", str(args.slow_rate)]),
        ("frontend", frontend, ["frontend", "--port", str(args.frontend_port), "--backend", backend]),
    ]
    procs: list[subprocess.Popen] = []
    try:
        for name, url, service_args in specs:
            log = log_dir / f"{name}.log"
            with open(log, "ab") as out:
                proc = subprocess.Popen([*launcher, sys.executable, "-m", "kms.demo.services", *service_args],
                                        stdout=out, stderr=subprocess.STDOUT,
                                        env={**os.environ, **service_env(name, args.otlp, args.tenant)})
            procs.append(proc)
            _wait_healthy(url, proc, log)
        duration_s = parse_duration(args.duration)
        print(f"kms demo: frontend {frontend} -> backend {backend} -> sqlite, auto-instrumented, exporting to "
              f"{args.otlp}{' as tenant ' + args.tenant if args.tenant else ''} (output in {log_dir})")
        print(f"load: {args.concurrency} workers, {args.rate:g} requests/s"
              + (f" for {args.duration}" if duration_s else "") + (f", at most {args.requests}" if args.requests else "")
              + "; Ctrl-C stops\nLook at:\n" + _hints(args.api.rstrip("/"), frontend), flush=True)
        stop = threading.Event()
        settings = LoadSettings(frontend, [f"/checkout?item={item}&qty={q}" for item in ITEMS for q in (1, 2, 3)],
                                args.concurrency, args.rate, duration_s, args.requests)
        try:
            stats = run_load(settings, stop)
        except KeyboardInterrupt:
            stop.set()
            raise
        print("load: " + stats.summary(), flush=True)
    except KeyboardInterrupt:
        print("\nstopping", file=sys.stderr)
    finally:
        _stop(procs)
    return 0


def _stop(procs: list[subprocess.Popen]) -> None:
    # SIGINT, not SIGTERM: the services exit normally, so the SDKs flush what they still hold.
    for proc in reversed(procs):
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
    for proc in reversed(procs):
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
