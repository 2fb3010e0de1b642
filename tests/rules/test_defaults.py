"""The default rule set (stack + Kubernetes): it loads, every alert is documented, and the alerts
fire on the conditions they name and stay quiet otherwise."""

from __future__ import annotations

import pytest

from kms.rules import Group
from kms.rules.defaults import rule_files, rule_groups
from kms.rules.load import load_files

T0 = 1_700_000_000_000
MIN = 60_000


def groups(env) -> dict[str, Group]:
    specs = load_files([str(p) for p in rule_files()], 60.0)
    return {s.name: Group(s, "anonymous", env.ctx(resend_s=60.0)) for s in specs}


def run(groups_: list[Group], start_ms: int, minutes: int, feed) -> None:
    for m in range(minutes + 1):
        t = start_ms + m * MIN
        feed(t - 1000)
        for g in groups_:
            g.evaluate(t)


def firing(g: Group, name: str) -> list[dict]:
    return [a.labels for r in g.rules if r.spec.name == name and r.alerts for a in r.alerts.live()
            if a.state == "firing"]


def test_every_default_rule_loads_and_every_alert_is_documented():
    specs = load_files([str(p) for p in rule_files()], 60.0)
    assert {s.name for s in specs} >= {"kms-stack", "kms-applications", "kubernetes-targets",
                                       "kubernetes-nodes", "kubernetes-workloads"}
    alerts = [r for s in specs for r in s.rules if r.kind == "alerting"]
    assert len(alerts) >= 10
    for r in alerts:
        assert r.labels.get("severity") in {"warning", "critical"}, r.name
        assert r.annotations.get("summary") and r.annotations.get("description"), r.name
    assert [g["name"] for g in rule_groups("kubernetes")][0] == "kubernetes-targets"


def test_high_error_rate_fires_for_the_failing_service_only(env):
    g = groups(env)["kms-applications"]
    calls = {"checkout": 0.0, "catalog": 0.0}

    def feed(t):
        for service, err_share in (("checkout", 0.2), ("catalog", 0.01)):
            calls[service] += 60.0  # 1 request/s
            for status, share in (("STATUS_CODE_ERROR", err_share), ("STATUS_CODE_UNSET", 1 - err_share)):
                env.source.add({"__name__": "traces_spanmetrics_calls_total", "service": service,
                                "span_kind": "SPAN_KIND_SERVER", "status_code": status}, t, calls[service] * share)

    run([g], T0, 18, feed)
    fired = firing(g, "HighErrorRate")
    assert [a["service"] for a in fired] == ["checkout"]
    assert fired[0]["severity"] == "warning"


def test_filesystem_filling_up_needs_both_low_space_and_a_falling_trend(env):
    g = groups(env)["kubernetes-nodes"]
    size = 100e9

    def feed(t):
        hours = (t - T0) / 3_600_000
        for inst, avail in (("filling", 20e9 - hours * 2e9), ("steady", 10e9)):
            base = {"instance": inst, "device": "/dev/sda1", "fstype": "ext4", "mountpoint": "/"}
            env.source.add({"__name__": "node_filesystem_avail_bytes", **base}, t, max(avail, 0.0))
            env.source.add({"__name__": "node_filesystem_size_bytes", **base}, t, size)
            env.source.add({"__name__": "node_filesystem_readonly", **base}, t, 0.0)

    # 20 GB free, losing 2 GB/h: below 15% after 2.5 h; held for the 1 h `for` afterwards
    run([g], T0, 4 * 60, feed)
    assert [a["instance"] for a in firing(g, "NodeFilesystemSpaceFillingUp")] == ["filling"]
    assert firing(g, "NodeFilesystemAlmostOutOfSpace") == []  # 12 GB of 100 GB left: above 5%


@pytest.mark.parametrize("down,fires", [(3, True), (0, False)])
def test_target_down_counts_the_share_of_a_jobs_targets(env, down, fires):
    g = groups(env)["kubernetes-targets"]

    def feed(t):
        for i in range(10):
            env.source.add({"__name__": "up", "job": "node-exporter", "namespace": "monitoring",
                            "service": "node-exporter", "instance": f"n{i}"}, t, 0.0 if i < down else 1.0)

    run([g], T0, 12, feed)
    assert bool(firing(g, "TargetDown")) is fires


def test_ingestion_refused_fires_on_discarded_items(env):
    g = groups(env)["kms-stack"]
    total = [0.0]

    def feed(t):
        total[0] += 600.0
        env.source.add({"__name__": "kms_discarded_items_total", "job": "kms", "signal": "metrics",
                        "reason": "too_many_series"}, t, total[0])

    run([g], T0, 16, feed)
    (a,) = firing(g, "IngestionRefused")
    assert a["reason"] == "too_many_series"
