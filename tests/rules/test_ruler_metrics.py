"""The ruler's own metrics, under Prometheus's names, as /metrics serves them."""

from __future__ import annotations

import httpx
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from kms.rules import Notifier, Ruler, RulerSettings
from kms.rules.defaults import RULE_FILES
from kms.rules.metrics import RulerCollector

T0 = 1_700_000_000_000


def scrape(registry: CollectorRegistry) -> dict[tuple[str, tuple], float]:
    text = generate_latest(registry).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def test_group_counters_and_gauges(env):
    ruler = Ruler(RulerSettings([str(RULE_FILES["stack"])], "t1", 60.0, 0), env.ctx())
    ruler.reload()
    reg = CollectorRegistry()
    reg.register(RulerCollector(ruler, Notifier([])))
    (apps,) = [g for g in ruler.groups() if g.spec.name == "kms-applications"]
    apps.evaluate(T0)
    apps.evaluate(T0 + 180_000)  # two intervals skipped
    m = scrape(reg)
    key = (("rule_group", f"{RULE_FILES['stack']};kms-applications"), ("tenant", "t1"))
    assert m[("prometheus_rule_group_rules", key)] == 3
    assert m[("prometheus_rule_group_interval_seconds", key)] == 60
    assert m[("prometheus_rule_evaluations_total", key)] == 6
    assert m[("prometheus_rule_evaluation_failures_total", key)] == 0
    assert m[("prometheus_rule_group_iterations_total", key)] == 2
    assert m[("prometheus_rule_group_iterations_missed_total", key)] == 2
    assert m[("prometheus_rule_group_last_evaluation_timestamp_seconds", key)] == (T0 + 180_000) / 1000


def test_failures_and_notifications_are_counted(env):
    ruler = Ruler(RulerSettings([str(RULE_FILES["stack"])], "t1", 60.0, 0), env.ctx())
    ruler.reload()
    (stack,) = [g for g in ruler.groups() if g.spec.name == "kms-stack"]
    env.source.add({"__name__": "up", "job": "x"}, T0 - 1000, 1.0)
    stack.ctx.promql = lambda *_: (_ for _ in ()).throw(RuntimeError("query failed"))
    stack.evaluate(T0)
    notifier = Notifier(["http://127.0.0.1:9"], timeout_s=0.5)  # nothing listens: every send fails
    notifier.start()
    notifier.send("t1", [{"labels": {"alertname": "A"}}])
    notifier.stop()
    reg = CollectorRegistry()
    reg.register(RulerCollector(ruler, notifier))
    m = scrape(reg)
    key = (("rule_group", f"{RULE_FILES['stack']};kms-stack"), ("tenant", "t1"))
    assert m[("prometheus_rule_evaluation_failures_total", key)] == len(stack.rules) == 4
    am = (("alertmanager", "http://127.0.0.1:9/api/v2/alerts"),)
    assert m[("prometheus_notifications_errors_total", am)] == 1
    assert m[("prometheus_notifications_sent_total", am)] == 0
    assert m[("prometheus_notifications_queue_length", ())] == 0


def test_kms_up_serves_them_on_metrics(tmp_path):
    from kms.testing import KmsProcess

    kms = KmsProcess(tmp_path / "data", ["--rules", str(RULE_FILES["stack"])]).start()
    try:
        text = httpx.get(f"{kms.url}/metrics").text
    finally:
        kms.kill()
    assert f'prometheus_rule_group_rules{{rule_group="{RULE_FILES["stack"]};kms-stack",tenant="anonymous"}} 4.0' in text
    assert "prometheus_notifications_queue_capacity 10000.0" in text
