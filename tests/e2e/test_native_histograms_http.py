"""Native histograms end to end: the OpenTelemetry SDK's exponential histograms over OTLP/HTTP and
remote-write histograms reach ``kms up``, are queried with PromQL through the Prometheus API
(quantiles, rates, the API's histogram JSON, exemplars) and survive kill -9."""

from __future__ import annotations

import time

import httpx
import pytest

from kms.metrics.remote_write import WriteRequest, encode_remote_write
from kms.testing import KmsProcess

pytestmark = pytest.mark.slow

LATENCIES_MS = [1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 21.0, 34.0, 55.0, 89.0]


def query(url: str, q: str) -> list[dict]:
    r = httpx.get(f"{url}/api/v1/query", params={"query": q}, timeout=10).json()
    assert r["status"] == "success", r
    return r["data"]["result"]


def send_sdk_histograms(kms: KmsProcess, rounds: int) -> str:
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation, View
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    resource = Resource.create({"service.name": "checkout"})
    reader = PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=f"http://127.0.0.1:{kms.otlp_http_port}/v1/metrics"),
        export_interval_millis=3_600_000,
    )
    view = View(instrument_name="checkout.latency", aggregation=ExponentialBucketHistogramAggregation(max_scale=4))
    mp = MeterProvider(resource=resource, metric_readers=[reader], views=[view])
    hist = mp.get_meter("e2e").create_histogram("checkout.latency", unit="ms")
    tracer = TracerProvider(resource=resource).get_tracer("e2e")
    trace_id = ""
    for _ in range(rounds):
        with tracer.start_as_current_span("pay") as span:
            for v in LATENCIES_MS:
                hist.record(v, {"route": "/pay"})
            trace_id = format(span.get_span_context().trace_id, "032x")
        assert reader.force_flush(10_000)
        time.sleep(1.1)  # the next export gets a later timestamp
    mp.shutdown()
    return trace_id


def test_sdk_exponential_histograms_query_and_survive_kill_9(tmp_path):
    kms = KmsProcess(tmp_path / "data").start()
    try:
        trace_id = send_sdk_histograms(kms, rounds=3)
        name = "checkout_latency_milliseconds"
        [raw] = query(kms.url, name)
        assert "value" not in raw and raw["metric"]["job"] == "checkout"
        h = raw["histogram"][1]
        assert h["count"] == str(3 * len(LATENCIES_MS)) and float(h["sum"]) == pytest.approx(3 * sum(LATENCIES_MS))
        assert sum(float(b[3]) for b in h["buckets"]) == 3 * len(LATENCIES_MS)
        assert all(b[0] == 0 for b in h["buckets"])  # positive buckets: (lower, upper]
        # the median of 1..89 ms is between 8 and 13; schema 4 buckets are ~4.4% wide
        [med] = query(kms.url, f"histogram_quantile(0.5, {name})")
        assert 8.0 <= float(med["value"][1]) <= 13.0 * 1.05
        [frac] = query(kms.url, f"histogram_fraction(0, 10, {name})")
        assert float(frac["value"][1]) == pytest.approx(0.5, abs=0.05)
        [rate] = query(kms.url, f"histogram_count(rate({name}[1m]))")
        assert float(rate["value"][1]) > 0
        [by_route] = query(kms.url, f"sum by (route) (histogram_count({name}))")
        assert by_route["metric"] == {"route": "/pay"} and by_route["value"][1] == "30"
        ex = httpx.get(
            f"{kms.url}/api/v1/query_exemplars",
            params={"query": name, "start": time.time() - 600, "end": time.time() + 60},
            timeout=10,
        ).json()["data"]
        assert trace_id in [e["labels"].get("trace_id") for s in ex for e in s["exemplars"]], ex
        kms.kill()  # SIGKILL: everything acknowledged is in the WAL
        kms = KmsProcess(tmp_path / "data").start()
        [again] = query(kms.url, f"histogram_count({name})")
        assert again["value"][1] == "30"
    finally:
        kms.kill()


def test_remote_write_histograms_stored_and_counted(tmp_path):
    kms = KmsProcess(tmp_path / "data").start()
    try:
        now = int(time.time() * 1000)
        req = WriteRequest()
        ts = req.timeseries.add()
        for k, v in (("__name__", "rpc_duration_seconds"), ("job", "rpc")):
            ts.labels.add(name=k, value=v)
        for i in range(3):
            h = ts.histograms.add(count_int=4 * (i + 1), sum=2.0 * (i + 1), schema=0, timestamp=now - (2 - i) * 15_000)
            h.positive_spans.add(offset=0, length=2)
            h.positive_deltas.extend([i + 1, i + 1])  # counts (i+1, 2(i+1)) ...
            h.negative_spans.add(offset=1, length=1)
            h.negative_deltas.append(i + 1)
        bad = ts.histograms.add(count_int=1, schema=42, timestamp=now)
        del bad
        r = httpx.post(
            f"{kms.url}/api/v1/push",
            content=encode_remote_write(req),
            headers={"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy"},
            timeout=10,
        )
        assert r.status_code == 400 and "schema 42" in r.text  # the bad one is named, the rest stored
        [got] = query(kms.url, "histogram_count(rpc_duration_seconds)")
        assert got["value"][1] == "12"
        [inc] = query(kms.url, "histogram_count(increase(rpc_duration_seconds[1m]))")
        assert float(inc["value"][1]) > 8
        [lo] = query(kms.url, "histogram_fraction(-Inf, 0, rpc_duration_seconds)")
        assert float(lo["value"][1]) == pytest.approx(3 / 12)
    finally:
        kms.kill()
