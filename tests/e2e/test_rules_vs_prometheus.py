"""The same rule file, evaluated by Debian's Prometheus and by ``kms up`` over the same
remote-written data, gives the same recording-rule series and the same alerts."""

from __future__ import annotations

import shutil
import subprocess
import time

import httpx
import pytest

from kms.metrics.remote_write import WriteRequest, encode_remote_write
from kms.testing import KmsProcess, free_port, wait_http

pytestmark = pytest.mark.slow

RW = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
      "X-Prometheus-Remote-Write-Version": "0.1.0"}

# Data ends a minute before the test starts and the rate windows reach well past its start, so
# the outputs do not depend on when each server happens to evaluate.
RULES = """
groups:
  - name: compare
    interval: 1s
    rules:
      - record: job:http_requests:rate15m
        expr: sum by (job) (rate(http_requests_total[15m]))
      - record: job_code:http_requests:ratio
        expr: >
          sum by (job, code) (rate(http_requests_total[15m]))
          / ignoring(code) group_left sum by (job) (rate(http_requests_total[15m]))
      - record: instance:temperature:max2
        expr: max by (instance) (temperature) * 2
        labels: {unit: celsius}
      - record: temperature:quantile
        expr: quantile(0.9, temperature)
      - alert: Hot
        expr: temperature > 30
        labels: {severity: warn, where: "{{ $labels.instance }}"}
"""
RECORDED = ["job:http_requests:rate15m", "job_code:http_requests:ratio", "instance:temperature:max2",
            "temperature:quantile", "ALERTS"]


def data(now_ms: int) -> bytes:
    req = WriteRequest()
    for job in ("api", "web"):
        for inst in ("a", "b", "c"):
            for code in ("200", "500"):
                ts = req.timeseries.add()
                for k, v in sorted({"__name__": "http_requests_total", "job": job, "instance": inst,
                                    "code": code}.items()):
                    ts.labels.add(name=k, value=v)
                step = (ord(inst) - 96) * (7 if code == "200" else 1) * (2 if job == "web" else 1)
                for i in range(33):  # 8 min at 15 s
                    value = step * i if i != 20 else step * i // 2  # one counter reset on the way
                    ts.samples.add(value=float(value), timestamp=now_ms - 540_000 + i * 15_000)
            ts = req.timeseries.add()
            for k, v in sorted({"__name__": "temperature", "job": job, "instance": inst}.items()):
                ts.labels.add(name=k, value=v)
            for i in range(33):
                ts.samples.add(value=20.0 + (ord(inst) - 96) * 4.5 + (job == "web") + i / 10,
                               timestamp=now_ms - 540_000 + i * 15_000)
    return encode_remote_write(req)


@pytest.fixture
def prometheus(tmp_path):
    exe = shutil.which("prometheus")
    assert exe, "Debian's prometheus package is needed (.ci/run installs it)"
    port = free_port()
    (tmp_path / "rules.yml").write_text(RULES)
    cfg = tmp_path / "prom.yml"
    cfg.write_text(f"global: {{evaluation_interval: 1s}}\nrule_files: [{tmp_path / 'rules.yml'}]\n")
    proc = subprocess.Popen([exe, f"--config.file={cfg}", f"--storage.tsdb.path={tmp_path / 'promdata'}",
                             f"--web.listen-address=127.0.0.1:{port}", "--web.enable-remote-write-receiver"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/-/ready", 30, proc)
    yield url
    proc.terminate()
    proc.wait(10)


def results(url: str, query: str) -> dict:
    r = httpx.get(url + "/api/v1/query", params={"query": query}, timeout=10).json()
    assert r["status"] == "success", r
    return {tuple(sorted(s["metric"].items())): float(s["value"][1]) for s in r["data"]["result"]}


def test_same_rules_same_data_same_results(tmp_path, prometheus):
    kms = KmsProcess(tmp_path / "data", ["--rules", str(tmp_path / "rules.yml")]).start()
    try:
        body = data(int(time.time() * 1000) - 60_000)
        assert httpx.post(kms.url + "/api/v1/push", content=body, headers=RW).status_code == 204
        assert httpx.post(prometheus + "/api/v1/write", content=body, headers=RW).status_code == 204
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            theirs = {q: results(prometheus, q) for q in RECORDED}
            ours = {q: results(kms.url, q) for q in RECORDED}
            if all(theirs.values()) and all(ours.values()):
                break
            time.sleep(0.3)
        for q in RECORDED:
            assert theirs[q], q
            assert ours[q].keys() == theirs[q].keys(), q
            for k, v in theirs[q].items():
                assert ours[q][k] == pytest.approx(v, rel=1e-9), (q, k)
        assert len(ours["ALERTS"]) == 4  # b and c of both jobs are above 30

        # the same file and group name give the same phase within the interval: the outputs of both
        # are stamped at the same millisecond of the second
        def phase_ms(url: str) -> set[int]:
            return {round(v * 1000) % 1000 for v in results(url, "timestamp(temperature:quantile)").values()}

        assert phase_ms(kms.url) == phase_ms(prometheus)
    finally:
        kms.stop()
