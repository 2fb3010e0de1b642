"""Function calls: dispatch, element-wise math, label functions, date functions."""

from __future__ import annotations

import math
import re

import numpy as np

from kms.metrics.promql import extended, histextended, histfns, histograms, histrange, info, rangefns, starts
from kms.metrics.promql.literals import invalid_utf8_literals
from kms.metrics.promql.values import (
    InstantVec,
    PromQLError,
    RangeVec,
    ScalarVal,
    StringVal,
    VSeries,
    label_key,
)

__all__ = ["eval_call"]

_MATH = {
    "abs": np.abs,
    "ceil": np.ceil,
    "floor": np.floor,
    "exp": np.exp,
    "ln": np.log,
    "log2": np.log2,
    "log10": np.log10,
    "sqrt": np.sqrt,
    "sgn": np.sign,
    "sin": np.sin,
    "cos": np.cos,
    "tan": np.tan,
    "asin": np.arcsin,
    "acos": np.arccos,
    "atan": np.arctan,
    "sinh": np.sinh,
    "cosh": np.cosh,
    "tanh": np.tanh,
    "asinh": np.arcsinh,
    "acosh": np.arccosh,
    "atanh": np.arctanh,
    "deg": np.degrees,
    "rad": np.radians,
}

_RATE = {"rate": (True, True), "increase": (True, False), "delta": (False, False)}

_DATE = ("day_of_month", "day_of_week", "day_of_year", "days_in_month", "hour", "minute", "month", "year")


def _map(vec: InstantVec, fn, keep_name: bool = False) -> InstantVec:
    out = []
    with np.errstate(all="ignore"):
        for s in vec.series:
            out.append(
                VSeries(s.labels, np.asarray(fn(s.v), dtype=np.float64), s.ok, s.drop_name or not keep_name)
            )
    return InstantVec(out)


def _round(v: np.ndarray, to: np.ndarray) -> np.ndarray:
    # Prometheus: math.Floor(v*toNearestInverse+0.5) / toNearestInverse
    inv = 1.0 / to
    return np.floor(v * inv + 0.5) / inv


def _date_part(name: str, secs: np.ndarray) -> np.ndarray:
    out = np.full(len(secs), np.nan)
    fin = np.isfinite(secs)
    ms = np.where(fin, secs * 1000, 0).astype(np.int64)
    dt = ms.astype("datetime64[ms]")
    Y = dt.astype("datetime64[Y]")
    M = dt.astype("datetime64[M]")
    D = dt.astype("datetime64[D]")
    if name == "year":
        r = Y.astype(np.int64) + 1970
    elif name == "month":
        r = M.astype(np.int64) % 12 + 1
    elif name == "day_of_month":
        r = (D - M.astype("datetime64[D]")).astype(np.int64) + 1
    elif name == "day_of_year":
        r = (D - Y.astype("datetime64[D]")).astype(np.int64) + 1
    elif name == "day_of_week":
        r = (D.astype(np.int64) + 4) % 7
    elif name == "days_in_month":
        r = ((M + 1).astype("datetime64[D]") - M.astype("datetime64[D]")).astype(np.int64)
    elif name == "hour":
        r = (dt - D.astype("datetime64[ms]")).astype(np.int64) // 3_600_000
    else:
        r = (dt - D.astype("datetime64[ms]")).astype(np.int64) // 60_000 % 60
    out[fin] = r[fin]
    return out


def eval_call(ev, e, ts):
    name = e.func.name
    n = len(ts)
    args = e.args
    if name == "time":
        return ScalarVal(ts / 1000.0)
    if name == "pi":
        return ScalarVal(np.full(n, math.pi))
    if name == "step":
        return ScalarVal(np.full(n, ev.step_ms / 1000.0))
    if name == "range":
        return ScalarVal(np.full(n, (ev.end_ms - ev.start_ms) / 1000.0))
    if name == "start":
        return ScalarVal(np.full(n, ev.start_ms / 1000.0))
    if name == "end":
        return ScalarVal(np.full(n, ev.end_ms / 1000.0))
    if name == "info":
        return info.eval_info(ev, e, ts)
    if name in ("label_replace", "label_join"):
        return _label_fn(ev, name, args, ts)
    if name in ("histogram_count", "histogram_sum", "histogram_avg"):
        ev.stats += 1
        try:
            vals = [ev.eval(a, ts) for a in args]
        finally:
            ev.stats -= 1
    else:
        vals = [ev.eval(a, ts) for a in args]
    modes = [v.mode for v in vals if isinstance(v, RangeVec) and v.mode]
    if modes:
        extended.check_function(name, modes[0])
        rv = next(v for v in vals if isinstance(v, RangeVec))
        node = next(a for a, v in zip(args, vals, strict=True) if v is rv)
        return InstantVec(histextended.merge_extended(ev, node, name, rv, extended.eval_extended(name, rv)))
    if name in _MATH:
        return _map(vals[0], _MATH[name])
    if name in _RATE:
        c, r = _RATE[name]
        res = rangefns.extrapolated(vals[0], c, r)
        if name != "delta" and type(args[0]).__name__ == "MatrixSelector":
            _counter_info(ev, res, args[0])
        res = starts.apply_starts(ev, args[0], name, vals[0], res)
        return InstantVec(histrange.merge_range(ev, args[0], name, vals[0], res))
    if name in ("irate", "idelta"):
        res = rangefns.instant_delta(vals[0], name == "irate")
        res = starts.apply_starts(ev, args[0], name, vals[0], res)
        return InstantVec(histrange.merge_range(ev, args[0], name, vals[0], res))
    if name.endswith("_over_time") or name in (
        "changes",
        "resets",
        "deriv",
        "predict_linear",
        "double_exponential_smoothing",
    ):
        rv = next(v for v in vals if isinstance(v, RangeVec))
        scal = [v.v for v in vals if isinstance(v, ScalarVal)]
        if name == "quantile_over_time":
            _check_quantile(ev, scal[0], args[0])
        if name == "absent_over_time":
            return _absent(
                ev,
                args[0].vector_selector if type(args[0]).__name__ == "MatrixSelector" else None,
                rv.series,
                rv,
                n,
            )
        res = rangefns.over_time(name, rv, scal)
        node = next(a for a, v in zip(args, vals, strict=True) if v is rv)
        if name == "resets":
            res = starts.apply_starts(ev, node, name, rv, res)
        return InstantVec(histrange.merge_range(ev, node, name, rv, res))
    if name in ("min_of", "max_of"):
        fn = np.minimum if name == "min_of" else np.maximum
        r = vals[0].v
        for v in vals[1:]:
            r = fn(r, v.v)
        return ScalarVal(r)
    if name == "round":
        to = vals[1].v if len(vals) > 1 else np.ones(n)
        return _map(vals[0], lambda v: _round(v, to))
    if name in ("clamp", "clamp_min", "clamp_max"):
        if name == "clamp":
            lo, hi = vals[1].v, vals[2].v
            out = []
            for s in vals[0].series:
                ok = s.ok & ~(lo > hi)
                if ok.any():
                    out.append(VSeries(s.labels, np.maximum(np.minimum(s.v, hi), lo), ok, True))
            return InstantVec(out)
        b = vals[1].v
        fn = np.maximum if name == "clamp_min" else np.minimum
        return _map(vals[0], lambda v: fn(v, b))
    if name == "timestamp":
        return _timestamp(ev, args[0], vals[0], ts)
    if name == "start_timestamp":
        return _timestamp(ev, args[0], vals[0], ts, start=True)
    if name == "vector":
        return InstantVec([VSeries({}, vals[0].v.copy(), np.ones(n, dtype=bool))])
    if name == "scalar":
        vec = vals[0]
        r = np.full(n, np.nan)
        cnt = np.zeros(n, dtype=int)
        for s in vec.series:
            cnt += s.ok
            r = np.where(s.ok, s.v, r)
        return ScalarVal(np.where(cnt == 1, r, np.nan))
    if name in _DATE:
        if not vals:
            return InstantVec([VSeries({}, _date_part(name, ts / 1000.0), np.ones(n, dtype=bool))])
        return _map(vals[0], lambda v: _date_part(name, v))
    if name == "absent":
        return _absent(ev, args[0], vals[0].series, None, n)
    if name.startswith("sort") and ev.step_ms > 0:
        ev.warn("sort is ineffective for range queries since results are always ordered by labels", e)
    if name in ("sort", "sort_desc"):
        rev = name == "sort_desc"
        floats = [VSeries(s.labels, s.v, s.ok, s.drop_name) for s in vals[0].series if s.ok.any()]
        ss = sorted(floats, key=lambda s: _sort_key(s.v[0], rev))
        return InstantVec(ss)
    if name in ("sort_by_label", "sort_by_label_desc"):
        labs = [v.s for v in vals[1:]]
        desc = name.endswith("_desc")
        ss = sorted(vals[0].series, key=lambda s: label_key(s.labels), reverse=desc)
        ss = sorted(ss, key=lambda s: [_natural_key(s.labels.get(x, "")) for x in labs], reverse=desc)
        return InstantVec(ss)
    if name in histfns.SIMPLE:
        fn = histfns.SIMPLE[name]
        return InstantVec(
            [r for s in vals[0].series if (r := histfns.per_step(s, lambda j, h: fn(h))) is not None]
        )
    if name in ("histogram_quantile", "histogram_quantiles", "histogram_fraction"):
        return histograms.eval_histogram_fn(ev, e, name, vals, n)
    raise PromQLError(f"function {name} is not supported")


def _check_quantile(ev, q: np.ndarray, node) -> None:
    bad = np.isnan(q) | (q < 0) | (q > 1)
    if bad.any():
        ev.warn(
            f"quantile value should be between 0 and 1, got {histograms.fmt_g(float(q[np.argmax(bad)]))}",
            node,
        )


def _counter_info(ev, res: list[VSeries], node) -> None:
    for s in res:
        name = s.labels.get("__name__", "")
        if not name:
            continue
        if "__type__" in s.labels:
            typ = s.labels["__type__"]
            if typ not in ("counter", "histogram"):
                ev.info(
                    f'metric might not be a counter, __type__ label is not set to "counter" or "histogram", got "{typ}": "{name}"',
                    node,
                )
        elif not name.endswith(("_total", "_sum", "_count", "_bucket")):
            ev.info(
                f'metric might not be a counter, name does not end in _total/_sum/_count/_bucket: "{name}"',
                node,
            )


def _natural_key(s: str):
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", s) if p != ""]


def _sort_key(x: float, rev: bool):
    if math.isnan(x):
        return (1, 0.0)
    return (0, -x if rev else x)


def _timestamp(ev, arg, vec, ts, start: bool = False):
    """timestamp(), or start_timestamp() (the selected samples' start timestamps, 0 when unknown;
    only a selector's samples have them)."""
    node = arg
    while type(node).__name__ == "ParenExpr":
        node = node.expr
    if type(node).__name__ == "VectorSelector":
        eff = ev.effective_times(ts, node.at, node.offset)
        lb = ev.engine.lookback_ms
        found = ev.engine.source.select(ev.matchers(node), int(eff.min()) - lb + 1, int(eff.max()))
        by = {label_key(s.labels): s for s in found}
        out = []
        for s in vec.series:
            src = by[label_key(s.labels)]
            idx = np.maximum(np.searchsorted(src.t, eff, "right") - 1, 0)
            if start:
                st = src.st[idx] if src.st is not None else np.zeros(len(idx), dtype=np.int64)
                out.append(VSeries(s.labels, st / 1000.0, s.present(), True))
            else:
                out.append(VSeries(s.labels, src.t[idx] / 1000.0, s.present(), True))
        return InstantVec(out)
    if start:
        return InstantVec([])
    return InstantVec([VSeries(s.labels, ts / 1000.0, s.present(), True) for s in vec.series])


def _absent(ev, node, series, rv, n):
    present = np.zeros(n, dtype=bool)
    for s in series:
        if rv is None:
            present |= s.present()
        else:
            present |= s.hi > s.lo
            if s.ht is not None:
                present |= s.hhi > s.hlo
    labels: dict[str, str] = {}
    while node is not None and type(node).__name__ == "ParenExpr":
        node = node.expr
    if node is not None and type(node).__name__ == "MatrixSelector":
        node = node.vector_selector
    if node is not None and type(node).__name__ == "VectorSelector":
        seen: dict[str, int] = {}
        for m in node.matchers.matchers:
            seen[m.name] = seen.get(m.name, 0) + 1
        for m in node.matchers.matchers:
            if str(m.op) == "MatchOp.Equal" and m.name != "__name__" and seen[m.name] == 1:
                labels[m.name] = m.value
    return InstantVec([VSeries(labels, np.ones(n), ~present)])


def _label_fn(ev, name, args, ts):
    vec = ev.eval(args[0], ts)
    strs = [ev.eval(a, ts) for a in args[1:]]
    if not all(isinstance(s, StringVal) for s in strs):
        raise PromQLError(f"expected string arguments in {name}")
    s_args = [s.s for s in strs]
    bad = invalid_utf8_literals(ev.query)
    if s_args[0] in bad:
        raise PromQLError(f"invalid destination label name in {name}(): {bad[s_args[0]]}")
    out = []
    if name == "label_replace":
        dst, repl, src, rx = s_args
        try:
            pat = re.compile("^(?:" + rx + ")$", re.DOTALL)
        except re.error:
            raise PromQLError(f"invalid regular expression in label_replace(): {rx}") from None
        if not re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", dst) and not dst:
            raise PromQLError(f"invalid destination label name in label_replace(): {dst}")
        gorepl = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: "\\g<" + (m.group(1) or m.group(2)) + ">", repl)
        for s in vec.series:
            m = pat.match(s.labels.get(src, ""))
            lab = dict(s.labels)
            if m is not None:
                try:
                    val = m.expand(gorepl)
                except (IndexError, re.error):
                    val = ""
                if val:
                    lab[dst] = val
                else:
                    lab.pop(dst, None)
            out.append(VSeries(lab, s.v, s.ok, s.drop_name and dst != "__name__"))
    else:
        dst, sep, *srcs = s_args
        for s in vec.series:
            lab = dict(s.labels)
            val = sep.join(s.labels.get(x, "") for x in srcs)
            if val:
                lab[dst] = val
            else:
                lab.pop(dst, None)
            out.append(VSeries(lab, s.v, s.ok, s.drop_name and dst != "__name__"))
    return InstantVec(out)
