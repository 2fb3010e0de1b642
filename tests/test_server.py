"""The wired app before it is ready, and under memory pressure (a real process for gRPC)."""

from __future__ import annotations

import grpc
import httpx
import pytest
from starlette.testclient import TestClient

from kms.config import load_config
from kms.otlp.lite import RpcStatus
from kms.server import Stack
from kms.testing import KmsProcess

PB = {"Content-Type": "application/x-protobuf"}


def test_not_ready_until_the_store_is_open(tmp_path):
    stack = Stack(load_config(None, {"data_dir": str(tmp_path / "d")}, {}))
    with TestClient(stack.app) as c:
        assert c.get("/ready").status_code == 503
        r = c.post("/v1/traces", content=b"", headers=PB)
        assert r.status_code == 503 and r.headers["Retry-After"] == "1"
        assert "not ready" in RpcStatus.FromString(r.content).message
        assert "kms_ready 0.0" in c.get("/metrics").text
        c.get("/api/traces/0123456789abcdef0123456789abcdef")
        c.get("/no/such/path")
        text = c.get("/metrics").text  # request latency by route template and status, not by raw path
        assert 'kms_request_duration_seconds_count{route="/ready",status="503"} 1.0' in text
        assert 'route="/api/traces/{trace_id}"' in text and "0123456789abcdef" not in text
        assert 'kms_request_duration_seconds_count{route="unmatched",status="404"} 1.0' in text


@pytest.mark.slow
def test_memory_pressure_is_429_and_resource_exhausted(tmp_path):
    kms = KmsProcess(tmp_path / "data", ["--memory-limit-mib", "1"]).start()
    try:
        r = httpx.post(kms.url + "/v1/logs", content=b"", headers=PB)
        assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
        assert "memory limit" in RpcStatus.FromString(r.content).message
        with grpc.insecure_channel(kms.grpc_target) as ch:
            with pytest.raises(grpc.RpcError) as e:
                ch.unary_unary("/opentelemetry.proto.collector.logs.v1.LogsService/Export")(b"", timeout=10)
            assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert 'kms_refused_requests_total{reason="memory_limit",signal="logs"} 2.0' in httpx.get(kms.url + "/metrics").text
    finally:
        kms.kill()


@pytest.mark.slow
def test_rate_limit_is_429(tmp_path):
    kms = KmsProcess(tmp_path / "data", ["--ingestion-rate-bytes", "1000", "--ingestion-burst-bytes", "1000"]).start()
    try:
        from opentelemetry.proto.collector.logs.v1 import logs_service_pb2

        req = logs_service_pb2.ExportLogsServiceRequest()
        req.resource_logs.add().scope_logs.add().log_records.add(time_unix_nano=1).body.string_value = "x" * 2000
        r = httpx.post(kms.url + "/v1/logs", content=req.SerializeToString(), headers={**PB, "X-Scope-OrgID": "t1"})
        assert r.status_code == 429 and "ingestion rate limit" in RpcStatus.FromString(r.content).message
    finally:
        kms.kill()
