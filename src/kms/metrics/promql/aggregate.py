"""Aggregation operators, grouped with ``by``/``without`` and computed over all steps at once."""

from __future__ import annotations

import math

import numpy as np

from kms.metrics.promql import histfns
from kms.metrics.promql.literals import invalid_utf8_literals
from kms.metrics.promql.values import NAME_LABELS, InstantVec, PromQLError, ScalarVal, StringVal, VSeries

__all__ = ["eval_aggregate", "format_float", "quantile_of", "kahan_sum"]


def format_float(f: float) -> str:
    """Go's ``strconv.FormatFloat(f, 'f', -1, 64)``: shortest repr, no exponent."""
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    r = repr(float(f))
    if "e" in r or "E" in r:
        from decimal import Decimal

        r = format(Decimal(r), "f")
    if r.endswith(".0"):
        r = r[:-2]
    return r


def _group_key(labels: dict[str, str], without: bool, names: list[str]) -> tuple:
    if without:
        drop = set(names) | set(NAME_LABELS)
        return tuple(sorted((k, v) for k, v in labels.items() if k not in drop))
    return tuple(sorted((k, labels[k]) for k in set(names) if labels.get(k, "") != ""))


def eval_aggregate(ev, e, ts):
    op = str(e.op)
    n = len(ts)
    without = False
    names: list[str] = []
    if e.modifier is not None:
        without = str(e.modifier.type).endswith("Without")
        names = list(e.modifier.labels)
    param = ev.eval(e.param, ts) if e.param is not None else None
    vec = ev.eval(e.expr, ts)
    if not isinstance(vec, InstantVec):
        raise PromQLError("expected instant vector in aggregation")
    if op == "count_values":
        if not isinstance(param, StringVal):
            raise PromQLError("expected string parameter in count_values")
        bad = invalid_utf8_literals(ev.query)
        if param.s in bad:
            raise PromQLError(f"invalid label name {bad[param.s]}")
        return _count_values(vec, param.s, without, names, n)
    groups: dict[tuple, list[VSeries]] = {}
    has_hist = False
    for s in vec.series:
        groups.setdefault(_group_key(s.labels, without, names), []).append(s)
        has_hist = has_hist or s.h is not None
    if has_hist and op in ("min", "max", "stddev", "stdvar", "quantile", "topk", "bottomk"):
        if any(s.hmask().any() for s in vec.series):
            ev.info(f"ignored histogram in {op} aggregation", e if op in ("topk", "bottomk") else e.expr)
    if op in ("topk", "bottomk", "limitk"):
        return _select_k(op, groups, param, n)
    if op == "limit_ratio":
        return _limit_ratio(ev, e, groups, param, n)
    out = []
    for key, group in groups.items():
        V = np.stack([s.v for s in group])
        OK = np.stack([s.ok if op not in ("count", "group") else s.present() for s in group])
        hists, mixed = (None, None)
        if op in ("sum", "avg"):
            hists, mixed = histfns.sum_or_avg(ev, e, op, group, n)
        any_ok = OK.any(axis=0)
        if mixed is not None:
            any_ok &= ~mixed
        if not any_ok.any() and hists is None:
            continue
        cnt = OK.sum(axis=0).astype(np.float64)
        masked = np.where(OK, V, np.nan)
        with np.errstate(all="ignore"):
            if op == "sum":
                r = kahan_sum(V, OK)
            elif op == "avg":
                r = _avg(V, OK, cnt)
            elif op == "count":
                r = cnt
            elif op == "group":
                r = np.ones(n)
            elif op == "min":
                r = _nanreduce(np.nanmin, masked)
            elif op == "max":
                r = _nanreduce(np.nanmax, masked)
            elif op in ("stddev", "stdvar"):
                r = _welford_var(V, OK)
                if op == "stddev":
                    r = np.sqrt(r)
            elif op == "quantile":
                r = _quantile(param, V, OK, n)
                bad = np.isnan(param.v) | (param.v < 0) | (param.v > 1)
                if bad.any():
                    from kms.metrics.promql.histograms import fmt_g

                    ev.warn(
                        f"quantile value should be between 0 and 1, got {fmt_g(float(param.v[np.argmax(bad)]))}",
                        e.param,
                    )
            else:
                raise PromQLError(f"unsupported aggregation {op}")
        drop = "__name__" in dict(key) and any(s.drop_name for s in group)
        out.append(VSeries(dict(key), np.asarray(r, dtype=np.float64), any_ok, drop, hists))
    return InstantVec(out)


def kahan_sum(V: np.ndarray, OK: np.ndarray) -> np.ndarray:
    """Neumaier-compensated sum over axis 0 of present values (Prometheus uses the same)."""
    total = np.zeros(V.shape[1])
    comp = np.zeros(V.shape[1])
    with np.errstate(all="ignore"):
        for i in range(V.shape[0]):
            x = np.where(OK[i], V[i], 0.0)
            t = total + x
            big = np.abs(total) >= np.abs(x)
            comp += np.where(big, (total - t) + x, (x - t) + total)
            total = t
        r = total + comp
    return np.where(np.isinf(total) | np.isnan(total), total, r)


def _welford_var(V: np.ndarray, OK: np.ndarray) -> np.ndarray:
    """Population variance, accumulated series by series like Prometheus (exactly 0 for equal values)."""
    n = V.shape[1]
    cnt = np.zeros(n)
    mean = np.zeros(n)
    aux = np.zeros(n)
    for i in range(V.shape[0]):
        ok = OK[i]
        x = np.where(ok, V[i], 0.0)
        c = cnt + ok
        delta = x - mean
        new_mean = np.where(ok, mean + delta / np.maximum(c, 1), mean)
        aux = np.where(ok, aux + delta * (x - new_mean), aux)
        mean, cnt = new_mean, c
    return aux / np.maximum(cnt, 1)


def _nanreduce(fn, masked):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return fn(masked, axis=0)


def _avg(V, OK, cnt):
    s = kahan_sum(V, OK)
    r = s / np.maximum(cnt, 1)
    bad = ~np.isfinite(s) & np.isfinite(np.where(OK, V, 0.0)).all(axis=0)
    if bad.any():  # overflow: incremental mean like Prometheus
        for j in np.nonzero(bad)[0]:
            m, c = 0.0, 0
            for x in V[OK[:, j], j]:
                c += 1
                m += x / c - m / c
            r[j] = m
    return r


def quantile_of(q: float, vals: np.ndarray) -> float:
    if len(vals) == 0:
        return math.nan
    if math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    nan = np.isnan(vals)
    vals = np.concatenate([vals[nan], np.sort(vals[~nan])])  # Go sorts NaN first
    n = len(vals)
    rank = q * (n - 1)
    lo = max(0, math.floor(rank))
    hi = min(n - 1, lo + 1)
    w = rank - math.floor(rank)
    return float(vals[lo] * (1 - w) + vals[hi] * w)


def _quantile(param, V, OK, n):
    if not isinstance(param, ScalarVal):
        raise PromQLError("expected scalar parameter in quantile")
    r = np.full(n, np.nan)
    for j in range(n):
        col = V[OK[:, j], j]
        if len(col):
            r[j] = quantile_of(float(param.v[j]), col)
    return r


def _select_k(op, groups, param, n) -> InstantVec:
    if not isinstance(param, ScalarVal):
        raise PromQLError(f"expected scalar parameter in {op}")
    ks = param.v
    outs: dict[int, VSeries] = {}
    order: list[int] = []
    all_series = []
    for group in groups.values():
        for s in group:
            all_series.append(s)
    idx = {id(s): i for i, s in enumerate(all_series)}
    oks = {i: np.zeros(n, dtype=bool) for i in range(len(all_series))}
    for j in range(n):
        kf = ks[j]
        if math.isnan(kf):
            raise PromQLError("Parameter value is NaN")
        k = int(kf) if kf < 9.2e18 else 2**62
        if k < 1:
            continue
        for group in groups.values():
            cands = [
                s for s in group if s.ok[j] or (op == "limitk" and s.h is not None and s.h[j] is not None)
            ]
            if op == "limitk":
                chosen = cands[:k]
            else:
                sign = -1.0 if op == "topk" else 1.0

                def sk(s, j=j, sign=sign):
                    x = s.v[j]
                    return (1, 0.0) if math.isnan(x) else (0, sign * x)

                chosen = sorted(cands, key=sk)[:k]
            for s in chosen:
                oks[idx[id(s)]][j] = True
    for i, s in enumerate(all_series):
        if oks[i].any():
            outs[i] = s.only(oks[i])
            order.append(i)
    res = [outs[i] for i in order]
    if n == 1 and op != "limitk":
        sign = -1.0 if op == "topk" else 1.0
        res.sort(key=lambda s: (1, 0.0) if math.isnan(s.v[0]) else (0, sign * s.v[0]))
    return InstantVec(res)


def _limit_ratio(ev, e, groups, param, n) -> InstantVec:
    """Keep a series when its label hash, scaled to [0, 1], falls under the ratio (or, for a
    negative ratio, at or above 1 + ratio): a stable sample that complements across signs."""
    from kms.metrics.promql.histograms import fmt_g
    from kms.metrics.promql.labelhash import labels_hash

    if not isinstance(param, ScalarVal):
        raise PromQLError("expected scalar parameter in limit_ratio")
    r = param.v.copy()
    if np.isnan(r).any():
        raise PromQLError("Ratio value is NaN")
    bad = np.abs(r) > 1
    if bad.any():
        got = float(r[np.argmax(bad)])
        ev.warn(
            f"ratio value should be between -1 and 1, got {fmt_g(got)}, capping to {fmt_g(max(-1.0, min(1.0, got)))}",
            e.param,
        )
        r = np.clip(r, -1.0, 1.0)
    out = []
    for group in groups.values():
        for s in group:
            off = labels_hash(s.labels) / float(2**64 - 1)
            keep = np.where(r >= 0, off < r, off >= 1.0 + r)
            kept = s.only(keep)
            if kept.present().any():
                out.append(kept)
    return InstantVec(out)


def _count_values(vec, label: str, without, names, n) -> InstantVec:
    counts: dict[tuple, np.ndarray] = {}
    for s in vec.series:
        for j in np.nonzero(s.present())[0]:
            lab = dict(_group_key(s.labels, without, names))
            lab[label] = format_float(float(s.v[j])) if s.ok[j] else str(s.h[j])
            k = tuple(sorted(lab.items()))
            if k not in counts:
                counts[k] = np.zeros(n)
            counts[k][j] += 1
    return InstantVec([VSeries(dict(k), c, c > 0) for k, c in counts.items()])
