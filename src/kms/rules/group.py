"""One rule group of one tenant: evaluates its rules in order at aligned times.

Evaluation times follow Prometheus: a group runs at ``offset + k * interval`` where the offset is a
hash of the group's file and name within the interval (Prometheus's hash, so the same file runs
at the same times in both), so groups spread over the interval and every restart keeps the same
phase. A rule's output (recording series, ``ALERTS`` and ``ALERTS_FOR_STATE``) is written before
any later rule that reads it runs, so that rule sees it at the same time; outputs nobody in the
group reads are written together at the end (one WAL fsync). A series a rule produced last time
but not now gets a staleness marker; a rule that fails writes nothing.

All times: ``ts_ms`` int milliseconds for samples, float seconds for alert state.
Locking: only the group's own thread calls ``evaluate``; readers (the API) take ``snapshot()``.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import xxhash

from kms.metrics.promql.model import STALE_NAN, Matcher, is_stale
from kms.metrics.promql.nativehist import FloatHistogram
from kms.metrics.promql.values import Scalar, Vector
from kms.metrics.samples import BatchBuilder, SampleBatch
from kms.rules.alerting import Alert, AlertSet, LabelKey
from kms.rules.load import GroupSpec, RuleSpec
from kms.rules.template import expand, template_data

__all__ = ["Group", "EvalContext", "RuleState", "eval_offset_ms", "rfc3339"]

log = logging.getLogger("kms.rules")


def _group_hash(spec: GroupSpec) -> int:
    """Prometheus's hash of a group: its label-set hash (xxhash64 of ``name 0xff value 0xff`` over
    the labels ``file`` and ``name``), so a file evaluated by both runs at the same times."""
    data = b"file\xff" + spec.file.encode() + b"\xffname\xff" + spec.name.encode() + b"\xff"
    return xxhash.xxh64_intdigest(data)


def eval_offset_ns(spec: GroupSpec) -> int:
    """The group's phase within its interval, in ns (Prometheus computes it in ns)."""
    return _group_hash(spec) % max(1, round(spec.interval_s * 1e9))


def eval_offset_ms(spec: GroupSpec) -> int:
    return eval_offset_ns(spec) // 1_000_000


def rfc3339(ts: float) -> str:
    if not ts:
        return "0001-01-01T00:00:00Z"
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class EvalContext:
    """What evaluation needs from the process; the ruler fills it in (tests use in-memory parts)."""

    promql: Callable[[str, str, int], object]  # (tenant, query, t_ms) -> Result
    logql: Callable[[str, str, int], object]  # (tenant, query, t_ms) -> Result
    select: Callable[[str, list[Matcher], int, int], list]  # raw series (for-state restore)
    write: Callable[[str, SampleBatch], None]
    send: Callable[[str, list[dict]], None]  # (tenant, Alertmanager API v2 alerts)
    external_labels: dict[str, str] = field(default_factory=dict)
    external_url: str = ""
    resend_s: float = 60.0
    for_grace_s: float = 600.0
    outage_tolerance_s: float = 3600.0


@dataclass
class RuleState:
    spec: RuleSpec
    health: str = "unknown"  # unknown | ok | err
    last_error: str = ""
    last_eval: float = 0.0
    eval_s: float = 0.0
    alerts: AlertSet | None = None
    prev: set[LabelKey] = field(default_factory=set)  # series written by the last evaluation
    feeds_later: bool = False  # a later rule of the group reads this rule's output

    def __post_init__(self) -> None:
        if self.spec.kind == "alerting" and self.alerts is None:
            self.alerts = AlertSet(self.spec.for_s, self.spec.keep_firing_for_s)


class RuleError(Exception):
    pass


class Group:
    def __init__(self, spec: GroupSpec, tenant: str, ctx: EvalContext, restore: bool = True):
        self.spec = spec
        self.tenant = tenant
        self.ctx = ctx
        self.rules = [RuleState(r) for r in spec.rules]
        # Outputs are written in one append per group unless a later rule reads them: then they
        # are written before it runs, so it sees them at the same time (as in Prometheus).
        for i, rs in enumerate(self.rules):
            name = "ALERTS" if rs.spec.kind == "alerting" else rs.spec.name
            rx = re.compile(rf"(?<![\w:]){re.escape(name)}")
            rs.feeds_later = any(rx.search(later.spec.expr) for later in self.rules[i + 1 :])
        self._pending = BatchBuilder()
        self._pending_rules: list[RuleState] = []
        self.last_eval = 0.0
        self.eval_s = 0.0
        # Prometheus's rule-manager counters, served by kms.rules.metrics
        self.iterations = 0
        self.missed = 0  # evaluation times skipped because an evaluation overran its interval
        self.evaluations = 0
        self.failures = 0
        self.restored = not restore
        self.lock = threading.Lock()  # guards rule/alert state between evaluate and API readers

    def copy_state(self, old: Group) -> None:
        """Keep alert state and staleness bookkeeping of rules that did not change (reload)."""
        by_spec = {(r.spec.kind, r.spec.name, r.spec.expr, tuple(sorted(r.spec.labels.items()))): r for r in old.rules}
        for r in self.rules:
            prev = by_spec.get((r.spec.kind, r.spec.name, r.spec.expr, tuple(sorted(r.spec.labels.items()))))
            if prev is not None:
                r.alerts, r.prev, r.health, r.last_error = prev.alerts, prev.prev, prev.health, prev.last_error
                if r.alerts is not None:
                    r.alerts.for_s, r.alerts.keep_firing_for_s = r.spec.for_s, r.spec.keep_firing_for_s
        self.restored = old.restored

    def next_eval_ms(self, now_ms: int) -> int:
        """The first aligned evaluation time after ``now_ms`` (aligned in ns, then truncated to ms
        as Prometheus stamps samples)."""
        interval = max(1, round(self.spec.interval_s * 1e9))
        off = eval_offset_ns(self.spec)
        now_ns = now_ms * 1_000_000 + 999_999  # after every ns of now_ms
        return (((now_ns - off) // interval + 1) * interval + off) // 1_000_000

    # -- evaluation --
    def evaluate(self, ts_ms: int) -> None:
        t0 = time.perf_counter()
        if self.last_eval and self.spec.interval_s > 0:
            self.missed += max(0, round((ts_ms / 1000 - self.last_eval) / self.spec.interval_s) - 1)
        for rs in self.rules:
            r0 = time.perf_counter()
            try:
                out = self._eval_rule(rs, ts_ms)
                err = ""
            except RuleError as e:
                out, err = {}, str(e)
            except Exception as e:  # noqa: BLE001 - a query failing must not stop the group
                out, err = {}, getattr(e, "message", None) or str(e)
            with self.lock:
                rs.health, rs.last_error = ("err", err) if err else ("ok", "")
                rs.last_eval, rs.eval_s = ts_ms / 1000, time.perf_counter() - r0
                self.evaluations += 1
                self.failures += bool(err)
            if not err:  # a failed rule writes nothing, not even staleness markers (as in Prometheus)
                self._buffer(rs, out, ts_ms)
            if rs.feeds_later:
                self._flush()
            if err:
                log.warning("tenant %s group %r rule %r: %s", self.tenant, self.spec.name, rs.spec.name, err)
            if rs.alerts is not None:
                self._notify(rs, ts_ms / 1000)
        self._flush()
        self.restored = True
        self.iterations += 1
        self.last_eval, self.eval_s = ts_ms / 1000, time.perf_counter() - t0

    def _query(self, rule: RuleSpec, ts_ms: int) -> list[tuple[dict[str, str], float | FloatHistogram]]:
        run = self.ctx.logql if rule.lang == "logql" else self.ctx.promql
        res = run(self.tenant, rule.expr, ts_ms - int(self.spec.query_offset_s * 1000)).value
        if isinstance(res, Scalar):
            return [({}, res.value)]
        if not isinstance(res, Vector):
            raise RuleError(f"rule result is not a vector or scalar: {res.type}")
        return [(s.labels, s.value if s.histogram is None else s.histogram) for s in res.samples]

    def _eval_rule(self, rs: RuleState, ts_ms: int) -> dict[LabelKey, float | FloatHistogram]:
        spec, limit = rs.spec, self.spec.limit
        samples = self._query(spec, ts_ms)
        if spec.kind == "recording":
            out: dict[LabelKey, float | FloatHistogram] = {}
            for labels, v in samples:
                lb = {**labels, **spec.labels, "__name__": spec.name}
                key = tuple(sorted((k, x) for k, x in lb.items() if x))
                if key in out:
                    raise RuleError("vector contains metrics with the same labelset after applying rule labels")
                out[key] = v
            if limit and len(out) > limit:
                raise RuleError(f"exceeded limit of {limit} with {len(out)} series")
            return out
        return self._eval_alert(rs, samples, ts_ms)

    def _eval_alert(self, rs: RuleState, samples, ts_ms: int) -> dict[LabelKey, float]:
        spec, ts = rs.spec, ts_ms / 1000
        assert rs.alerts is not None
        found: dict[LabelKey, Alert] = {}
        ext, url = self.ctx.external_labels, self.ctx.external_url
        for labels, v in samples:
            if isinstance(v, FloatHistogram):
                v = 0.0  # a histogram sample alerts too; its value is Prometheus's float part, 0
            base = {k: x for k, x in labels.items() if k != "__name__"}
            data = template_data(base, v, ext, url)  # templates see the query's labels, not the expanded ones
            lb = {**base, **{k: expand(t, data) for k, t in spec.labels.items()}, "alertname": spec.name}
            lb = {k: x for k, x in lb.items() if x}
            key = tuple(sorted(lb.items()))
            if key in found:
                raise RuleError("vector contains metrics with the same labelset after applying alert labels")
            ann = {k: expand(t, data) for k, t in spec.annotations.items()}
            found[key] = Alert(lb, ann, v, ts)
        limit = self.spec.limit
        with self.lock:
            if limit and len(found) > limit:
                rs.alerts.clear()
                raise RuleError(f"exceeded limit of {limit} with {len(found)} alerts")
            if not self.restored and spec.for_s > 0:
                self._restore(rs, found, ts_ms)
            rs.alerts.update(found, ts)
            out: dict[LabelKey, float] = {}
            for a in rs.alerts.live():
                out[tuple(sorted({**a.labels, "__name__": "ALERTS", "alertstate": a.state}.items()))] = 1.0
                out[tuple(sorted({**a.labels, "__name__": "ALERTS_FOR_STATE"}.items()))] = float(int(a.active_at))
        return out

    def _restore(self, rs: RuleState, found: dict[LabelKey, Alert], ts_ms: int) -> None:
        """Give alerts found at the first evaluation their ``active_at`` from before a restart,
        read from ``ALERTS_FOR_STATE`` written before ``ts_ms`` (within the outage tolerance)."""
        spec, ctx, ts = rs.spec, self.ctx, ts_ms / 1000
        if spec.for_s < ctx.for_grace_s or not found:
            return
        ms = [Matcher("__name__", "=", "ALERTS_FOR_STATE"), Matcher("alertname", "=", spec.name)]
        series = ctx.select(self.tenant, ms, ts_ms - int(ctx.outage_tolerance_s * 1000), ts_ms - 1)
        for s in series:
            keep = ~(is_stale(s.v) | np.isnan(s.v))
            if not keep.any():
                continue
            key = tuple(sorted((k, v) for k, v in s.labels.items() if k != "__name__"))
            a = found.get(key)
            if a is None:
                continue
            down_at = float(s.t[keep][-1]) / 1000
            active_at = float(s.v[keep][-1])
            remaining = spec.for_s - (down_at - active_at)
            if remaining <= 0:
                pass  # it was firing before the restart: fire again at once
            elif remaining < ctx.for_grace_s:
                active_at = ts + ctx.for_grace_s - spec.for_s
            else:
                active_at += ts - down_at  # the outage does not count as pending time
            a.active_at = active_at
            log.info("tenant %s: restored 'for' state of alert %r %s (active since %s)", self.tenant, spec.name,
                     dict(key), rfc3339(active_at))

    def _buffer(self, rs: RuleState, out: dict[LabelKey, float | FloatHistogram], ts_ms: int) -> None:
        gone = rs.prev - out.keys()
        rs.prev = set(out)
        if not out and not gone:
            return
        b = self._pending
        for key, v in out.items():
            if isinstance(v, FloatHistogram):  # recorded native histograms, e.g. sum(rate(h[5m]))
                b.histograms.append((b.series_index(key), ts_ms, v))
            else:
                b.add(b.series_index(key), ts_ms, v)
        for key in gone:
            b.add(b.series_index(key), ts_ms, STALE_NAN)
        self._pending_rules.append(rs)

    def _flush(self) -> None:
        """Write the buffered outputs in one append (one WAL fsync for the rules since the last)."""
        if not self._pending_rules:
            return
        batch, rules = self._pending.build(), self._pending_rules
        self._pending, self._pending_rules = BatchBuilder(), []
        try:
            self.ctx.write(self.tenant, batch)
        except Exception as e:  # noqa: BLE001 - e.g. a limit; the rules show the error
            msg = f"writing the rule's series: {getattr(e, 'message', e)}"
            with self.lock:
                for rs in rules:
                    rs.health, rs.last_error = "err", msg
            log.warning("tenant %s group %r: writing rule outputs failed: %s", self.tenant, self.spec.name, e)

    def _notify(self, rs: RuleState, ts: float) -> None:
        assert rs.alerts is not None
        ctx = self.ctx
        valid_for = 4 * max(ctx.resend_s, self.spec.interval_s)
        url = f"{ctx.external_url}/graph?g0.expr={urllib.parse.quote(rs.spec.expr)}&g0.tab=1"
        batch = []
        with self.lock:
            for a in rs.alerts.active.values():
                if not a.needs_sending(ts, ctx.resend_s):
                    continue
                a.last_sent_at = ts
                a.valid_until = ts + valid_for
                labels = {**ctx.external_labels, **a.labels}  # the alert's own labels win
                batch.append({"labels": labels, "annotations": dict(a.annotations),
                              "startsAt": rfc3339(a.fired_at), "endsAt": rfc3339(a.resolved_at or a.valid_until),
                              "generatorURL": url})
        if batch:
            ctx.send(self.tenant, batch)

    # -- reading (API) --
    def snapshot(self) -> dict:
        """The group as ``/api/v1/rules`` shows it."""
        with self.lock:
            rules = [self._rule_json(r) for r in self.rules]
        return {"name": self.spec.name, "file": self.spec.file, "rules": rules, "interval": self.spec.interval_s,
                "limit": self.spec.limit, "evaluationTime": self.eval_s, "lastEvaluation": rfc3339(self.last_eval)}

    def _rule_json(self, r: RuleState) -> dict:
        s = r.spec
        out: dict = {"name": s.name, "query": s.expr, "labels": dict(s.labels), "health": r.health,
                     "evaluationTime": r.eval_s, "lastEvaluation": rfc3339(r.last_eval)}
        if r.last_error:
            out["lastError"] = r.last_error
        if r.alerts is None:
            out["type"] = "recording"
            return out
        out.update(state=r.alerts.state(), duration=s.for_s, keepFiringFor=s.keep_firing_for_s,
                   annotations=dict(s.annotations), alerts=[alert_json(a) for a in r.alerts.live()],
                   type="alerting")
        return out


def alert_json(a: Alert) -> dict:
    out = {"labels": dict(a.labels), "annotations": dict(a.annotations), "state": a.state,
           "activeAt": rfc3339(a.active_at), "value": _fmt_e(a.value)}
    if a.keep_firing_since:
        out["keepFiringSince"] = rfc3339(a.keep_firing_since)
    return out


def _fmt_e(v: float) -> str:
    """Go's ``strconv.FormatFloat(v, 'e', -1, 64)`` (how Prometheus prints an alert's value)."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    mant, exp = np.format_float_scientific(v, unique=True, trim="-").split("e")
    return f"{mant}e{exp[0]}{int(exp[1:]):02d}"
