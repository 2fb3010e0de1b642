"""A real Prometheus (Debian's package) scrapes itself and remote-writes to ``kms up``; the same
PromQL answered by both agrees."""

from __future__ import annotations

import shutil
import subprocess
import time

import httpx
import pytest

from kms.testing import free_port

pytestmark = pytest.mark.slow


@pytest.fixture
def prometheus(kms, tmp_path):
    exe = shutil.which("prometheus")
    assert exe, "Debian's prometheus package is needed (.ci/run installs it: apt-get install prometheus)"
    port = free_port()
    cfg = tmp_path / "prom.yml"
    cfg.write_text(f"""
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
scrape_configs:
  - job_name: prometheus
    static_configs: [{{targets: ["127.0.0.1:{port}"]}}]
remote_write:
  - url: {kms.url}/api/v1/push
    send_exemplars: true
    queue_config: {{batch_send_deadline: 1s}}
""")
    proc = subprocess.Popen([exe, f"--config.file={cfg}", f"--storage.tsdb.path={tmp_path / 'promdata'}",
                             f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(10)


def query(url: str, prefix: str, q: str, t: float) -> dict:
    r = httpx.get(f"{url}{prefix}/api/v1/query", params={"query": q, "time": t}, timeout=10).json()
    assert r["status"] == "success", (q, r)
    return {tuple(sorted(s["metric"].items())): s["value"][1] for s in r["data"]["result"]}


QUERIES = [
    'up{job="prometheus"}',
    "count by (job) ({__name__=~\"prometheus_tsdb_head_.*\"})",
    'prometheus_build_info',
    'sum by (job) (scrape_samples_scraped)',
    'max_over_time(scrape_duration_seconds[5s]) > 0',
    'count(count by (__name__) ({job="prometheus"}))',
]


def test_prometheus_remote_writes_and_both_agree(kms, prometheus):
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        got = httpx.get(kms.url + "/api/v1/query", params={"query": 'up{job="prometheus"}'}).json()
        if got["status"] == "success" and got["data"]["result"]:
            break
        time.sleep(0.5)
    else:
        raise AssertionError("no sample from Prometheus arrived within 60 s")
    time.sleep(4)
    t = time.time() - 3  # a time both have fully received
    for q in QUERIES:
        ours, theirs = query(kms.url, "/prometheus", q, t), query(prometheus, "", q, t)
        assert ours == theirs, q
