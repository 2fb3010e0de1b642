"""kms agent: acknowledged ingest into its disk queue, forwarding throughput to a central kms up,
catch-up after a central outage, and the agent's memory.

1. Ingest: remote-write-sized OTLP metric requests (N series x 1 point) posted to the agent's
   OTLP/HTTP port one after another; each is acknowledged after it is translated, labelled and
   fsynced into the queue. Samples/s and requests/s.
2. Forwarding with the central stack up: the time until the queue is empty after the last
   acknowledgement, and the end-to-end samples/s.
3. Catch-up: the central stack stopped, the same load queued, the central started again; the
   time to drain the backlog, in samples/s.
4. Peak RSS of the agent process (VmHWM).
5. Scraping (``--scrape-targets`` > 0): a load process serves N targets x M series over HTTP;
   an agent with a collector-layout config (prometheus receiver -> prometheusremotewrite to the
   central stack) scrapes them every ``--scrape-interval`` for ``--scrape-seconds``: its peak RSS,
   its CPU per scraped sample, and what reached the central stack.

Usage: python benchmarks/agent/bench_agent.py [--requests 400] [--series 1000]
       [--scrape-targets 100 --scrape-series 1000 --scrape-interval 5s --scrape-seconds 40]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    Gauge,
    Metric,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

from kms.testing import KmsProcess, free_port, free_ports, proc_cpu_seconds, proc_status_bytes, wait_http  # noqa: E402
from kms.testing.agent import AgentProcess  # noqa: E402

PB = {"Content-Type": "application/x-protobuf"}


def requests(n: int, series: int, t0_s: int) -> list[bytes]:
    out = []
    res = Resource(attributes=[KeyValue(key="service.name", value=AnyValue(string_value="bench"))])
    for i in range(n):
        points = [NumberDataPoint(time_unix_nano=(t0_s + i) * 10**9, as_double=float(i + s),
                                  attributes=[KeyValue(key="series", value=AnyValue(string_value=str(s)))])
                  for s in range(series)]
        m = Metric(name="bench_value", gauge=Gauge(data_points=points))
        out.append(ExportMetricsServiceRequest(resource_metrics=[ResourceMetrics(
            resource=res, scope_metrics=[ScopeMetrics(metrics=[m])])]).SerializeToString())
    return out


def push(agent: AgentProcess, reqs: list[bytes]) -> float:
    t0 = time.perf_counter()
    with httpx.Client(timeout=30) as c:
        for body in reqs:
            r = c.post(agent.url + "/v1/metrics", content=body, headers=PB)
            assert r.status_code == 200, r.text
    return time.perf_counter() - t0


def drained(agent: AgentProcess, timeout_s: float = 600) -> float:
    t0 = time.perf_counter()
    while agent.metric("kms_agent_queue_records") > 0:
        if time.perf_counter() - t0 > timeout_s:
            raise TimeoutError("queue not drained")
        time.sleep(0.05)
    return time.perf_counter() - t0


def scrape(tmp: Path, central: KmsProcess, targets: int, series: int, interval: str, seconds: float) -> None:
    ports = free_ports(targets)
    script = Path(__file__).resolve().parents[1] / "collect" / "bench_scrape.py"
    load = subprocess.Popen([sys.executable, str(script), "--serve", ",".join(map(str, ports)), "--series",
                             str(series)])
    cfg = tmp / "agent-scrape.yaml"
    http = free_port()
    targets_yaml = ", ".join(f"'127.0.0.1:{p}'" for p in ports)
    cfg.write_text(f"""
receivers:
  otlp: {{protocols: {{http: {{endpoint: "127.0.0.1:{http}"}}}}}}
  prometheus:
    config:
      global: {{scrape_interval: {interval}}}
      scrape_configs: [{{job_name: bench, static_configs: [{{targets: [{targets_yaml}]}}]}}]
exporters:
  prometheusremotewrite: {{endpoint: "{central.url}/api/v1/push", external_labels: {{cluster: bench}}}}
service:
  pipelines:
    metrics: {{receivers: [prometheus], exporters: [prometheusremotewrite]}}
""")
    try:
        wait_http(f"http://127.0.0.1:{ports[-1]}/metrics", 60, load)
        agent = AgentProcess(tmp / "agent-scrape", "", ["--config", str(cfg)], otlp_http_port=http).start()
        try:
            time.sleep(seconds)
            cpu_s = proc_cpu_seconds(agent.proc.pid)
            rss = proc_status_bytes(agent.proc.pid)
            sent = agent.metric("kms_agent_sent_records_total")
        finally:
            agent.kill()
        r = httpx.get(f"{central.url}/prometheus/api/v1/query", params={
            "query": 'sum(count_over_time(scrape_samples_scraped{cluster="bench"}[1h]))'}).json()
        scrapes = float(r["data"]["result"][0]["value"][1]) if r["data"]["result"] else 0.0
        samples = scrapes * series
        print(f"scraping: {targets} targets x {series:,} series every {interval} for {seconds:.0f}s: "
              f"{scrapes:.0f} scrapes ({samples:,.0f} samples) reached the central stack in {sent:.0f} records; "
              f"agent CPU {cpu_s:.1f}s = {samples / max(cpu_s, 1e-9):,.0f} scraped samples per CPU second; "
              f"agent peak RSS {rss / 2**20:.0f} MiB")
    finally:
        load.kill()
        load.wait()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--series", type=int, default=1000)
    ap.add_argument("--scrape-targets", type=int, default=100)
    ap.add_argument("--scrape-series", type=int, default=1000)
    ap.add_argument("--scrape-interval", default="5s")
    ap.add_argument("--scrape-seconds", type=float, default=40)
    a = ap.parse_args()
    n_samples = a.requests * a.series
    with tempfile.TemporaryDirectory() as tmp:
        central = KmsProcess(Path(tmp) / "central", ["--out-of-order-window", "1h"]).start()
        agent = AgentProcess(Path(tmp) / "agent", central.url, ["--host-metrics", "false",
                                                                  "--external-label", "cluster=bench"]).start()
        try:
            t0_s = int(time.time()) - 3 * a.requests
            reqs = requests(a.requests, a.series, t0_s)
            mb = sum(map(len, reqs)) / 1e6
            push_s = push(agent, reqs)
            drain_s = drained(agent)
            print(f"{a.requests} OTLP requests x {a.series} series = {n_samples:,} samples ({mb:.1f} MB of OTLP)")
            print(f"ingest (acknowledged, fsynced into the queue): {n_samples / push_s:,.0f} samples/s, "
                  f"{a.requests / push_s:,.0f} requests/s, {mb / push_s:.1f} MB/s")
            print(f"forwarding, central up: queue empty {drain_s:.2f}s after the last ack; end to end "
                  f"{n_samples / (push_s + drain_s):,.0f} samples/s")

            central.stop()
            reqs = requests(a.requests, a.series, t0_s + a.requests)
            push(agent, reqs)
            backlog = agent.metric("kms_agent_queue_records")
            sent0 = agent.metric("kms_agent_sent_records_total")
            central.start()
            t_up = time.perf_counter()
            while agent.metric("kms_agent_sent_records_total") == sent0:  # the retry backoff ends
                time.sleep(0.02)
            t_first = time.perf_counter()
            drained(agent)
            t_end = time.perf_counter()
            print(f"catch-up after an outage: {backlog:.0f} queued records ({n_samples:,} samples) delivered "
                  f"{t_end - t_first:.2f}s after the first one = {n_samples / (t_end - t_first):,.0f} samples/s; "
                  f"the first one {t_first - t_up:.2f}s after the central stack was ready (retry backoff)")
            print(f"agent peak RSS: {proc_status_bytes(agent.proc.pid) / 2**20:.0f} MiB")
            r = httpx.get(f"{central.url}/prometheus/api/v1/query", params={
                "query": 'count(count_over_time(bench_value{cluster="bench"}[1d]))'}).json()
            print(f"central holds {r['data']['result'][0]['value'][1]} bench series")
            if a.scrape_targets:
                scrape(Path(tmp), central, a.scrape_targets, a.scrape_series, a.scrape_interval, a.scrape_seconds)
        finally:
            agent.kill()
            central.kill()


if __name__ == "__main__":
    main()
