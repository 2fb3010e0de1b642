"""The notifier posts to Alertmanager's API v2 and to plain webhooks (a local HTTP server here)."""

from __future__ import annotations

import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from kms.rules import Notifier


@pytest.fixture
def receiver():
    got: list[tuple[str, dict, object]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's naming
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            got.append((self.path, dict(self.headers), body))
            self.send_response(500 if self.path.startswith("/broken") else 200)
            self.end_headers()

        def log_message(self, *args):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}", got
    srv.shutdown()


FIRING = {"labels": {"alertname": "A", "job": "api"}, "annotations": {"s": "x"}, "startsAt": "2030-01-01T00:00:00.000Z",
          "endsAt": "2999-01-01T00:00:00.000Z", "generatorURL": "http://kms/graph"}
RESOLVED = {**FIRING, "labels": {"alertname": "B"}, "endsAt": "2020-01-01T00:00:00.000Z"}


def test_alertmanager_and_webhook_get_their_shapes(receiver):
    url, got = receiver
    n = Notifier([url + "/am/", url + "/broken"], [url + "/hook"])
    n.start()
    try:
        n.send("team-a", [FIRING, RESOLVED])
        deadline = time.monotonic() + 5
        while len(got) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        n.stop()
    by_path = {p: (h, b) for p, h, b in got}
    headers, body = by_path["/am/api/v2/alerts"]
    assert body == [FIRING, RESOLVED] and headers["X-Scope-OrgID"] == "team-a"
    _, hook = by_path["/hook"]
    assert hook["version"] == "4" and hook["status"] == "firing"
    assert [(a["labels"]["alertname"], a["status"]) for a in hook["alerts"]] == [("A", "firing"), ("B", "resolved")]
    assert n.sent == 4 and n.failed == 2  # the broken Alertmanager's failure is counted, the others went out


def test_without_targets_nothing_is_queued():
    n = Notifier([])
    n.start()
    n.send("t", [FIRING])
    assert not n.enabled and len(n._queue) == 0
    n.stop()


def test_alertmanagers_from_a_file_sd_file_follow_its_changes(receiver, tmp_path):
    url, got = receiver
    host = url.removeprefix("http://")
    sd = tmp_path / "am.yml"
    sd.write_text(f"- targets: ['{host}']\n  labels: {{__alerts_path_prefix__: /one}}\n")
    n = Notifier([f"file:{sd}"])
    n.start()
    try:
        def send_and_wait(count: int) -> None:
            n.send("t", [FIRING])
            deadline = time.monotonic() + 5
            while len(got) < count and time.monotonic() < deadline:
                time.sleep(0.01)

        send_and_wait(1)
        sd.write_text(f'[{{"targets": ["{host}"], "labels": {{"__alerts_path_prefix__": "/two"}}}}]')
        os.utime(sd, (time.time() + 5, time.time() + 5))  # a new mtime even within the same clock tick
        send_and_wait(2)
        sd.write_text("- targets: [")  # broken: the last good list stays
        os.utime(sd, (time.time() + 10, time.time() + 10))
        send_and_wait(3)
    finally:
        n.stop()
    assert [p for p, _, _ in got] == ["/one/api/v2/alerts", "/two/api/v2/alerts", "/two/api/v2/alerts"]
