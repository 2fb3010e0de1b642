"""Remote write into ``kms up`` and PromQL over what was written (Prometheus's status semantics)."""

from __future__ import annotations

import time

import httpx
import pytest

from kms.metrics.remote_write import WriteRequest, encode_remote_write

pytestmark = pytest.mark.slow

RW = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
      "X-Prometheus-Remote-Write-Version": "0.1.0"}


def write_request(now_ms: int, job: str = "api") -> bytes:
    req = WriteRequest()
    for inst in ("a", "b"):
        ts = req.timeseries.add()
        for name, value in (("__name__", "http_requests_total"), ("instance", inst), ("job", job)):
            ts.labels.add(name=name, value=value)
        for i in range(10):
            ts.samples.add(value=float(i * 10), timestamp=now_ms - (9 - i) * 15_000)
        ex = ts.exemplars.add(value=1.0, timestamp=now_ms)
        ex.labels.add(name="trace_id", value="4bf92f3577b34da6a3ce929d0e0e4736")
    return encode_remote_write(req)


def test_remote_write_then_promql(kms):
    now = int(time.time() * 1000)
    with httpx.Client(base_url=kms.url, timeout=10) as c:
        for path in ("/api/v1/push", "/api/v1/write"):
            assert c.post(path, content=write_request(now, job=path.rsplit("/", 1)[1]), headers=RW).status_code == 204
        r = c.get("/prometheus/api/v1/query", params={"query": "sum by (job) (rate(http_requests_total[5m]))",
                                                      "time": now / 1000}).json()
        assert r["status"] == "success", r
        got = {s["metric"]["job"]: float(s["value"][1]) for s in r["data"]["result"]}
        # Per series 0 -> 90 over 135 s; Prometheus's extrapolatedRate does not extrapolate a counter
        # below zero (it starts at 0) nor past the last sample (at the query time): 90 / 300 s.
        want = 2 * 90 / 300
        assert got.keys() == {"push", "write"} and all(v == pytest.approx(want, rel=1e-6) for v in got.values())
        rng = c.post("/api/v1/query_range", data={"query": "http_requests_total", "start": (now - 120_000) / 1000,
                                                  "end": now / 1000, "step": "15s"}).json()
        assert rng["data"]["resultType"] == "matrix" and len(rng["data"]["result"]) == 4
        assert c.get("/api/v1/label/job/values").json()["data"] == ["push", "write"]
        ex = c.get("/api/v1/query_exemplars", params={"query": "http_requests_total", "start": now / 1000 - 60,
                                                      "end": now / 1000 + 1}).json()["data"]
        assert {e["labels"]["trace_id"] for s in ex for e in s["exemplars"]} == {"4bf92f3577b34da6a3ce929d0e0e4736"}
        # Another tenant sees nothing.
        other = c.get("/api/v1/query", params={"query": "http_requests_total"}, headers={"X-Scope-OrgID": "other"})
        assert other.json()["data"]["result"] == []


@pytest.mark.parametrize("body, headers, status", [
    (b"not snappy", RW, 400),
    (encode_remote_write(WriteRequest()) + b"x", RW, 400),
    (write_request(0), {**RW, "Content-Type": "application/x-protobuf;proto=io.prometheus.write.v9.Request"}, 415),
])
def test_remote_write_refusals(kms, body, headers, status):
    r = httpx.post(kms.url + "/api/v1/push", content=body, headers=headers)
    assert r.status_code == status, r.text
    assert httpx.get(kms.url + "/api/v1/query", params={"query": "http_requests_total"}).json()["data"]["result"] == []


def test_series_limits_refuse_the_whole_request(tmp_path):
    from kms.testing import KmsProcess

    kms = KmsProcess(tmp_path / "data", ["--max-label-names-per-series", "3", "--max-label-value-length", "10"]).start()
    try:
        now = int(time.time() * 1000)
        ok, too_many, too_long = WriteRequest(), WriteRequest(), WriteRequest()
        for req, labels in ((ok, [("__name__", "m"), ("a", "1")]),
                            (too_many, [("__name__", "m"), ("a", "1"), ("b", "2"), ("c", "3")]),
                            (too_long, [("__name__", "m"), ("a", "x" * 11)])):
            good = req.timeseries.add()  # every request also carries a valid series
            good.labels.add(name="__name__", value="fine")
            good.samples.add(value=1, timestamp=now)
            ts = req.timeseries.add()
            for n, v in labels:
                ts.labels.add(name=n, value=v)
            ts.samples.add(value=1, timestamp=now)
        with httpx.Client(base_url=kms.url, timeout=10) as c:
            r = c.post("/api/v1/push", content=encode_remote_write(too_many), headers=RW)
            assert r.status_code == 400 and "number of labels exceeds the limit (actual: 4, limit: 3)" in r.text
            r = c.post("/api/v1/push", content=encode_remote_write(too_long), headers=RW)
            assert r.status_code == 400 and "label value length exceeds the limit" in r.text
            assert c.get("/api/v1/query", params={"query": "fine"}).json()["data"]["result"] == []  # nothing half-stored
            assert c.post("/api/v1/push", content=encode_remote_write(ok), headers=RW).status_code == 204
            assert len(c.get("/api/v1/query", params={"query": "fine"}).json()["data"]["result"]) == 1
            assert 'reason="max_label_names_per_series"' in c.get("/metrics").text
    finally:
        kms.kill()


def _one(name: str, samples: list[tuple[int, float]], **labels: str) -> bytes:
    req = WriteRequest()
    ts = req.timeseries.add()
    for n, v in sorted({"__name__": name, **labels}.items()):
        ts.labels.add(name=n, value=v)
    for t, v in samples:
        ts.samples.add(value=v, timestamp=t)
    return encode_remote_write(req)


def test_series_limit_out_of_order_window_and_duplicates(tmp_path):
    from kms.testing import KmsProcess

    kms = KmsProcess(tmp_path / "data", ["--max-series-per-tenant", "2", "--out-of-order-window", "1m"]).start()
    try:
        now = int(time.time() * 1000) // 1000 * 1000
        with httpx.Client(base_url=kms.url, timeout=10) as c:
            for i in ("1", "2"):
                assert c.post("/api/v1/push", content=_one("m", [(now, 1.0)], i=i), headers=RW).status_code == 204
            r = c.post("/api/v1/push", content=_one("m", [(now, 1.0)], i="3"), headers=RW)
            assert r.status_code == 400 and "per-user series limit of 2" in r.text, r.text
            assert c.post("/api/v1/push", content=_one("m", [(now, 1.0)], i="3"), headers={**RW, "X-Scope-OrgID": "b"}).status_code == 204
            # within the window: stored; beyond it: refused with the rule's name, the rest stored
            assert c.post("/api/v1/push", content=_one("m", [(now - 30_000, 5.0)], i="1"), headers=RW).status_code == 204
            r = c.post("/api/v1/push", content=_one("m", [(now - 120_000, 7.0), (now + 1000, 2.0)], i="1"), headers=RW)
            assert r.status_code == 400 and "err-mimir-sample-out-of-order" in r.text, r.text
            r = c.post("/api/v1/push", content=_one("m", [(now + 1000, 3.0)], i="1"), headers=RW)
            assert r.status_code == 400 and "err-mimir-sample-duplicate-timestamp" in r.text, r.text
            assert c.post("/api/v1/push", content=_one("m", [(now + 1000, 2.0)], i="1"), headers=RW).status_code == 204
            rng = c.post("/api/v1/query_range", data={"query": 'm{i="1"}', "start": (now - 180_000) / 1000,
                                                      "end": (now + 1000) / 1000, "step": "1s"}).json()
            values = {float(v) for _, v in rng["data"]["result"][0]["values"]}
            assert values == {5.0, 1.0, 2.0}  # 7.0 (too old) and 3.0 (duplicate) were not stored
            metrics = c.get("/metrics").text
            assert 'reason="max_series_per_tenant"' in metrics and 'reason="sample_out_of_order"' in metrics
    finally:
        kms.kill()


def test_kill_9_while_remote_writing_loses_no_acknowledged_sample(tmp_path):
    import threading

    from kms.testing import KmsProcess

    kms = KmsProcess(tmp_path / "data").start()
    now = int(time.time() * 1000)
    acked: list[int] = []
    stop = threading.Event()

    def client(first: int):
        i = first
        with httpx.Client(base_url=kms.url, timeout=5) as c:
            while not stop.is_set():
                req = WriteRequest()
                ts = req.timeseries.add()
                ts.labels.add(name="__name__", value="crash_samples")
                ts.labels.add(name="i", value=str(i))
                for k in range(50):
                    ts.samples.add(value=float(k), timestamp=now - 50_000 + k * 1000)
                try:
                    if c.post("/api/v1/push", content=encode_remote_write(req), headers=RW).status_code != 204:
                        return
                except httpx.HTTPError:
                    return  # the server died mid-request: not acknowledged
                acked.append(i)
                i += 3

    threads = [threading.Thread(target=client, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    time.sleep(2.0)
    kms.kill()
    stop.set()
    for t in threads:
        t.join(10)
    assert len(acked) > 20
    kms.start()
    try:
        r = httpx.get(kms.url + "/api/v1/query", params={"query": "count_over_time(crash_samples[2m])",
                                                        "time": now / 1000}).json()
        counts = {int(s["metric"]["i"]): float(s["value"][1]) for s in r["data"]["result"]}
        missing = [i for i in acked if counts.get(i) != 50]
        assert not missing, f"{len(missing)} of {len(acked)} acknowledged series lost or incomplete"
    finally:
        kms.kill()
