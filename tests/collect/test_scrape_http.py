"""The scrape manager against real HTTP(S) endpoints on 127.0.0.1: headers, auth, TLS, timeouts,
file SD refresh with staleness, target_limit, OpenMetrics negotiation and the targets data."""

from __future__ import annotations

import base64
import json
import ssl

import pytest

from kms.collect import ScrapeManager, load_jobs, targets_data, targets_metadata
from kms.collect.exposition import ACCEPT
from kms.collect.loop import offset_s
from kms.collect.targets import populate
from kms.metrics.promql.model import Matcher
from kms.metrics.samples import is_stale


def run(sink, jobs: list[dict], **global_) -> ScrapeManager:
    m = ScrapeManager(load_jobs({"scrape_interval": "200ms", **global_}, jobs), sink, poll_s=0.1)
    m.start()
    return m


@pytest.fixture
def manager():
    made: list[ScrapeManager] = []

    def start(sink, jobs, **g):
        m = run(sink, jobs, **g)
        made.append(m)
        return m

    yield start
    for m in made:
        m.stop()


def up_values(sink, **match) -> list[float]:
    return [v for lb, _, v in sink.samples("up") if all(lb.get(k) == x for k, x in match.items())]


def test_scrape_headers_report_and_targets_page(exporters, sink, manager):
    ex = exporters(body="# HELP m A metric.\n# TYPE m gauge\nm{a=\"1\"} 3\n")
    m = manager(sink, [{"job_name": "j", "static_configs": [{"targets": [ex.address], "labels": {"env": "t"}}],
                        "params": {"x": ["1"]}}])
    sink.wait(lambda: sink.samples("m"))
    req = ex.requests[0]
    assert req["Accept"] == ACCEPT and req["path"] == "/metrics?x=1"
    assert float(req["X-Prometheus-Scrape-Timeout-Seconds"]) == pytest.approx(0.2)
    labels, _, value = sink.samples("m")[0]
    assert value == 3 and labels == {"a": "1", "env": "t", "instance": ex.address, "job": "j"}
    sink.wait(lambda: m.loops()[0].health == "up")
    data = targets_data(m)
    (t,) = data["activeTargets"]
    assert t["health"] == "up" and t["scrapePool"] == "j" and t["scrapeUrl"] == f"http://{ex.address}/metrics?x=1"
    assert t["labels"] == {"env": "t", "instance": ex.address, "job": "j"}
    assert t["discoveredLabels"]["__address__"] == ex.address and t["scrapeInterval"] == "200ms"
    assert t["lastScrape"].endswith("Z") and t["lastScrapeDuration"] > 0 and t["lastError"] == ""
    assert targets_data(m, "dropped")["activeTargets"] == []
    md = targets_metadata(m, [Matcher("job", "=", "j")], "m")
    assert md == [{"target": t["labels"], "metric": "m", "type": "gauge", "help": "A metric.", "unit": ""}]
    assert targets_metadata(m, [Matcher("job", "=", "other")]) == []


def test_dead_target_and_timeout_are_down_with_error(exporters, sink, manager):
    slow = exporters(delay_s=0.5)
    m = manager(sink, [{"job_name": "dead", "static_configs": [{"targets": ["127.0.0.1:1"]}]},
                       {"job_name": "slow", "scrape_timeout": "100ms", "static_configs": [{"targets": [slow.address]}]}])
    sink.wait(lambda: up_values(sink, job="dead") and up_values(sink, job="slow"))
    assert set(up_values(sink, job="dead")) == {0.0} and set(up_values(sink, job="slow")) == {0.0}
    errors = {lp.target.job: lp.last_error for lp in m.loops()}
    assert "127.0.0.1:1" in errors["dead"] and errors["slow"] == "context deadline exceeded"
    assert all(lp.health == "down" for lp in m.loops())


@pytest.mark.parametrize("cfg, header", [
    ({"basic_auth": {"username": "u", "password": "p w"}}, "Basic " + base64.b64encode(b"u:p w").decode()),
    ({"bearer_token": "tok"}, "Bearer tok"),
    ({"authorization": {"type": "Token", "credentials": "abc"}}, "Token abc"),
])
def test_auth_headers(exporters, sink, manager, cfg, header):
    ex = exporters(authorization=header)
    bad = exporters(authorization=header + "x")
    manager(sink, [{"job_name": "a", "static_configs": [{"targets": [ex.address, bad.address]}], **cfg}])
    sink.wait(lambda: 1.0 in up_values(sink, instance=ex.address) and up_values(sink, instance=bad.address))
    assert set(up_values(sink, instance=bad.address)) == {0.0}


def test_credentials_files_are_reread(exporters, sink, manager, tmp_path):
    token = tmp_path / "token"
    token.write_text("one\n")
    pw = tmp_path / "pw"
    pw.write_text("secret")
    ex = exporters(authorization="Bearer one")
    ex2 = exporters(authorization="Basic " + base64.b64encode(b"me:secret").decode())
    m = manager(sink, [{"job_name": "t", "bearer_token_file": str(token), "static_configs": [{"targets": [ex.address]}]},
                       {"job_name": "b", "basic_auth": {"username": "me", "password_file": str(pw)},
                        "static_configs": [{"targets": [ex2.address]}]}])
    sink.wait(lambda: 1.0 in up_values(sink, job="t") and 1.0 in up_values(sink, job="b"))
    token.write_text("two")
    ex.authorization = "Bearer two"
    n = len(ex.requests)
    sink.wait(lambda: len(ex.requests) > n + 1)
    assert m.loops("t")[0].health == "up"


def _server_tls(certs, client_auth: bool = False) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(certs.server_cert, certs.server_key)
    if client_auth:
        ctx.load_verify_locations(certs.ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def test_tls_ca_server_name_insecure_and_client_certs(exporters, sink, manager, certs):
    ex = exporters(tls=_server_tls(certs))
    mtls = exporters(tls=_server_tls(certs, client_auth=True))
    target = {"static_configs": [{"targets": [ex.address]}], "scheme": "https"}
    m = manager(sink, [
        {"job_name": "named", **target, "tls_config": {"ca_file": str(certs.ca), "server_name": "exporter.test"}},
        {"job_name": "wrongname", **target, "tls_config": {"ca_file": str(certs.ca)}},  # cert is for exporter.test
        {"job_name": "noca", **target},
        {"job_name": "insecure", **target, "tls_config": {"insecure_skip_verify": True}},
        {"job_name": "mtls", "scheme": "https", "static_configs": [{"targets": [mtls.address]}],
         "tls_config": {"ca_file": str(certs.ca), "server_name": "exporter.test", "cert_file": str(certs.client_cert),
                        "key_file": str(certs.client_key)}},
        {"job_name": "mtls_nocert", "scheme": "https", "static_configs": [{"targets": [mtls.address]}],
         "tls_config": {"ca_file": str(certs.ca), "server_name": "exporter.test"}},
    ])
    good, bad = ("named", "insecure", "mtls"), ("wrongname", "noca", "mtls_nocert")
    # handshakes are served one at a time by the test server: a first scrape may time out, so
    # wait for a success of each good job; a bad job must never succeed
    try:
        sink.wait(lambda: all(1.0 in up_values(sink, job=j) for j in good) and all(up_values(sink, job=j) for j in bad), 20)
    except AssertionError:
        raise AssertionError({lp.target.job: (lp.health, lp.last_error, lp.scrapes) for lp in m.loops()}) from None
    assert all(set(up_values(sink, job=j)) == {0.0} for j in bad)
    errors = {lp.target.job: lp.last_error for lp in m.loops()}
    assert "certificate" in errors["wrongname"].lower() or "hostname" in errors["wrongname"].lower()


def test_openmetrics_negotiated_by_content_type(exporters, sink, manager):
    ex = exporters(body='# TYPE c counter\nc_total 4 # {trace_id="abc"} 1\n# EOF\n',
                   content_type="application/openmetrics-text; version=1.0.0; charset=utf-8")
    manager(sink, [{"job_name": "om", "static_configs": [{"targets": [ex.address]}]}])
    sink.wait(lambda: sink.samples("c_total"))
    ex_batches = [b for b in sink.batches if b.exemplars]
    assert ex_batches and ex_batches[0].exemplars[0].labels == (("trace_id", "abc"),)


def test_file_sd_refresh_and_staleness_when_a_target_goes(exporters, sink, manager, tmp_path):
    a, b = exporters(body="from_a 1\n"), exporters(body="from_b 1\n")
    sd = tmp_path / "targets.json"
    sd.write_text(json.dumps([{"targets": [a.address], "labels": {"team": "x"}}]))
    m = manager(sink, [{"job_name": "f", "file_sd_configs": [{"files": [str(tmp_path / "*.json")]}]}])
    sink.wait(lambda: sink.samples("from_a"))
    assert sink.samples("from_a")[0][0]["team"] == "x"
    assert targets_data(m)["activeTargets"][0]["discoveredLabels"]["__meta_filepath"] == str(sd)
    sd.write_text(json.dumps([{"targets": [b.address]}]))
    sink.wait(lambda: sink.samples("from_b"))
    stale = sink.wait(lambda: [v for _, _, v in sink.samples("from_a") if is_stale([v])[0]])
    assert len(stale) == 1
    assert any(is_stale([v])[0] for lb, _, v in sink.samples("up") if lb["instance"] == a.address)
    assert [lp.target.labels for lp in m.loops()] == [(("instance", b.address), ("job", "f"))]
    # a broken file keeps the targets it had
    sd.write_text("[{not json")
    n = len(b.requests)
    sink.wait(lambda: len(b.requests) > n + 1)
    assert len(m.loops()) == 1


def test_series_that_disappear_get_a_staleness_marker(exporters, sink, manager):
    ex = exporters(body="stays 1\ngoes 1\n")
    manager(sink, [{"job_name": "s", "static_configs": [{"targets": [ex.address]}]}])
    sink.wait(lambda: sink.samples("goes"))
    ex.body = "stays 2\n"
    stale = sink.wait(lambda: [v for _, _, v in sink.samples("goes") if is_stale([v])[0]])
    assert len(stale) == 1 and not any(is_stale([v])[0] for _, _, v in sink.samples("stays"))


def test_relabeling_drops_targets_and_target_limit(exporters, sink, manager):
    a, b = exporters(), exporters()
    m = manager(sink, [
        {"job_name": "r", "static_configs": [{"targets": [a.address, b.address]}],
         "relabel_configs": [{"source_labels": ["__address__"], "regex": a.address, "action": "drop"}]},
        {"job_name": "lim", "target_limit": 1, "static_configs": [{"targets": [a.address, b.address]}]},
    ])
    data = targets_data(m, "any", "r")
    assert [t["labels"]["instance"] for t in data["activeTargets"]] == [b.address]
    assert [t["discoveredLabels"]["__address__"] for t in data["droppedTargets"]] == [a.address]
    assert data["droppedTargetCounts"] == {"r": 1}
    sink.wait(lambda: len(up_values(sink, job="lim")) >= 2)
    assert set(up_values(sink, job="lim")) == {0.0}
    assert all("target_limit exceeded" in lp.last_error for lp in m.loops("lim"))


def test_offsets_spread_targets_deterministically():
    (j,) = load_jobs({"scrape_interval": "15s"}, [{"job_name": "j"}])
    targets = [populate(j, {"__address__": f"h{i}:9100"}) for i in range(200)]
    offs = [offset_s(t, 15) for t in targets]
    assert all(0 <= o < 15 for o in offs) and offs == [offset_s(t, 15) for t in targets]
    assert len({int(o) for o in offs}) == 15  # every second of the interval is used


def test_loops_survive_store_failures(exporters, manager, sink):
    class Flaky(type(sink)):  # the recording sink, failing its first three appends
        calls = 0

        def __call__(self, batch):
            self.calls += 1
            if self.calls <= 3:
                raise RuntimeError("BUG: store exploded")
            return super().__call__(batch)

    ex = exporters(body="ok_metric 1\n")
    sink = Flaky()
    m = manager(sink, [{"job_name": "f", "static_configs": [{"targets": [ex.address]}]}])
    sink.wait(lambda: sink.samples("ok_metric"))
    sink.wait(lambda: m.loops()[0].health == "up" and m.loops()[0].last_error == "")
    assert sink.calls > 3
