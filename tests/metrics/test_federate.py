"""``/federate``: the format and selection rules, and Debian's Prometheus federating from kms."""

from __future__ import annotations

import shutil
import subprocess
import time

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from kms.metrics.federate import federate_text
from kms.metrics.promql import MemorySeriesSource
from kms.metrics.remote_write import encode_batch
from kms.metrics.samples import STALE_NAN_BITS, BatchBuilder
from kms.testing import KmsProcess, free_port

NOW = 1_700_000_000_000
STALE = float(np.array([STALE_NAN_BITS], np.uint64).view(np.float64)[0])


def source() -> MemorySeriesSource:
    src = MemorySeriesSource()
    src.add({"__name__": "up", "job": "api", "instance": "a"}, NOW - 20_000, 1.0)
    src.add({"__name__": "up", "job": "api", "instance": "a"}, NOW - 5_000, 0.0)  # the newest wins
    src.add({"__name__": "up", "job": "api", "instance": "gone"}, NOW - 9_000, 1.0)
    src.add({"__name__": "up", "job": "api", "instance": "gone"}, NOW - 8_000, STALE)  # ended: left out
    src.add({"__name__": "up", "job": "api", "instance": "old"}, NOW - 600_000, 1.0)  # beyond the lookback
    src.add({"__name__": "http_requests_total", "job": "api", "path": 'say "hi"\n'}, NOW - 1_000, 42.5)
    src.add({"__name__": "other", "job": "db"}, NOW - 1_000, 7.0)
    return src


def test_newest_sample_per_series_with_its_timestamp():
    text = federate_text(source(), ['{job="api"}'], NOW, 300_000)
    assert text == (
        "# TYPE http_requests_total untyped\n"
        'http_requests_total{job="api",path="say \\"hi\\"\\n"} 42.5 1699999999000\n'
        "# TYPE up untyped\n"
        'up{instance="a",job="api"} 0 1699999995000\n'
    )
    fams = {f.name: f for f in text_string_to_metric_families(text)}  # a real parser reads it back
    assert fams["up"].samples[0].timestamp == 1699999995.0


def test_several_selectors_are_a_union_without_duplicates():
    text = federate_text(source(), ["up", '{job="api", instance="a"}', "other"], NOW, 300_000)
    assert [ln.split(" ")[0] for ln in text.splitlines() if not ln.startswith("#")] == [
        'other{job="db"}', 'up{instance="a",job="api"}']


@pytest.mark.slow
def test_debian_prometheus_federates_from_kms(tmp_path):
    exe = shutil.which("prometheus")
    assert exe, "Debian's prometheus package is needed (.ci/run installs it)"
    kms = KmsProcess(tmp_path / "kms").start()
    port = free_port()
    try:
        b = BatchBuilder()
        now = int(time.time() * 1000)
        for i in range(3):
            s = b.series_index((("__name__", "fed_value"), ("instance", f"i{i}"), ("job", "leaf")))
            b.add(s, now - 1000, float(i) + 0.25)
        r = httpx.post(f"{kms.url}/api/v1/push", content=encode_batch(b.build()), headers={
            "Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
            "X-Prometheus-Remote-Write-Version": "0.1.0"})
        assert r.status_code == 204
        cfg = tmp_path / "prom.yml"
        cfg.write_text(f"""
global: {{scrape_interval: 1s}}
scrape_configs:
  - job_name: federate
    honor_labels: true
    metrics_path: /federate
    params: {{"match[]": ['{{job="leaf"}}']}}
    static_configs: [{{targets: ["127.0.0.1:{kms.port}"]}}]
""")
        proc = subprocess.Popen([exe, f"--config.file={cfg}", f"--storage.tsdb.path={tmp_path / 'prom'}",
                                 f"--web.listen-address=127.0.0.1:{port}"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            got, up, last = {}, [], None
            while time.monotonic() < deadline and (len(got) < 3 or not up):
                time.sleep(0.5)
                try:
                    last = httpx.get(f"http://127.0.0.1:{port}/api/v1/query", params={"query": "fed_value"}).json()
                    up = httpx.get(f"http://127.0.0.1:{port}/api/v1/query",
                                   params={"query": 'up{job="federate"}'}).json()["data"]["result"]
                except httpx.HTTPError as e:
                    last = e
                    continue
                got = {s["metric"]["instance"]: (s["metric"]["job"], float(s["value"][1]))
                       for s in last.get("data", {}).get("result", [])}
            assert got == {f"i{i}": ("leaf", i + 0.25) for i in range(3)}, (last, proc.poll())  # honor_labels
            assert up[0]["value"][1] == "1"
        finally:
            proc.terminate()
            proc.wait(10)
    finally:
        kms.kill()
