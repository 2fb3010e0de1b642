"""The ruler against real parts: ``kms up --rules`` evaluates remote-written data and pushed log
lines, and Debian's Alertmanager (started here on a free port) receives the alerts, with a
webhook receiver in this test seeing them fire and resolve."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from kms.metrics.remote_write import WriteRequest, encode_remote_write
from kms.testing import KmsProcess, free_port, wait_http

pytestmark = pytest.mark.slow

RW = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
      "X-Prometheus-Remote-Write-Version": "0.1.0"}

RULES = """
groups:
  - name: e2e
    interval: 1s
    rules:
      - record: job:errors:sum
        expr: sum by (job) (errors_total)
      - alert: ErrorsHigh
        expr: job:errors:sum > 10
        labels: {severity: page}
        annotations: {summary: "{{ $labels.job }} has {{ $value | humanize }} errors in {{ $externalLabels.cluster }}"}
      - alert: ErrorLines
        expr: sum by (app) (count_over_time({app="web"} |= "error" [1m])) > 2
"""


class Hook:
    """A tiny HTTP server recording Alertmanager's webhook posts."""

    def __init__(self) -> None:
        self.posts: list[tuple[float, dict]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                hook.posts.append((time.monotonic(), json.loads(body)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def statuses(self, alertname: str) -> list[str]:
        return [a["status"] for _, p in self.posts for a in p["alerts"] if a["labels"]["alertname"] == alertname]


@pytest.fixture
def alertmanager(tmp_path):
    exe = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    assert exe, "Debian's prometheus-alertmanager package is needed (apt-get install prometheus-alertmanager)"
    hook = Hook()
    port = free_port()
    cfg = tmp_path / "am.yml"
    cfg.write_text(f"""
route: {{receiver: hook, group_by: [alertname], group_wait: 0s, group_interval: 1s, repeat_interval: 1h}}
receivers:
  - name: hook
    webhook_configs: [{{url: "{hook.url}", send_resolved: true}}]
""")
    proc = subprocess.Popen([exe, f"--config.file={cfg}", f"--storage.path={tmp_path / 'am'}",
                             f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/-/ready", 20, proc)
    yield url, hook
    proc.terminate()
    proc.wait(10)
    hook.server.shutdown()


def push(kms: KmsProcess, value: float, job: str = "api") -> float:
    req = WriteRequest()
    ts = req.timeseries.add()
    for name, v in (("__name__", "errors_total"), ("job", job)):
        ts.labels.add(name=name, value=v)
    ts.samples.add(value=value, timestamp=int(time.time() * 1000))
    assert httpx.post(kms.url + "/api/v1/push", content=encode_remote_write(req), headers=RW).status_code == 204
    return time.monotonic()


def wait_for(fn, timeout_s: float, step_s: float = 0.05):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = fn()
        if got:
            return got
        time.sleep(step_s)
    raise AssertionError(f"condition not met within {timeout_s}s")


def am_alerts(am_url: str, name: str) -> list[dict]:
    return [a for a in httpx.get(am_url + "/api/v2/alerts", timeout=5).json() if a["labels"]["alertname"] == name]


def test_alert_reaches_alertmanager_fires_and_resolves(tmp_path, alertmanager):
    am_url, hook = alertmanager
    rules = tmp_path / "rules.yml"
    rules.write_text(RULES)
    kms = KmsProcess(tmp_path / "data", ["--rules", str(rules), "--alertmanager-url", am_url,
                                         "--external-label", "cluster=e2e"]).start()
    try:
        push(kms, 1)
        time.sleep(2.2)  # two evaluations with the condition false: nothing is sent
        assert am_alerts(am_url, "ErrorsHigh") == []
        t_cond = push(kms, 50)
        (alert,) = wait_for(lambda: am_alerts(am_url, "ErrorsHigh"), 5)
        t_am = time.monotonic()
        assert alert["labels"] == {"alertname": "ErrorsHigh", "job": "api", "severity": "page", "cluster": "e2e"}
        assert alert["annotations"] == {"summary": "api has 50 errors in e2e"}
        assert alert["status"]["state"] == "active" and "/graph?g0.expr=" in alert["generatorURL"]
        wait_for(lambda: "firing" in hook.statuses("ErrorsHigh"), 5)
        t_hook_firing = time.monotonic()
        # the recording rule is a series like any other
        r = httpx.get(kms.url + "/api/v1/query", params={"query": "job:errors:sum"}).json()
        assert [(s["metric"], s["value"][1]) for s in r["data"]["result"]] == [
            ({"__name__": "job:errors:sum", "job": "api"}, "50")]
        alerts = httpx.get(kms.url + "/prometheus/api/v1/alerts").json()["data"]["alerts"]
        assert [(a["labels"]["alertname"], a["state"]) for a in alerts] == [("ErrorsHigh", "firing")]
        t_clear = push(kms, 0)
        wait_for(lambda: "resolved" in hook.statuses("ErrorsHigh"), 6)
        t_resolved = time.monotonic()
        assert am_alerts(am_url, "ErrorsHigh") == []  # Alertmanager no longer lists it as active
        r = httpx.get(kms.url + "/api/v1/query", params={"query": "ALERTS"}).json()
        assert r["data"]["result"] == []  # ALERTS went stale
        timeline = (f"condition true -> in Alertmanager {t_am - t_cond:.2f}s, -> webhook firing "
                    f"{t_hook_firing - t_cond:.2f}s; condition cleared -> webhook resolved {t_resolved - t_clear:.2f}s")
        print("alert timeline:", timeline, file=sys.stderr)
        assert t_am - t_cond <= 2.5, timeline  # two 1 s intervals, plus scheduling slack

        # a LogQL alert on error lines, in the same group
        now_ns = time.time_ns()
        lines = [[str(now_ns + i), f"level=error msg=boom {i}"] for i in range(3)] + [[str(now_ns + 9), "level=info ok"]]
        body = {"streams": [{"stream": {"app": "web"}, "values": lines}]}
        assert httpx.post(kms.url + "/loki/api/v1/push", json=body).status_code == 204
        (err,) = wait_for(lambda: am_alerts(am_url, "ErrorLines"), 5)
        assert err["labels"] == {"alertname": "ErrorLines", "app": "web", "cluster": "e2e"}

        groups = httpx.get(kms.url + "/api/v1/rules", params={"type": "alert"}).json()["data"]["groups"]
        assert [r["name"] for r in groups[0]["rules"]] == ["ErrorsHigh", "ErrorLines"]
        assert groups[0]["file"] == str(rules) and groups[0]["interval"] == 1
    finally:
        kms.stop()


def test_restart_keeps_for_state(tmp_path):
    rules = tmp_path / "rules.yml"
    rules.write_text("""
groups:
  - name: held
    interval: 1s
    rules:
      - alert: Held
        expr: errors_total > 10
        for: 3s
""")
    args = ["--rules", str(rules), "--rules-for-grace-period", "1s"]
    kms = KmsProcess(tmp_path / "data", args).start()
    try:
        push(kms, 50)

        def firing():
            alerts = httpx.get(kms.url + "/api/v1/alerts").json()["data"]["alerts"]
            return [a for a in alerts if a["state"] == "firing"]

        (before,) = wait_for(firing, 8)
    finally:
        assert kms.stop() == 0
    kms = KmsProcess(tmp_path / "data", args).start()
    try:
        (after,) = wait_for(lambda: httpx.get(kms.url + "/api/v1/alerts").json()["data"]["alerts"], 5)
        # firing at the first evaluation after the restart, active since before it (not pending again for 3 s)
        assert after["state"] == "firing" and after["activeAt"][:19] == before["activeAt"][:19]
    finally:
        kms.stop()


def test_bad_rule_file_is_refused_naming_file_group_and_rule(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("groups:\n- name: broken\n  rules:\n  - record: ok\n    expr: up\n  - alert: Oops\n    expr: 'sum(up'\n")
    out = subprocess.run([sys.executable, "-m", "kms.cli", "up", "--data-dir", str(tmp_path / "d"), "--rules", str(bad)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert f'{bad}: group "broken", rule 2 ("Oops"): expr: parse error' in out.stderr, out.stderr


def test_sighup_reloads_the_rule_files(tmp_path):
    import signal

    rules = tmp_path / "rules.yml"
    rules.write_text("groups:\n- name: one\n  rules:\n  - record: a\n    expr: '1'\n")
    kms = KmsProcess(tmp_path / "data", ["--rules", str(rules), "--rules-poll-interval", "0"]).start()
    try:
        def names():
            return [g["name"] for g in httpx.get(kms.url + "/api/v1/rules").json()["data"]["groups"]]

        assert names() == ["one"]
        rules.write_text("groups:\n- name: two\n  rules:\n  - record: b\n    expr: '2'\n")
        kms.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: names() == ["two"], 5)
        rules.write_text("groups:\n- name: three\n  rules:\n  - record: c\n    expr: 'sum('\n")
        kms.proc.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        assert names() == ["two"] and kms.proc.poll() is None  # a broken file keeps the running rules
    finally:
        kms.stop()
