"""``kms verify`` against a real ``kms up`` (and ``kms demo``): every link holds on a correct stack,
and each link broken on purpose is named in the table and fails the exit code."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import pytest
from otlp_proxy import DamagingRelay

from kms.testing import KmsProcess, free_port

pytestmark = pytest.mark.slow

ALL_LINKS = ["otlp export", "trace by id", "traceql search", "log -> trace", "trace -> logs",
             "exemplar -> trace", "span metrics", "service graph"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    proc = KmsProcess(tmp_path_factory.mktemp("verify") / "data",
                      ["--generator-collection-interval", "1s"]).start()
    yield proc
    proc.kill()


def verify(kms: KmsProcess, *extra: str, otlp: str | None = None, timeout: str = "20s") -> tuple[int, dict, str]:
    args = [sys.executable, "-m", "kms.cli", "verify", "--prometheus", f"{kms.url}/prometheus", "--loki", kms.url,
            "--tempo", kms.url, "--otlp", otlp or f"http://127.0.0.1:{kms.otlp_http_port}", "--timeout", timeout,
            *extra]
    js = subprocess.run([*args, "--json"], capture_output=True, text=True, timeout=120)
    out = json.loads(js.stdout)
    return js.returncode, {r["link"]: r for r in out["results"]}, out["trace_id"]


def test_every_link_holds_on_kms_up_and_the_table_says_so(stack):
    r = subprocess.run([sys.executable, "-m", "kms.cli", "verify", "--prometheus", f"{stack.url}/prometheus",
                        "--loki", stack.url, "--tempo", stack.url, "--otlp", f"grpc://{stack.grpc_target}",
                        "--timeout", "20s"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    rows = {line.split("  ")[0].strip(): line for line in r.stdout.splitlines()[2:] if line[:1].strip()}
    for link in ALL_LINKS:
        assert " pass " in rows[link], rows.get(link)
    assert r.stdout.splitlines()[-1] == "8/8 links hold"


def test_a_second_run_needs_new_data_not_old_series(stack):
    """Span metrics and the edge already exist from earlier runs: the link holds only if they rise."""
    code, first, _ = verify(stack)
    code2, second, tid = verify(stack)
    assert code == code2 == 0, (first, second)
    assert "rose to" in second["span metrics"]["detail"]
    assert float(second["service graph"]["detail"].rsplit(" ", 1)[1]) >= 2


def test_logs_without_trace_context_break_both_log_links(stack):
    with DamagingRelay(f"http://127.0.0.1:{stack.otlp_http_port}", "logs-without-trace-context") as relay:
        code, res, _ = verify(stack, otlp=relay.url, timeout="3s")
    assert code == 1
    broken = {link for link, r in res.items() if not r["ok"]}
    assert broken == {"log -> trace", "trace -> logs"}
    assert "2 log line(s) arrived, 0 with trace_id" in res["log -> trace"]["detail"]
    assert "structured metadata" in res["log -> trace"]["hint"]


def test_metrics_without_exemplars_break_the_exemplar_link(stack):
    with DamagingRelay(f"http://127.0.0.1:{stack.otlp_http_port}", "metrics-without-exemplars") as relay:
        code, res, _ = verify(stack, otlp=relay.url, timeout="3s")
    assert code == 1
    assert {link for link, r in res.items() if not r["ok"]} == {"exemplar -> trace"}
    assert res["exemplar -> trace"]["detail"].startswith("the metric arrived without an exemplar")
    assert "exemplar storage" in res["exemplar -> trace"]["hint"]


def test_nothing_listening_fails_the_export_and_checks_nothing(stack):
    code, res, _ = verify(stack, otlp=f"http://127.0.0.1:{free_port()}", timeout="2s")
    assert code == 1
    assert not res["otlp export"]["ok"]
    assert all(not r["ok"] and r["detail"].startswith("not checked") for link, r in res.items() if link != "otlp export")


@pytest.fixture(scope="module")
def stack_without_generator(tmp_path_factory):
    proc = KmsProcess(tmp_path_factory.mktemp("verify-nogen") / "data",
                      ["--generator-enabled", "false", "--multitenancy", "true"]).start()
    yield proc
    proc.kill()


def test_generator_disabled_breaks_span_metrics_and_service_graph(stack_without_generator):
    code, res, _ = verify(stack_without_generator, "--tenant", "team-a", timeout="3s")
    assert code == 1
    assert {link for link, r in res.items() if not r["ok"]} == {"span metrics", "service graph"}
    assert "metrics generator" in res["span metrics"]["hint"]


def test_missing_tenant_is_refused_at_export(stack_without_generator):
    code, res, _ = verify(stack_without_generator, timeout="2s")
    assert code == 1
    assert not res["otlp export"]["ok"] and "401" in res["otlp export"]["detail"]


def test_verify_passes_against_kms_demo_and_the_demo_links_its_own_signals(stack, tmp_path):
    """kms demo's auto-instrumented services: traces across frontend -> backend -> sqlite, log lines
    with their trace ids, HTTP latency exemplars pointing at stored traces; then kms verify passes."""
    demo = subprocess.Popen(
        [sys.executable, "-m", "kms.cli", "demo", "--otlp", f"http://127.0.0.1:{stack.otlp_http_port}",
         "--api", stack.url, "--frontend-port", str(free_port()), "--backend-port", str(free_port()),
         "--duration", "6s", "--rate", "20", "--concurrency", "4", "--error-rate", "0.1",
         "--log-dir", str(tmp_path / "demo")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out, _ = demo.communicate(timeout=120)
    assert demo.returncode == 0, out
    assert "load: " in out.splitlines()[-1] and " 200: " in out.splitlines()[-1]

    code, res, _ = verify(stack, timeout="20s")
    assert code == 0, res

    api = httpx.Client(base_url=stack.url, timeout=10)
    edges = api.get("/prometheus/api/v1/query", params={"query": "traces_service_graph_request_total"}).json()
    pairs = {(e["metric"]["client"], e["metric"]["server"]) for e in edges["data"]["result"]}
    assert {("frontend", "backend"), ("backend", "sqlite")} <= pairs

    errors = api.get("/loki/api/v1/query_range", params={
        "query": '{service_name="backend"} |= "failed" | detected_level="error"', "limit": "5"}).json()
    entries = [(s["stream"], v) for s in errors["data"]["result"] for v in s["values"]]
    assert entries, "the backend's error lines"
    for stream, _ in entries[:3]:  # each error line's trace is stored, and it failed
        trace = api.get(f"/api/v2/traces/{stream['trace_id']}", headers={"Accept": "application/json"}).json()
        statuses = [s.get("status", {}).get("code") for rs in trace["trace"]["resourceSpans"]
                    for ss in rs["scopeSpans"] for s in ss["spans"]]
        assert "STATUS_CODE_ERROR" in statuses

    ex = api.get("/prometheus/api/v1/query_exemplars", params={
        "query": 'http_server_request_duration_seconds_bucket{job="kms-demo/frontend"}',
        "start": "0", "end": "4102444800"}).json()
    trace_ids = {e["labels"]["trace_id"] for s in ex["data"] for e in s["exemplars"]}
    assert trace_ids
    tid = sorted(trace_ids)[0]
    assert api.get(f"/api/v2/traces/{tid}").status_code == 200
