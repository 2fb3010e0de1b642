"""Alert state for one alerting rule, with Prometheus's transitions.

    inactive --(expr returns the series)--> pending --(held for `for`)--> firing
    pending  --(series gone)--> deleted
    firing   --(series gone, past keep_firing_for)--> inactive (resolved; kept 15 min so
                                                      Alertmanager hears it was resolved)

Times are float seconds since the epoch. Not thread-safe: one group's thread owns it.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Alert", "AlertSet", "RESOLVED_RETENTION_S", "LabelKey"]

#: How long a resolved alert is kept (and re-sent as resolved), as in Prometheus.
RESOLVED_RETENTION_S = 15 * 60.0

LabelKey = tuple[tuple[str, str], ...]


@dataclass
class Alert:
    labels: dict[str, str]
    annotations: dict[str, str]
    value: float
    active_at: float
    state: str = "pending"  # pending | firing | inactive
    fired_at: float = 0.0
    resolved_at: float = 0.0
    last_sent_at: float = 0.0
    valid_until: float = 0.0
    keep_firing_since: float = 0.0

    def needs_sending(self, ts: float, resend_s: float) -> bool:
        if self.state == "pending":
            return False
        if self.resolved_at > self.last_sent_at:  # resolved since it was last sent
            return True
        return self.last_sent_at + resend_s <= ts


class AlertSet:
    """The active alerts of one rule, keyed by their label set."""

    def __init__(self, for_s: float, keep_firing_for_s: float):
        self.for_s = for_s
        self.keep_firing_for_s = keep_firing_for_s
        self.active: dict[LabelKey, Alert] = {}

    def update(self, found: dict[LabelKey, Alert], ts: float) -> None:
        """Apply one evaluation at ``ts``: ``found`` are the alerts the expression returned now
        (new ``Alert`` objects, pending, ``active_at=ts``)."""
        for key, new in found.items():
            old = self.active.get(key)
            if old is not None and old.state != "inactive":
                old.value, old.annotations, old.labels = new.value, new.annotations, new.labels
                old.keep_firing_since = 0.0
            else:
                self.active[key] = new
        for key, a in list(self.active.items()):
            if key not in found:
                keep = False
                if a.state == "firing" and self.keep_firing_for_s > 0:
                    if not a.keep_firing_since:
                        a.keep_firing_since = ts
                    keep = ts - a.keep_firing_since < self.keep_firing_for_s
                if a.state == "pending" or (a.resolved_at and ts - a.resolved_at > RESOLVED_RETENTION_S):
                    del self.active[key]
                if a.state != "inactive" and not keep:
                    a.state, a.resolved_at = "inactive", ts
                if not keep:
                    continue
            if a.state == "pending" and ts - a.active_at >= self.for_s:
                a.state, a.fired_at = "firing", ts

    def clear(self) -> None:
        self.active.clear()

    def live(self) -> list[Alert]:
        """Pending and firing alerts (what ``ALERTS`` and ``/api/v1/alerts`` show)."""
        return [a for a in self.active.values() if a.state != "inactive"]

    def state(self) -> str:
        states = {a.state for a in self.active.values()}
        return "firing" if "firing" in states else "pending" if "pending" in states else "inactive"
