"""Group evaluation against an in-memory source: recording rules, staleness, alert states,
ALERTS series, limits, for-state restore, notification timing."""

from __future__ import annotations

import math

import pytest

from kms.metrics.promql import is_stale
from kms.rules import Group, parse_groups
from kms.rules.group import eval_offset_ms

T0 = 1_700_000_000_000  # ms; evaluations every 10 s from here


def group(text: str, env, **ctx) -> Group:
    (spec,) = parse_groups(text, "rules.yml", 10.0, single=True)
    return Group(spec, "anonymous", env.ctx(**ctx))


def feed(env, t_ms: int, **values: float) -> None:
    for inst, v in values.items():
        env.source.add({"__name__": "errors", "job": "api", "instance": inst}, t_ms, v)


RECORD = """
name: rec
rules:
  - record: job:errors:sum
    expr: sum by (job) (errors)
    labels: {team: core}
  - record: job:errors:double
    expr: job:errors:sum * 2
  - record: instance:errors
    expr: errors
    labels: {job: ""}
"""


def test_recording_rules_write_series_later_rules_see_them_and_stale_when_gone(env):
    g = group(RECORD, env)
    feed(env, T0 - 1000, a=1, b=2)
    g.evaluate(T0)
    assert env.value("job:errors:sum", T0) == {(("__name__", "job:errors:sum"), ("job", "api"), ("team", "core")): 3}
    assert list(env.value("job:errors:double", T0).values()) == [6]  # the earlier rule's output, same time
    # an empty label value removes the label
    assert set(env.value("instance:errors", T0)) == {(("__name__", "instance:errors"), ("instance", i)) for i in "ab"}
    assert all(r.health == "ok" for r in g.rules)
    # b disappears (its last sample falls out of the 5 m lookback): its recorded series gets a staleness marker
    feed(env, T0 + 9000, a=5)
    g.evaluate(T0 + 301_000)
    b = env.source.select([], T0 + 301_000, T0 + 301_000)
    stale = {s.labels.get("instance") for s in b if s.labels["__name__"] == "instance:errors" and is_stale(s.v).all()}
    assert stale == {"b"}
    assert env.value("instance:errors", T0 + 301_000) == {(("__name__", "instance:errors"), ("instance", "a")): 5}


def test_recording_rules_record_native_histograms(env):
    from kms.metrics.promql.nativehist import FloatHistogram

    for i in range(7):  # two pods' latency histograms, counting up by 2 and 4 every 10 s
        for pod, k in (("a", 1), ("b", 2)):
            h = FloatHistogram(schema=0, count=2 * k * i, sum=1.5 * k * i, pos={1: k * i, 2: k * i})
            env.source.add_histogram({"__name__": "latency", "job": "api", "pod": pod}, T0 - 60_000 + i * 10_000, h)
    rules = """
name: hist
rules:
  - record: job:latency:rate1m
    expr: sum by (job) (rate(latency[1m]))
  - record: job:latency:p90
    expr: histogram_quantile(0.9, job:latency:rate1m)
"""
    g = group(rules, env)
    g.evaluate(T0)
    assert all(r.health == "ok" for r in g.rules)
    [(_, t, h)] = [x for _, b in env.written for x in b.histograms]
    assert t == T0 and h.count == pytest.approx(0.6)  # (2 + 4) per 10 s
    [p90] = env.value("job:latency:p90", T0).values()
    assert 2 < p90 <= 4


ALERT = """
name: alerts
interval: 10s
rules:
  - alert: HighErrors
    expr: errors > 10
    for: 20s
    labels: {severity: page, instance: "{{ $labels.instance }}-x"}
    annotations:
      summary: "{{ $labels.job }} has {{ $value | humanize }} errors"
"""


def alerts_series(env, t_ms):
    return {(dict(k)["alertstate"], dict(k)["instance"]): v for k, v in env.value("ALERTS", t_ms).items()}


def test_alert_goes_pending_firing_resolved_with_alerts_series_and_notifications(env):
    g = group(ALERT, env, resend_s=60.0)
    rule = g.rules[0]
    feed(env, T0 - 1000, a=50)
    g.evaluate(T0)
    (a,) = rule.alerts.live()
    assert a.state == "pending" and a.labels == {"alertname": "HighErrors", "severity": "page", "instance": "a-x",
                                                 "job": "api"}
    assert a.annotations == {"summary": "api has 50 errors"}
    assert alerts_series(env, T0) == {("pending", "a-x"): 1}
    assert env.sent == []  # pending alerts are not sent
    g.evaluate(T0 + 10_000)
    assert rule.alerts.state() == "pending"
    g.evaluate(T0 + 20_000)  # held for 20 s: fires
    assert rule.alerts.state() == "firing" and alerts_series(env, T0 + 20_000) == {("firing", "a-x"): 1}
    (firing,) = env.sent[-1][1]
    assert firing["startsAt"].startswith("2023-11-14T22:13:40") and firing["labels"]["alertname"] == "HighErrors"
    g.evaluate(T0 + 30_000)
    assert len(env.sent) == 1  # not again before the resend delay
    g.evaluate(T0 + 80_000)
    assert len(env.sent) == 2  # resent after 60 s
    # FOR_STATE holds the time it became active (s)
    assert list(env.value("ALERTS_FOR_STATE", T0 + 80_000).values()) == [T0 / 1000]
    feed(env, T0 + 85_000, a=1)  # the condition clears
    g.evaluate(T0 + 90_000)
    assert rule.alerts.state() == "inactive" and rule.alerts.live() == []
    (resolved,) = env.sent[-1][1]
    assert resolved["endsAt"] == "2023-11-14T22:14:50.000Z"
    assert alerts_series(env, T0 + 90_000) == {}  # ALERTS went stale


def test_pending_alert_that_clears_is_dropped_and_keep_firing_for_holds(env):
    g = group(ALERT.replace("for: 20s", "for: 0s\n    keep_firing_for: 15s"), env)
    rule = g.rules[0]
    feed(env, T0 - 1000, a=50)
    g.evaluate(T0)
    assert rule.alerts.state() == "firing"  # for: 0 fires at once
    feed(env, T0 + 1000, a=1)
    g.evaluate(T0 + 10_000)
    (a,) = rule.alerts.live()
    assert a.state == "firing" and a.keep_firing_since == T0 / 1000 + 10
    g.evaluate(T0 + 20_000)
    assert rule.alerts.state() == "firing"
    g.evaluate(T0 + 30_000)  # 20 s since the condition cleared > keep_firing_for
    assert rule.alerts.state() == "inactive"

    g2 = group(ALERT, env)
    feed(env, T0 + 31_000, a=50)
    g2.evaluate(T0 + 40_000)
    feed(env, T0 + 41_000, a=1)
    g2.evaluate(T0 + 50_000)
    assert g2.rules[0].alerts.active == {}  # pending and gone: forgotten, never sent


def test_limit_fails_the_rule_and_clears_its_alerts(env):
    g = group(ALERT.replace("interval: 10s", "interval: 10s\nlimit: 1"), env)
    feed(env, T0 - 1000, a=50, b=60)
    g.evaluate(T0)
    assert g.rules[0].health == "err" and g.rules[0].last_error == "exceeded limit of 1 with 2 alerts"
    assert g.rules[0].alerts.active == {}


def test_for_state_is_restored_after_a_restart(env):
    feed(env, T0 - 1000, a=50)
    feed(env, T0 + 35_000, a=50)
    first = group(ALERT, env, for_grace_s=5.0)
    for t in (T0, T0 + 10_000):
        first.evaluate(t)
    assert first.rules[0].alerts.state() == "pending"
    # "restart": a new group over the same store 20 s later; 10 s pending before, 10 s remain
    second = group(ALERT, env, for_grace_s=5.0)
    second.evaluate(T0 + 30_000)
    (a,) = second.rules[0].alerts.live()
    assert a.active_at == T0 / 1000 + 20  # the 20 s outage does not count as pending
    second.evaluate(T0 + 40_000)
    assert second.rules[0].alerts.state() == "firing"
    # without restore it would start from scratch
    fresh = group(ALERT, env, for_grace_s=5.0)
    fresh.restored = True
    fresh.evaluate(T0 + 40_000)
    assert fresh.rules[0].alerts.live()[0].active_at == T0 / 1000 + 40


def test_alert_that_fired_before_the_restart_fires_at_once(env):
    feed(env, T0 - 1000, a=50)
    first = group(ALERT, env, for_grace_s=5.0)
    for t in (T0, T0 + 10_000, T0 + 20_000):
        first.evaluate(t)
    assert first.rules[0].alerts.state() == "firing"
    second = group(ALERT, env, for_grace_s=5.0)
    second.evaluate(T0 + 60_000)
    assert second.rules[0].alerts.state() == "firing" and second.rules[0].alerts.live()[0].active_at == T0 / 1000


def test_query_errors_mark_the_rule_and_the_group_goes_on(env):
    g = group("name: g\nrules:\n- record: x\n  expr: 'sum(errors) + on() group_left errors'\n- record: y\n  expr: '1'\n",
              env)
    feed(env, T0 - 1000, a=1, b=2)
    g.evaluate(T0)
    assert g.rules[0].health == "err" and "many" in g.rules[0].last_error.lower()
    assert g.rules[1].health == "ok" and list(env.value("y", T0).values()) == [1]  # a scalar result is a series


@pytest.mark.parametrize("interval", [1.0, 10.0, 60.0])
def test_evaluation_times_are_aligned_to_a_stable_offset(env, interval):
    g = group(f"name: aligned\ninterval: {interval}s\nrules: []", env)
    off = eval_offset_ms(g.spec)
    assert 0 <= off < interval * 1000
    times = [g.next_eval_ms(T0 + k * 333) for k in range(10)]
    assert all((t - off) % int(interval * 1000) == 0 and t > T0 for t in times)
    other = group(f"name: other\ninterval: {interval}s\nrules: []", env)
    assert eval_offset_ms(other.spec) != off or interval == 1.0
    assert not math.isnan(off)


def test_a_failing_rule_writes_nothing_not_even_staleness_markers(env):
    g = group("name: g\nlimit: 1\nrules:\n- record: x\n  expr: errors\n", env)
    feed(env, T0 - 1000, a=1)
    g.evaluate(T0)
    feed(env, T0 + 1000, b=2)
    g.evaluate(T0 + 10_000)
    assert g.rules[0].health == "err" and g.rules[0].last_error == "exceeded limit of 1 with 2 series"
    written = [b for _, b in env.written]
    assert len(written) == 1 and not is_stale(written[0].values).any()
