"""The ruler's own metrics under Prometheus's names (``prometheus_rule_*``,
``prometheus_notifications_*``) plus a ``tenant`` label, read from the groups and the notifier at
scrape time, so the stack's self-monitoring and the default alerts can watch rule evaluation."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from kms.rules.manager import Ruler
from kms.rules.notify import QUEUE_CAPACITY, Notifier

__all__ = ["RulerCollector"]


class RulerCollector(Collector):
    def __init__(self, ruler: Ruler, notifier: Notifier):
        self.ruler = ruler
        self.notifier = notifier

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        labels = ["tenant", "rule_group"]

        def family(kind, name: str, doc: str):
            return kind(name, doc, labels=labels)

        evals = family(CounterMetricFamily, "prometheus_rule_evaluations", "Rule evaluations.")
        fails = family(CounterMetricFamily, "prometheus_rule_evaluation_failures", "Rule evaluations that failed.")
        iters = family(CounterMetricFamily, "prometheus_rule_group_iterations", "Scheduled group evaluations run.")
        missed = family(CounterMetricFamily, "prometheus_rule_group_iterations_missed",
                        "Group evaluations skipped because an evaluation overran its interval.")
        last = family(GaugeMetricFamily, "prometheus_rule_group_last_evaluation_timestamp_seconds",
                      "When the group was last evaluated.")
        dur = family(GaugeMetricFamily, "prometheus_rule_group_last_duration_seconds",
                     "How long the group's last evaluation took.")
        interval = family(GaugeMetricFamily, "prometheus_rule_group_interval_seconds", "The group's interval.")
        rules = family(GaugeMetricFamily, "prometheus_rule_group_rules", "Rules in the group.")
        for g in self.ruler.groups():
            key = [g.tenant, f"{g.spec.file};{g.spec.name}"]  # Prometheus's rule_group: file;group
            evals.add_metric(key, g.evaluations)
            fails.add_metric(key, g.failures)
            iters.add_metric(key, g.iterations)
            missed.add_metric(key, g.missed)
            last.add_metric(key, g.last_eval)
            dur.add_metric(key, g.eval_s)
            interval.add_metric(key, g.spec.interval_s)
            rules.add_metric(key, len(g.rules))
        yield from (evals, fails, iters, missed, last, dur, interval, rules)

        n = self.notifier
        sent = CounterMetricFamily("prometheus_notifications_sent", "Alerts sent, by receiver URL.",
                                   labels=["alertmanager"])
        errors = CounterMetricFamily("prometheus_notifications_errors", "Alerts whose sending failed, by receiver URL.",
                                     labels=["alertmanager"])
        for url in sorted(set(n.sent_by_url) | set(n.failed_by_url)):
            sent.add_metric([url], n.sent_by_url[url])
            errors.add_metric([url], n.failed_by_url[url])
        yield sent
        yield errors
        yield CounterMetricFamily("prometheus_notifications_dropped", "Alerts dropped from a full queue.",
                                  value=n.dropped)
        yield GaugeMetricFamily("prometheus_notifications_queue_length", "Alerts waiting to be sent.",
                                value=n.queue_length())
        yield GaugeMetricFamily("prometheus_notifications_queue_capacity", "Capacity of the alert queue.",
                                value=QUEUE_CAPACITY)
