"""``kms up`` scraping Debian's real exporters, queried through its Prometheus API; and the same
scrape config (every relabel action) run by Debian's Prometheus: both must agree on the targets
and on the series they store."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from kms.testing import KmsProcess, free_port, wait_http

pytestmark = pytest.mark.slow


def _start(args: list[str], url: str) -> subprocess.Popen:
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_http(url, 20, proc)
    except Exception:
        proc.kill()
        raise
    return proc


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def node_exporter():
    exe = shutil.which("prometheus-node-exporter")
    assert exe, "Debian's prometheus-node-exporter package is needed (apt-get install prometheus-node-exporter)"
    port = free_port()
    proc = _start([exe, f"--web.listen-address=127.0.0.1:{port}"], f"http://127.0.0.1:{port}/metrics")
    yield proc, f"127.0.0.1:{port}"
    _stop(proc)


def api(base: str, path: str, **params) -> dict | list:
    r = httpx.get(f"{base}{path}", params=params, timeout=10).json()
    assert r["status"] == "success", (path, params, r)
    return r["data"]


def query(base: str, q: str) -> list[dict]:
    return api(base, "/api/v1/query", query=q)["result"]


def wait_for(fn, timeout_s: float = 20.0, what: str = ""):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = fn()
        if got:
            return got
        time.sleep(0.25)
    raise AssertionError(f"not within {timeout_s}s: {what}")


def test_node_exporter_scraped_queried_and_stale_when_gone(node_exporter, tmp_path):
    proc, addr = node_exporter
    sd = tmp_path / "sd.yml"
    sd.write_text(f"- targets: ['{addr}']\n  labels: {{via: file}}\n")
    prom_cfg = tmp_path / "prometheus.yml"
    prom_cfg.write_text(f"""
global: {{scrape_interval: 1s}}
scrape_configs:
  - job_name: node
    static_configs: [{{targets: ['{addr}']}}]
  - job_name: filesd
    file_sd_configs: [{{files: ['{sd}']}}]
    metric_relabel_configs: [{{source_labels: [__name__], regex: 'node_cpu_.*|node_memory_.*', action: keep}}]
  - job_name: dead
    static_configs: [{{targets: ['127.0.0.1:{free_port()}']}}]
""")
    kms = KmsProcess(tmp_path / "data", ["--scrape-config", str(prom_cfg)]).start()
    try:
        base = kms.url
        def up_by_job() -> dict[str, str]:
            got = {r["metric"]["job"]: r["value"][1] for r in query(base, "up")}
            return got if len(got) == 3 else {}

        up = wait_for(up_by_job, what="up of every job")
        assert up == {"node": "1", "filesd": "1", "dead": "0"}
        cpus = query(base, 'count by (job) (node_cpu_seconds_total{mode="idle"})')
        assert {r["metric"]["job"] for r in cpus} == {"node", "filesd"} and int(cpus[0]["value"][1]) >= 1
        info = query(base, "node_exporter_build_info")
        assert len(info) == 1 and info[0]["metric"]["instance"] == addr and info[0]["metric"]["job"] == "node"
        assert query(base, 'go_goroutines{job="filesd"}') == []  # metric_relabel_configs dropped it
        assert query(base, 'node_memory_MemTotal_bytes{job="filesd",via="file"}')
        rate = wait_for(lambda: query(base, 'sum(rate(node_cpu_seconds_total{job="node"}[5s]))'), what="a rate")
        assert float(rate[0]["value"][1]) > 0
        post = query(base, 'scrape_samples_post_metric_relabeling{job="filesd"}')[0]["value"][1]
        scraped = query(base, 'scrape_samples_scraped{job="filesd"}')[0]["value"][1]
        assert 0 < int(post) < int(scraped)

        targets = api(base, "/api/v1/targets")
        by_job = {t["scrapePool"]: t for t in targets["activeTargets"]}
        assert by_job["node"]["health"] == "up" and by_job["node"]["scrapeInterval"] == "1s"
        assert by_job["dead"]["health"] == "down" and by_job["dead"]["lastError"]
        assert by_job["filesd"]["discoveredLabels"]["__meta_filepath"] == str(sd)
        assert api(base, "/prometheus/api/v1/targets", state="dropped")["activeTargets"] == []
        md = api(base, "/api/v1/targets/metadata", match_target='{job="node"}', metric="node_cpu_seconds_total")
        assert md[0]["type"] == "counter" and md[0]["help"]
        assert api(base, "/api/v1/scrape_pools")["scrapePools"] == ["dead", "filesd", "node"]

        # file SD loses the target: its series end with staleness markers (no 5 min lookback)
        sd.write_text("[]\n")
        wait_for(lambda: not query(base, 'node_memory_MemTotal_bytes{job="filesd"}'), what="filesd series stale")
        assert query(base, 'node_memory_MemTotal_bytes{job="node"}')
        # the exporter dies: up=0 with an error, and its series go stale at once
        _stop(proc)
        wait_for(lambda: query(base, 'up{job="node"}')[0]["value"][1] == "0", what="up=0")
        assert not query(base, 'node_exporter_build_info')
        assert "127.0.0.1" in {t["scrapePool"]: t for t in api(base, "/api/v1/targets")["activeTargets"]}["node"]["lastError"]
    finally:
        kms.stop()


RELABEL_CONFIG = """
global: {{scrape_interval: 1s}}
scrape_configs:
  - job_name: node
    params: {{'collect[]': [cpu, meminfo]}}
    static_configs:
      - targets: ['{addr}']
        labels: {{env: Prod, team: a-b, __meta_zone: eu-1}}
      - targets: ['127.0.0.1:1']
        labels: {{env: drop-me}}
    relabel_configs:
      - {{source_labels: [env], regex: drop-me, action: drop}}
      - {{source_labels: [env], target_label: env_lower, action: lowercase}}
      - {{source_labels: [env], target_label: env_upper, action: uppercase}}
      - {{source_labels: [__address__], target_label: shard, modulus: 7, action: hashmod}}
      - {{action: labelmap, regex: '__meta_(.+)', replacement: 'meta_$1'}}
      - {{source_labels: [team], regex: '(\\w+)-(\\w+)', target_label: 'team_${{2}}', replacement: '${{1}}x'}}
      - {{source_labels: [env_upper], target_label: env_upper, action: keepequal}}
      - {{source_labels: [team], target_label: env, action: dropequal}}
      - {{action: labeldrop, regex: team}}
      - {{source_labels: [env], regex: '(P)(.*)', target_label: env, replacement: '$2$1'}}
      - {{action: labelkeep, regex: '__.*|env.*|shard|meta_.*|team_.*|job|instance'}}
    metric_relabel_configs:
      - {{source_labels: [__name__, mode], regex: 'node_cpu_seconds_total;(idle|user)|node_memory_MemTotal_bytes;', action: keep}}
      - {{source_labels: [cpu], target_label: core, replacement: 'core$1'}}
      - {{source_labels: [mode], target_label: mode, action: uppercase}}
"""


def test_same_targets_and_series_as_prometheus(node_exporter, tmp_path):
    exe = shutil.which("prometheus")
    assert exe, "Debian's prometheus package is needed (apt-get install prometheus)"
    _, addr = node_exporter
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text(RELABEL_CONFIG.format(addr=addr))
    port = free_port()
    prom = _start([exe, f"--config.file={cfg}", f"--storage.tsdb.path={tmp_path / 'promdata'}",
                   f"--web.listen-address=127.0.0.1:{port}"], f"http://127.0.0.1:{port}/-/ready")
    kms = KmsProcess(tmp_path / "data", ["--scrape-config", str(cfg)]).start()
    try:
        bases = {"kms": kms.url, "prometheus": f"http://127.0.0.1:{port}"}
        for base in bases.values():
            wait_for(lambda b=base: query(b, 'scrape_samples_post_metric_relabeling{job="node"}'), what="a scrape")
        keys = ("labels", "discoveredLabels", "scrapePool", "scrapeUrl", "scrapeInterval", "scrapeTimeout", "health")
        targets = {}
        for name, base in bases.items():
            t = api(base, "/api/v1/targets")
            targets[name] = ([{k: a[k] for k in keys} for a in t["activeTargets"]],
                             sorted(json.dumps(d["discoveredLabels"], sort_keys=True) for d in t["droppedTargets"]))
        assert targets["kms"] == targets["prometheus"]
        labels = targets["kms"][0][0]["labels"]
        assert labels["env"] == "rodP" and labels["team_b"] == "ax" and labels["meta_zone"] == "eu-1"
        series = {}
        for name, base in bases.items():
            got = api(base, "/api/v1/series", **{"match[]": '{job="node"}'})
            series[name] = sorted(json.dumps(s, sort_keys=True) for s in got)
        assert series["kms"] == series["prometheus"] and len(series["kms"]) > 5
        values = {name: query(base, 'scrape_samples_post_metric_relabeling{job="node"}')[0]["value"][1]
                  for name, base in bases.items()}
        assert values["kms"] == values["prometheus"]
    finally:
        kms.stop()
        _stop(prom)


def _exe(name: str) -> str:
    exe = shutil.which(name)
    assert exe, f"Debian's {name} is needed (.ci/run installs it)"
    return exe


@pytest.fixture
def redis_exporter(tmp_path):
    port, exp_port = free_port(), free_port()
    redis = subprocess.Popen([_exe("redis-server"), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no", "--dir", str(tmp_path)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    exp = _start([_exe("prometheus-redis-exporter"), "-redis.addr", f"redis://127.0.0.1:{port}",
                  "-web.listen-address", f"127.0.0.1:{exp_port}"], f"http://127.0.0.1:{exp_port}/metrics")
    yield f"127.0.0.1:{exp_port}"
    _stop(exp)
    _stop(redis)


@pytest.fixture
def postgres_exporter():
    """A real PostgreSQL (initdb as the postgres user, which it requires, in a directory that user
    can reach: pytest's tmp_path is private to root) and its exporter."""
    bindir = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
    assert bindir, "Debian's postgresql package is needed (.ci/run installs it)"
    home = Path(tempfile.mkdtemp(prefix="kms-test-pg-"))
    shutil.chown(home, "postgres")
    data, sock = home / "pg", home / "sock"
    subprocess.run([str(bindir[-1] / "initdb"), "-D", str(data), "--auth=trust", "-U", "postgres"], user="postgres",
                   check=True, capture_output=True)
    subprocess.run(["mkdir", str(sock)], user="postgres", check=True)
    port, exp_port = free_port(), free_port()
    procs = [subprocess.Popen([str(bindir[-1] / "postgres"), "-D", str(data), "-p", str(port), "-k", str(sock),
                               "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"], user="postgres",
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    env = {"DATA_SOURCE_NAME": f"postgresql://postgres@127.0.0.1:{port}/postgres?sslmode=disable", "PATH": "/usr/bin:/bin"}
    try:
        procs.append(subprocess.Popen([_exe("prometheus-postgres-exporter"), f"--web.listen-address=127.0.0.1:{exp_port}"],
                                      env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_http(f"http://127.0.0.1:{exp_port}/metrics", 20, procs[-1])
        yield f"127.0.0.1:{exp_port}"
    finally:
        for p in reversed(procs):
            _stop(p)
        shutil.rmtree(home, ignore_errors=True)


def test_redis_and_postgres_exporters(redis_exporter, postgres_exporter, tmp_path):
    cfg = tmp_path / "kms.yaml"  # scrape sections at the top level of kms's own config file
    cfg.write_text(f"""
metrics: {{lookback_delta: 1m}}
global: {{scrape_interval: 1s}}
scrape_configs:
  - job_name: redis
    static_configs: [{{targets: ['{redis_exporter}'], labels: {{service: cache}}}}]
  - job_name: postgres
    static_configs: [{{targets: ['{postgres_exporter}']}}]
""")
    kms = KmsProcess(tmp_path / "data", ["--config", str(cfg)]).start()
    try:
        base = kms.url
        redis_up = wait_for(lambda: query(base, 'redis_up{job="redis",service="cache"}'), what="redis_up")
        assert redis_up[0]["value"][1] == "1"
        assert float(query(base, 'redis_connected_clients{job="redis"}')[0]["value"][1]) >= 1
        pg_up = wait_for(lambda: query(base, 'pg_up{job="postgres"}'), what="pg_up")
        assert pg_up[0]["value"][1] == "1"
        sizes = wait_for(lambda: query(base, 'pg_database_size_bytes{job="postgres",datname="postgres"}'), what="db size")
        assert float(sizes[0]["value"][1]) > 1e6
        up = {r["metric"]["job"]: r["value"][1] for r in query(base, "up")}
        assert up == {"redis": "1", "postgres": "1"}
    finally:
        kms.stop()


TRICKY = """# HELP tricky_total Escapes: \\\\ and \\n in help.
# TYPE tricky_total counter
tricky_total{path="/a b",quote="say \\"hi\\"",brace="}",nl="x\\ny",back="\\\\"} 3
tricky_total{job="exposed",instance="exposed:1",exported_job="already"} 4
tricky_gauge NaN
tricky_gauge{empty=""} 7
{"tricky.dotted", a="1"} 1
tricky_info{__meta_x="y"} 1
"""


def test_same_series_as_prometheus_for_tricky_exposition(exporters, tmp_path):
    exe = shutil.which("prometheus")
    assert exe, "Debian's prometheus package is needed (apt-get install prometheus)"
    ex = exporters(body=TRICKY.replace('{"tricky.dotted", a="1"} 1\n', ""))  # Prometheus 2.42 has no UTF-8 names
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text(f"""
global: {{scrape_interval: 1s}}
scrape_configs:
  - job_name: plain
    static_configs: [{{targets: ['{ex.address}']}}]
  - job_name: honor
    honor_labels: true
    static_configs: [{{targets: ['{ex.address}']}}]
""")
    port = free_port()
    prom = _start([exe, f"--config.file={cfg}", f"--storage.tsdb.path={tmp_path / 'promdata'}",
                   f"--web.listen-address=127.0.0.1:{port}"], f"http://127.0.0.1:{port}/-/ready")
    kms = KmsProcess(tmp_path / "data", ["--scrape-config", str(cfg)]).start()
    try:
        bases = {"kms": kms.url, "prometheus": f"http://127.0.0.1:{port}"}
        for base in bases.values():
            wait_for(lambda b=base: len(query(b, "scrape_samples_scraped")) == 2, what="both jobs scraped")
        got = {}
        for name, base in bases.items():
            series = api(base, "/api/v1/series", **{"match[]": '{__name__=~"tricky.*|up|scrape_.*"}'})
            values = {json.dumps(r["metric"], sort_keys=True): r["value"][1] for r in query(base, '{__name__=~"tricky.*|up"}')}
            got[name] = (sorted(json.dumps(s, sort_keys=True) for s in series), values)
        assert got["kms"] == got["prometheus"]
        ups = {k: v for k, v in got["kms"][1].items() if '"up"' in k}
        assert sorted(ups.values()) == ["1", "1"], ups  # both scrapes succeeded: the comparison means something
        renamed = [json.loads(s) for s in got["kms"][0] if "exposed" in s]
        by_job = {r["job"]: r for r in renamed}
        assert by_job["exposed"]["instance"] == "exposed:1"  # honor_labels: the exposed values win
        # an exposed label taken by a target label moves to the first free exported_* name
        assert {"job": "plain", "exported_job": "already", "exported_instance": "exposed:1",
                "exported_exported_job": "exposed"}.items() <= by_job["plain"].items()
        tricky = [json.loads(s) for s in got["kms"][0] if "brace" in s]
        assert tricky[0]["quote"] == 'say "hi"' and tricky[0]["nl"] == "x\ny" and tricky[0]["back"] == "\\"
    finally:
        kms.stop()
        _stop(prom)


def test_openmetrics_exemplars_reach_the_exemplar_api(exporters, tmp_path):
    now = time.time()
    ex = exporters(content_type="application/openmetrics-text; version=1.0.0; charset=utf-8", body=(
        "# TYPE http_request_duration_seconds histogram\n# UNIT http_request_duration_seconds seconds\n"
        f'http_request_duration_seconds_bucket{{le="0.5"}} 3 # {{trace_id="4bf92f3577b34da6a3ce929d0e0e4736"}} 0.25 {now:.3f}\n'
        'http_request_duration_seconds_bucket{le="+Inf"} 4\n'
        "http_request_duration_seconds_sum 1.5\nhttp_request_duration_seconds_count 4\n# EOF\n"))
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text(f"global: {{scrape_interval: 1s}}\nscrape_configs:\n  - job_name: om\n"
                   f"    static_configs: [{{targets: ['{ex.address}']}}]\n")
    kms = KmsProcess(tmp_path / "data", ["--scrape-config", str(cfg)]).start()
    try:
        wait_for(lambda: query(kms.url, 'http_request_duration_seconds_count{job="om"}'), what="a scrape")
        assert "openmetrics" in ex.requests[0]["Accept"].split(",")[0]
        got = wait_for(lambda: api(kms.url, "/api/v1/query_exemplars", query="http_request_duration_seconds_bucket",
                                   start=now - 60, end=now + 60), what="the exemplar")
        (e,) = got[0]["exemplars"]
        assert e["labels"] == {"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736"} and float(e["value"]) == 0.25
        assert got[0]["seriesLabels"]["le"] == "0.5" and got[0]["seriesLabels"]["job"] == "om"
    finally:
        kms.stop()
