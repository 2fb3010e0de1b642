"""``info(v [, selector])`` (experimental): add data labels of info metrics (``target_info`` by
default) that share the identifying labels ``instance``/``job`` with each series of ``v``.

Follows Prometheus's semantics: the info series are looked up with the same ``offset``/``@`` as
the first vector selector of ``v``; per step the newest info sample wins per (name, instance, job).
"""

from __future__ import annotations

import re

import numpy as np

from kms.metrics.promql.model import Matcher, is_stale
from kms.metrics.promql.values import InstantVec, PromQLError, VSeries, label_key

__all__ = ["eval_info", "DUMMY_LABEL"]

IDENTIFYING = ("instance", "job")
# promql_parser rejects selectors whose matchers all match "", which info()'s second argument may
# be; engine.parse() then retries with a ``DUMMY_LABEL!=""`` matcher added, and info() drops it.
DUMMY_LABEL = "__kms_info_dummy__"


def _first_selector(node, subqueries=()):
    """The first vector selector in ``node`` and the (at, offset_ms) Prometheus uses for info lookups."""
    kind = type(node).__name__
    if kind in ("VectorSelector", "MatrixSelector"):
        vs = node if kind == "VectorSelector" else node.vector_selector
        at, offset = vs.at, _ms(vs.offset)
        for sq in reversed(subqueries):
            if at is not None:
                break
            offset += _ms(sq.offset)
            at = sq.at
        return vs, at, offset
    if kind == "SubqueryExpr":
        subqueries = (*subqueries, node)
    children = [getattr(node, a, None) for a in ("expr", "lhs", "rhs", "param")] + list(
        getattr(node, "args", None) or []
    )
    for c in children:
        if c is not None and not isinstance(c, (str, float, int)):
            found = _first_selector(c, subqueries)
            if found is not None:
                return found
    return None


def _ms(d) -> int:
    if d is None:
        return 0
    return d.days * 86_400_000 + d.seconds * 1000 + d.microseconds // 1000


def _effective_name_matchers(ms: list[Matcher]) -> list[Matcher]:
    if any(m.op in ("=", "=~") for m in ms):
        return ms
    if ms:
        return [Matcher("__name__", "=~", ".+_info"), *ms]
    return [Matcher("__name__", "=", "target_info")]


def eval_info(ev, e, ts) -> InstantVec:
    base = ev.eval(e.args[0], ts)
    if not isinstance(base, InstantVec):
        raise PromQLError("expected instant vector in info()")
    data: dict[str, list[Matcher]] = {}
    name_ms: list[Matcher] = []
    if len(e.args) > 1:
        for m in ev.matchers(e.args[1]):
            if m.name == DUMMY_LABEL:
                continue
            data.setdefault(m.name, []).append(m)
            if m.name == "__name__":
                name_ms.append(m)
    else:
        name_ms = [Matcher("__name__", "=", "target_info")]
    eff_names = _effective_name_matchers(name_ms)
    ignored = [all(m.matches(s.labels.get("__name__", "")) for m in eff_names) for s in base.series]

    id_vals: dict[str, set[str]] = {}
    for s, ign in zip(base.series, ignored, strict=True):
        if not ign:
            for lab in IDENTIFYING:
                if s.labels.get(lab):
                    id_vals.setdefault(lab, set()).add(s.labels[lab])
    data_names = {k: v for k, v in data.items() if k != "__name__"}
    info_series = []
    if id_vals:
        sel = [Matcher(k, "=~", "|".join(re.escape(v) for v in sorted(vals))) for k, vals in id_vals.items()]
        sel += [m for k, ms in data_names.items() for m in ms]
        sel += _effective_name_matchers([m for m in data.get("__name__", [])])
        found = _first_selector(e.args[0])
        at, off = (found[1], found[2]) if found is not None else (None, 0)
        eff = ev.effective_times(ts, at, None) - off
        lb = ev.engine.lookback_ms
        for s in ev.engine.source.select(sel, int(eff.min()) - lb + 1, int(eff.max())):
            idx = np.searchsorted(s.t, eff, "right") - 1
            safe = np.maximum(idx, 0)
            ok = (idx >= 0) & (s.t[safe] > eff - lb) & ~is_stale(s.v[safe])
            if s.h is not None and any(s.h[i] is not None for i in safe[ok].tolist()):
                raise PromQLError("info sample should be float")
            if ok.any():
                info_series.append((s.labels, s.t[safe], ok))

    n = len(ts)
    out: dict[tuple, VSeries] = {}
    for j in range(n):
        latest: dict[tuple, tuple[dict, int]] = {}
        for labels, t, ok in info_series:
            if not ok[j]:
                continue
            sig = (labels["__name__"],) + tuple((k, labels[k]) for k in IDENTIFYING if labels.get(k))
            prev = latest.get(sig)
            if prev is None or prev[1] < t[j]:
                latest[sig] = (labels, int(t[j]))
            elif prev[1] == t[j]:
                raise PromQLError("found duplicate series for info metric")
        names = {sig[0] for sig in latest}
        for s, ign in zip(base.series, ignored, strict=True):
            if not s.ok[j]:
                continue
            labels = s.labels
            if not ign:
                added: dict[str, str] = {}
                seen = False
                for nm in names:
                    sig = (nm,) + tuple((k, s.labels[k]) for k in IDENTIFYING if s.labels.get(k))
                    hit = latest.get(sig)
                    if hit is None:
                        continue
                    seen = True
                    for k, v in hit[0].items():
                        if k == "__name__" or (data_names and k not in data_names):
                            continue
                        if added.get(k, v) != v:
                            raise PromQLError(f"conflicting label: {k}")
                        if k not in s.labels:
                            added[k] = v
                if not seen and not all(m.matches("") for ms in data_names.values() for m in ms):
                    continue
                labels = {**s.labels, **added}
            key = label_key(labels)
            o = out.get(key)
            if o is None:
                o = out[key] = VSeries(labels, np.zeros(n), np.zeros(n, dtype=bool), s.drop_name)
            elif o.ok[j]:
                raise PromQLError("vector cannot contain metrics with the same labelset")
            o.v[j] = s.v[j]
            o.ok[j] = True
    return InstantVec(list(out.values()))
