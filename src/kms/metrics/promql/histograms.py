"""histogram_quantile(s) and histogram_fraction over classic (``le``-bucket) histograms and,
through ``histfns``, native histograms. Float series without a parsable ``le`` are skipped with
Prometheus's warning.
"""

from __future__ import annotations

import math

import numpy as np

from kms.metrics.promql import histfns
from kms.metrics.promql.values import InstantVec, PromQLError, ScalarVal, StringVal, VSeries, label_key

__all__ = ["eval_histogram_fn", "bucket_quantile", "bucket_fraction"]

_SMALL_DELTA = 1e-12  # Prometheus's smallDeltaTolerance for bucket counts
_MONO_INFO = (
    "input to histogram_quantile needed to be fixed for monotonicity "
    "(see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile)"
)


def _almost_equal(a: float, b: float, eps: float) -> bool:
    if a == b:
        return True
    s = abs(a) + abs(b)
    if a == 0 or b == 0 or s < 2.2250738585072014e-308:
        return abs(a - b) < eps * 2.2250738585072014e-308
    return abs(a - b) / min(s, 1.7976931348623157e308) < eps


def _prepare(bounds: np.ndarray, counts: np.ndarray):
    """Sort by bound and merge equal bounds; None unless the last bound is +Inf."""
    order = np.argsort(bounds, kind="stable")
    ub: list[float] = []
    cs: list[float] = []
    for b, c in zip(bounds[order].tolist(), counts[order].tolist(), strict=True):
        if ub and ub[-1] == b:
            cs[-1] += c
        else:
            ub.append(b)
            cs.append(c)
    if not ub or not (math.isinf(ub[-1]) and ub[-1] > 0):
        return None
    return ub, cs


def bucket_quantile(q: float, bounds: np.ndarray, counts: np.ndarray) -> tuple[float, bool]:
    """Returns (quantile, forced_monotonic)."""
    if math.isnan(q):
        return math.nan, False
    if q < 0:
        return -math.inf, False
    if q > 1:
        return math.inf, False
    prep = _prepare(bounds, counts)
    if prep is None:
        return math.nan, False
    ub, cs = prep
    forced = False
    prev = cs[0]
    for i in range(1, len(cs)):
        cur = cs[i]
        if cur == prev:
            continue
        if _almost_equal(prev, cur, _SMALL_DELTA):
            cs[i] = prev
            continue
        if cur < prev:
            cs[i] = prev
            forced = True
            continue
        prev = cur
    if len(ub) < 2:
        return math.nan, forced
    obs = cs[-1]
    if obs == 0:
        return math.nan, forced
    rank = q * obs
    b = next((i for i in range(len(cs) - 1) if cs[i] >= rank), len(cs) - 1)
    if b == len(ub) - 1:
        return ub[-2], forced
    if b == 0 and ub[0] <= 0:
        return ub[0], forced
    start, end, count = 0.0, ub[b], cs[b]
    if b > 0:
        start = ub[b - 1]
        count -= cs[b - 1]
        rank -= cs[b - 1]
    return start + (end - start) * (rank / count), forced


def bucket_fraction(lower: float, upper: float, bounds: np.ndarray, counts: np.ndarray) -> float:
    prep = _prepare(bounds, counts)
    if prep is None:
        return math.nan
    ub, cs = prep
    count = cs[-1]
    if count == 0 or math.isnan(lower) or math.isnan(upper):
        return math.nan
    if lower >= upper:
        return 0.0
    rank = lower_rank = upper_rank = 0.0
    lower_set = upper_set = False
    lb = 0.0 if ub[0] > 0 else -math.inf
    for i, (u, c) in enumerate(zip(ub, cs, strict=True)):
        if i > 0:
            lb = ub[i - 1]

        def interp(v: float, lb=lb, u=u, c=c, rank=rank) -> float:
            if lb == -math.inf:
                return c
            return rank + (c - rank) * (v - lb) / (u - lb)

        if not lower_set and lb >= lower:
            lower_rank, lower_set = rank, True
        if not upper_set and lb >= upper:
            upper_rank, upper_set = rank, True
        if lower_set and upper_set:
            break
        if not lower_set and lb < lower < u:
            lower_rank, lower_set = interp(lower), True
        if not upper_set and lb < upper < u:
            upper_rank, upper_set = interp(upper), True
        if lower_set and upper_set:
            break
        rank = c
    if not lower_set or lower_rank > count:
        lower_rank = count
    if not upper_set or upper_rank > count:
        upper_rank = count
    return (upper_rank - lower_rank) / count


def _groups(ev, vec: InstantVec, arg_node):
    groups: dict[tuple, list] = {}
    for s in vec.series:
        if not s.ok.any():  # native histograms only
            continue
        le = s.labels.get("le", "")
        try:
            bound = float(le.replace("Inf", "inf")) if le else math.nan
        except ValueError:
            bound = math.nan
        if math.isnan(bound):
            name = s.labels.get("__name__", "")
            msg = f'bucket label "le" is missing or has a malformed value of "{le}"'
            ev.warn(msg + (f' for metric name "{name}"' if name else ""), arg_node)
            continue
        # one histogram per series name and labels: two histograms that differ only by name give
        # two results with the same labels, an error as in Prometheus (not one merged histogram)
        key = tuple(sorted((k, v) for k, v in s.labels.items() if k != "le"))
        groups.setdefault(key, []).append((bound, s))
    return groups


def eval_histogram_fn(ev, e, name: str, vals: list, n: int) -> InstantVec:
    args = e.args
    if name == "histogram_quantile":
        qs, vec, vec_node, label = [vals[0].v], vals[1], args[1], None
        qnodes = [args[0]]
    elif name == "histogram_quantiles":
        vec, vec_node = vals[0], args[0]
        if not isinstance(vals[1], StringVal):
            raise PromQLError("expected string label name in histogram_quantiles")
        label = vals[1].s
        qs = [v.v for v in vals[2:]]
        qnodes = list(args[2:])
    else:
        lower, upper, vec, vec_node = vals[0].v, vals[1].v, vals[2], args[2]
        qs, qnodes, label = [], [], None
    for q, qn in zip(qs, qnodes, strict=True):
        bad = np.isnan(q) | (q < 0) | (q > 1)
        if bad.any():
            ev.warn(f"quantile value should be between 0 and 1, got {fmt_g(float(q[np.argmax(bad)]))}", qn)
    if not isinstance(vec, InstantVec) or (
        qs and not all(isinstance(v, ScalarVal) for v in vals[: 1 if label is None else 0])
    ):
        raise PromQLError(f"unexpected arguments for {name}")
    vec = _without_mixed(ev, vec, vec_node)
    out = []
    for key, members in _groups(ev, vec, vec_node).items():
        bounds = np.array([b for b, _ in members])
        V = np.stack([s.v for _, s in members])
        OK = np.stack([s.ok for _, s in members])
        ok = OK.any(axis=0)
        metric = members[0][1].labels.get("__name__", "")
        targets = [(None, None)] if name == "histogram_fraction" else list(enumerate(qs))
        for qi, q in targets:
            r = np.zeros(n)
            for j in np.nonzero(ok)[0]:
                m = OK[:, j]
                if name == "histogram_fraction":
                    r[j] = bucket_fraction(float(lower[j]), float(upper[j]), bounds[m], V[m, j])
                else:
                    r[j], forced = bucket_quantile(float(q[j]), bounds[m], V[m, j])
                    if forced:
                        ev.info(_MONO_INFO + (f' for metric name "{metric}"' if metric else ""), vec_node)
            labels = {k: v for k, v in key if k not in ("__name__", "__type__", "__unit__")}
            if label is not None:
                labels[label] = _q_label(float(qs[qi][0]))
            out.append(VSeries(labels, r, ok))
    out += _native(ev, name, vec, vec_node, qs, label, vals)
    return InstantVec(out)


def _without_mixed(ev, vec: InstantVec, node) -> InstantVec:
    """Drop the classic buckets and the native histograms that share a series (labels but
    ``le``), with Prometheus's warning: which of them to believe is unknowable."""
    native = {label_key(s.labels) for s in vec.series if s.h is not None}
    if not native:
        return vec
    clash = set()
    for s in vec.series:
        if s.ok.any() and "le" in s.labels:
            key = label_key({k: v for k, v in s.labels.items() if k != "le"})
            if key in native:
                clash.add(key)
    if not clash:
        return vec
    for key in sorted(clash):
        name = dict(key).get("__name__", "")
        ev.warn(
            "vector contains a mix of classic and native histograms"
            + (f' for metric name "{name}"' if name else ""),
            node,
        )
    return InstantVec([
        s for s in vec.series
        if label_key(s.labels) not in clash and label_key({k: v for k, v in s.labels.items() if k != "le"}) not in clash
    ])  # fmt: skip


def _native(ev, name, vec, node, qs, label, vals) -> list[VSeries]:
    out = []
    for s in histfns.native_series(vec):
        metric = s.labels.get("__name__", "")
        if name == "histogram_fraction":
            lo, hi = vals[0].v, vals[1].v
            r = histfns.per_step(
                s,
                lambda j, h, m=metric, lo=lo, hi=hi: histfns.fraction(
                    ev, float(lo[j]), float(hi[j]), h, m, node
                ),
            )
            if r is not None:
                out.append(r)
            continue
        for q in qs:
            r = histfns.per_step(s, lambda j, h, q=q, m=metric: histfns.quantile(ev, float(q[j]), h, m, node))
            if r is None:
                continue
            if label is not None:
                r.labels = {**r.labels, label: _q_label(float(q[0]))}
            out.append(r)
    return out


def _q_label(q: float) -> str:
    if math.isnan(q):
        return "NaN"
    if math.isinf(q):
        return "+Inf" if q > 0 else "-Inf"
    return repr(q)


def fmt_g(x: float) -> str:
    """Go's %g for the common cases (NaN, Inf, short decimals)."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    return repr(x).rstrip("0").rstrip(".") if "e" not in repr(x) else repr(x)
