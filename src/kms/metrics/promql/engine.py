"""The PromQL engine: parse with ``promql_parser`` and evaluate its AST over all steps at once.

Every node is evaluated for the whole step grid ``ts`` (int64 ms) in one call; selectors find
their per-step sample with one ``np.searchsorted`` per series. Windows are left-open:
lookback is ``(t - lookback, t]`` and a range ``[r]`` is ``(t - r, t]``.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta

import numpy as np
import promql_parser as pp

from kms.metrics.promql import aggregate, binops, functions, histextended
from kms.metrics.promql.durations import rewrite_durations
from kms.metrics.promql.extended import MOD_LABEL, mark_modifiers, selector_mode, smooth_instant
from kms.metrics.promql.info import DUMMY_LABEL
from kms.metrics.promql.model import Matcher, Series, SeriesSource, is_stale
from kms.metrics.promql.values import (
    InstantVec,
    Matrix,
    MatrixSeries,
    PromQLError,
    RangeVec,
    Result,
    RSeries,
    Sample,
    Scalar,
    ScalarVal,
    String,
    StringVal,
    Vector,
    VSeries,
    label_key,
    without_name,
)

__all__ = ["Engine", "Evaluator", "parse", "window_index"]

_OPS = {"MatchOp.Equal": "=", "MatchOp.NotEqual": "!=", "MatchOp.Re": "=~", "MatchOp.NotRe": "!~"}


def _ms(d: timedelta | None) -> int:
    if d is None:
        return 0
    return (d.days * 86_400_000) + d.seconds * 1000 + d.microseconds // 1000


def _at_ms(at, start_ms: int, end_ms: int) -> int | None:
    if at is None:
        return None
    kind = str(at.type)
    if kind.endswith("Start"):
        return start_ms
    if kind.endswith("End"):
        return end_ms
    dt: datetime = at.at
    return round(dt.timestamp() * 1000)


_TRIM = re.compile(r"""("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)|(>/|</)""")


def trim_operator(query: str) -> tuple[str, str | None]:
    """promql_parser does not know the native-histogram trim operators ``</`` and ``>/``; they
    are parsed as ``atan2`` (same precedence) and evaluated as the trim the query used. Returns
    (query to parse, "</" or ">/" or None). One kind per query, and no ``atan2`` beside it."""
    kinds: set[str] = set()

    def sub(m: re.Match) -> str:
        if m.group(1):
            return m.group(1)
        kinds.add(m.group(2))
        return " atan2 "

    rewritten = _TRIM.sub(sub, query)
    if not kinds:
        return query, None
    if len(kinds) > 1 or re.search(r"\batan2\b", query):
        raise PromQLError("a query may use only one of the operators </ and >/, and not with atan2")
    return rewritten, kinds.pop()


def parse(query: str, step_ms: int = 0, range_ms: int = 0):
    """Parse; on failure retry once with duration expressions folded to literals (see durations.py)."""
    query = trim_operator(query)[0]
    try:
        return pp.parse(query)
    except (ValueError, TypeError) as exc:
        first = exc
    rewritten = query
    if "anchored" in query or "smoothed" in query:
        try:
            rewritten = mark_modifiers(rewritten)
        except (ValueError, IndexError):
            pass
    try:
        rewritten = rewrite_durations(rewritten, step_ms, range_ms)
    except (ValueError, IndexError):
        pass
    if "info(" in rewritten and "non-empty matcher" in str(first):
        rewritten = re.sub(r",\s*\{", f', {{{DUMMY_LABEL}!="", ', rewritten)
    if rewritten != query:
        try:
            return pp.parse(rewritten)
        except (ValueError, TypeError):
            pass
    raise PromQLError(f"parse error: {first}") from None


class Engine:
    """Evaluates PromQL against a ``SeriesSource``. Stateless between queries; safe to share."""

    def __init__(
        self, source: SeriesSource, lookback_delta_ms: int = 300_000, subquery_step_ms: int = 60_000
    ):
        self.source = source
        self.lookback_ms = lookback_delta_ms
        self.subquery_step_ms = subquery_step_ms

    def instant(self, query: str, t_ms: int, *, pin_at_ms: int | None = None) -> Result:
        """Evaluate at one time. ``pin_at_ms`` is a test hook: every selector and outermost subquery
        without ``@`` behaves as if it had ``@ pin_at_ms`` (the conformance step-invariance check)."""
        expr = parse(query)
        ev = Evaluator(self, int(t_ms), int(t_ms), 0)
        ev.pin_at = pin_at_ms
        ev.query = query
        ev.trim = trim_operator(query)[1]
        with np.errstate(all="ignore"):
            val = ev.eval(expr, np.array([t_ms], dtype=np.int64))
        return Result(_to_instant_result(val, int(t_ms)), ev.warnings, ev.infos)

    def range(self, query: str, start_ms: int, end_ms: int, step_ms: int) -> Result:
        if step_ms <= 0:
            raise PromQLError("zero or negative query resolution step widths are not accepted")
        if end_ms < start_ms:
            raise PromQLError("end timestamp must not be before start time")
        expr = parse(query, int(step_ms), int(end_ms) - int(start_ms))
        ts = np.arange(start_ms, end_ms + 1, step_ms, dtype=np.int64)
        ev = Evaluator(self, int(start_ms), int(end_ms), int(step_ms))
        ev.query = query
        ev.trim = trim_operator(query)[1]
        with np.errstate(all="ignore"):
            val = ev.eval(expr, ts)
        return Result(_to_range_result(val, ts), ev.warnings, ev.infos)


def finish_names(series: list[VSeries]) -> list[VSeries]:
    out = []
    for s in series:
        if s.drop_name:
            s = VSeries(without_name(s.labels), s.v, s.ok, h=s.h)
        out.append(s)
    return out


def _merge_same_labels(series: list[VSeries]) -> list[VSeries]:
    groups: dict[tuple, VSeries] = {}
    for s in series:
        k = label_key(s.labels)
        g = groups.get(k)
        if g is None:
            groups[k] = VSeries(s.labels, s.v.copy(), s.ok.copy(), h=None if s.h is None else s.h.copy())
            continue
        if np.any(g.present() & s.present()):
            raise PromQLError("vector cannot contain metrics with the same labelset")
        g.v = np.where(s.ok, s.v, g.v)
        g.ok = g.ok | s.ok
        if s.h is not None:
            hm = s.hmask()
            g.h = np.where(hm, s.h, g.h if g.h is not None else None)
    return list(groups.values())


def _to_instant_result(val, t_ms: int):
    if isinstance(val, ScalarVal):
        return Scalar(t_ms, float(val.v[0]))
    if isinstance(val, StringVal):
        return String(t_ms, val.s)
    if isinstance(val, RangeVec):
        out = []
        for s in val.series:
            lo, hi = int(s.lo[0]), int(s.hi[0])
            hists = []
            if s.ht is not None:
                a, b = int(s.hlo[0]), int(s.hhi[0])
                hists = list(zip(s.ht[a:b].tolist(), s.hv[a:b], strict=True))
            if hi > lo or hists:
                lab = without_name(s.labels) if s.drop_name else s.labels
                out.append(MatrixSeries(lab, s.t[lo:hi], s.v[lo:hi], hists))
        keys = [label_key(s.labels) for s in out]
        if len(set(keys)) != len(keys):
            raise PromQLError("vector cannot contain metrics with the same labelset")
        out.sort(key=lambda s: label_key(s.labels))
        return Matrix(out)
    series = _merge_same_labels(finish_names(val.series))
    out = []
    for s in series:
        if s.ok[0]:
            out.append(Sample(s.labels, t_ms, float(s.v[0])))
        elif s.h is not None and s.h[0] is not None:
            out.append(Sample(s.labels, t_ms, math.nan, s.h[0]))
    return Vector(out)


def _to_range_result(val, ts: np.ndarray):
    if isinstance(val, ScalarVal):
        return Matrix([MatrixSeries({}, ts.copy(), val.v.astype(np.float64))])
    if isinstance(val, StringVal) or isinstance(val, RangeVec):
        kind = "string" if isinstance(val, StringVal) else "range vector"
        raise PromQLError(
            f'invalid expression type "{kind}" for range query, must be Scalar or instant Vector'
        )
    series = _merge_same_labels(finish_names(val.series))
    out = []
    for s in series:
        hists = []
        if s.h is not None:
            hm = s.hmask()
            hists = list(zip(ts[hm].tolist(), s.h[hm], strict=True))
        if s.ok.any() or hists:
            out.append(MatrixSeries(s.labels, ts[s.ok], s.v[s.ok], hists))
    out.sort(key=lambda s: label_key(s.labels))
    return Matrix(out)


def _stats_hints(hs: np.ndarray) -> np.ndarray:
    """Counter-reset hints as Prometheus's histogram statistics iterator gives them: a histogram
    read back as ``unknown`` after another one becomes ``reset`` when it is a reset."""
    out = hs.copy()
    prev = None
    for i, h in enumerate(hs):
        if h is None:
            continue
        if prev is not None and h.hint == "unknown" and h.detect_reset(prev):
            out[i] = h.copy()
            out[i].hint = "reset"
        prev = h
    return out


def _hint_unknown(h):
    if h.hint in ("gauge", "unknown"):
        return h
    h = h.copy()
    h.hint = "unknown"
    return h


def _negated(h):
    return h.copy().scale(-1.0)


def _map_hists(h: np.ndarray | None, fn) -> np.ndarray | None:
    """Apply ``fn`` to every histogram of a per-step object array."""
    if h is None:
        return None
    out = np.empty(len(h), dtype=object)
    out[:] = [None if x is None else fn(x) for x in h]
    return out


def window_index(T: np.ndarray, sid: np.ndarray, n_series: int, bounds: np.ndarray) -> np.ndarray:
    """For every series and step, the global index of the first sample with ``t > bound``
    (``searchsorted(..., "right")`` per series), from one flat search over (series, time) keys."""
    if len(T) == 0:
        return np.zeros((n_series, len(bounds)), dtype=np.int64)
    tmin = min(int(T.min()), int(bounds.min()))
    span = max(int(T.max()), int(bounds.max())) - tmin + 2
    if span * (n_series + 1) >= 2**62:  # keys would overflow: search series by series
        starts = np.searchsorted(sid, np.arange(n_series), "left")
        ends = np.searchsorted(sid, np.arange(n_series), "right")
        return np.stack(
            [a + np.searchsorted(T[a:b], bounds, "right") for a, b in zip(starts, ends, strict=True)]
        )
    key = sid.astype(np.int64) * span + (T - tmin)
    q = np.arange(n_series, dtype=np.int64)[:, None] * span + (bounds - tmin)[None, :]
    return np.searchsorted(key, q.ravel(), "right").reshape(n_series, len(bounds))


class Evaluator:
    """One query's evaluation state: query bounds (for ``@ start()``/``end()``) and annotations."""

    def __init__(self, engine: Engine, start_ms: int, end_ms: int, step_ms: int):
        self.engine = engine
        self.step_ms = step_ms
        self.pin_at: int | None = None
        self.query = ""
        self.trim: str | None = None  # the trim operator ``atan2`` stands for, see trim_operator
        # >0 inside histogram_count/sum/avg: Prometheus reads those selectors with its histogram
        # statistics iterator, which marks counter resets as it finds them (see _stats_hints)
        self.stats = 0
        self.start_ms = start_ms
        self.end_ms = end_ms
        self.warnings: list[str] = []
        self.infos: list[str] = []

    # -- dispatch --
    def eval(self, e, ts: np.ndarray):
        kind = type(e).__name__
        fn = getattr(self, "_eval_" + kind, None)
        if fn is None:
            raise PromQLError(f"unsupported expression {kind}")
        return fn(e, ts)

    def _eval_NumberLiteral(self, e, ts):
        return ScalarVal(np.full(len(ts), float(e.val)))

    def _eval_StringLiteral(self, e, ts):
        return StringVal(e.val)

    def _eval_ParenExpr(self, e, ts):
        return self.eval(e.expr, ts)

    def _eval_UnaryExpr(self, e, ts):
        val = self.eval(e.expr, ts)
        if isinstance(val, ScalarVal):
            return ScalarVal(-val.v)
        return InstantVec(
            [VSeries(s.labels, -s.v, s.ok, True, _map_hists(s.h, _negated)) for s in val.series]
        )

    def _eval_BinaryExpr(self, e, ts):
        return binops.eval_binary(self, e, ts)

    def _eval_AggregateExpr(self, e, ts):
        return aggregate.eval_aggregate(self, e, ts)

    def _eval_Call(self, e, ts):
        return functions.eval_call(self, e, ts)

    # -- selectors --
    def matchers(self, vs) -> list[Matcher]:
        ms = []
        if vs.name:
            ms.append(Matcher("__name__", "=", vs.name))
        for m in vs.matchers.matchers:
            if m.name == MOD_LABEL:
                continue
            op = _OPS[str(m.op)]
            ms.append(Matcher(m.name, op, m.value))
        if vs.matchers.or_matchers:
            raise PromQLError("or-matchers inside braces are not supported")
        return ms

    def effective_times(self, ts: np.ndarray, at, offset) -> np.ndarray:
        at_ms = _at_ms(at, self.start_ms, self.end_ms)
        if at_ms is None:
            at_ms = self.pin_at
        eff = np.full(len(ts), at_ms, dtype=np.int64) if at_ms is not None else ts
        return eff - _ms(offset)

    def _eval_VectorSelector(self, e, ts):
        eff = self.effective_times(ts, e.at, e.offset)
        lb = self.engine.lookback_ms
        if selector_mode(e) == "smoothed":
            out = []
            for s in self.engine.source.select(
                self.matchers(e), int(eff.min()) - lb + 1, int(eff.max()) + lb
            ):
                keep = ~is_stale(s.v)
                if s.h is not None:
                    is_h = np.fromiter((x is not None for x in s.h), dtype=bool, count=len(s.h))
                    name = s.labels.get("__name__", "")
                    if is_h.all():
                        h, mixed = histextended.smooth_histograms(s.t, s.h, eff, lb)
                        if mixed:
                            self.warn(
                                "vector contains a mix of histograms with exponential and custom buckets"
                                f' schemas for metric name "{name}"',
                                e,
                            )
                        out.append(VSeries(s.labels, np.zeros(len(eff)), np.zeros(len(eff), dtype=bool), h=h))
                        continue
                    if is_h.any():
                        self.warn(f'encountered a mix of histograms and floats for metric name "{name}"', e)
                        continue
                v, ok = smooth_instant(s.t[keep], s.v[keep], eff, lb)
                if ok.any():
                    out.append(VSeries(s.labels, v, ok))
            return InstantVec(out)
        found = self.engine.source.select(self.matchers(e), int(eff.min()) - lb + 1, int(eff.max()))
        out = []
        for s in found:
            if self.stats and s.h is not None:
                s = Series(s.labels, s.t, s.v, _stats_hints(s.h), s.st)
            idx = np.searchsorted(s.t, eff, "right") - 1
            safe = np.maximum(idx, 0)
            ok = (idx >= 0) & (s.t[safe] > eff - lb)
            v = s.v[safe]
            ok &= ~is_stale(v)
            h = None
            if s.h is not None:
                h = np.where(ok, s.h[safe], None)
                is_h = np.fromiter((x is not None for x in h), dtype=bool, count=len(h))
                if is_h.any():
                    ok &= ~is_h
                else:
                    h = None
            if ok.any() or h is not None:
                out.append(VSeries(s.labels, np.where(ok, v, 0.0), ok, h=h))
        return InstantVec(out)

    def _eval_MatrixSelector(self, e, ts):
        vs = e.vector_selector
        rng = _ms(e.range)
        eff = self.effective_times(ts, vs.at, vs.offset)
        mode = selector_mode(vs)
        lb = self.engine.lookback_ms
        lo_b = eff - rng - (lb if mode else 0)
        hi_b = eff + (lb if mode == "smoothed" else 0)
        found = self.engine.source.select(self.matchers(vs), int(lo_b.min()) + 1, int(hi_b.max()))
        out = []
        hist_parts = {}
        for i, s in enumerate(found):
            if s.h is not None and self.stats:
                s = Series(s.labels, s.t, s.v, _stats_hints(s.h), s.st)
            if s.h is not None:
                is_h = np.fromiter((x is not None for x in s.h), dtype=bool, count=len(s.h))
                if is_h.any():
                    hst = s.st[is_h] if s.st is not None else None
                    hist_parts[i] = (s.t[is_h], s.h[is_h], hst)
                    st = s.st[~is_h] if s.st is not None else None
                    found[i] = Series(s.labels, s.t[~is_h], s.v[~is_h], None, st)
        if found:
            sid = np.repeat(np.arange(len(found)), [len(s.t) for s in found])
            T = np.concatenate([s.t for s in found])
            V = np.concatenate([s.v for s in found])
            keep = ~is_stale(V)
            T, V, sid = T[keep], V[keep], sid[keep]
            ST = None
            if any(s.st is not None for s in found):
                ST = np.concatenate(
                    [s.st if s.st is not None else np.zeros(len(s.t), np.int64) for s in found]
                )[keep]
            lens = np.bincount(sid, minlength=len(found))
            starts = np.concatenate([[0], np.cumsum(lens)[:-1]])
            LO = window_index(T, sid, len(found), lo_b)
            HI = window_index(T, sid, len(found), hi_b)
            for i, s in enumerate(found):
                a, b = starts[i], starts[i] + lens[i]
                r = RSeries(s.labels, T[a:b], V[a:b], LO[i] - a, HI[i] - a)
                if ST is not None and found[i].st is not None:
                    r.st = ST[a:b]
                if i in hist_parts:
                    ht, hv, r.hst = hist_parts[i]
                    r.ht, r.hv = ht, hv
                    r.hlo = np.searchsorted(ht, lo_b, "right")
                    r.hhi = np.searchsorted(ht, hi_b, "right")
                out.append(r)
        return RangeVec(out, eff - rng, eff, rng, ts, mode)

    def _eval_SubqueryExpr(self, e, ts):
        rng = _ms(e.range)
        step = _ms(e.step) or self.engine.subquery_step_ms
        eff = self.effective_times(ts, e.at, e.offset)
        first = (int(eff.min()) - rng) // step * step
        if first <= int(eff.min()) - rng:
            first += step
        inner_ts = np.arange(first, int(eff.max()) + 1, step, dtype=np.int64)
        out = []
        if len(inner_ts):
            pin, self.pin_at = self.pin_at, None
            stats, self.stats = self.stats, 0  # subqueries read full histograms
            try:
                val = self.eval(e.expr, inner_ts)
            finally:
                self.pin_at, self.stats = pin, stats
            if isinstance(val, ScalarVal):
                val = InstantVec([VSeries({}, val.v, np.ones(len(inner_ts), dtype=bool))])
            elif not isinstance(val, InstantVec):
                raise PromQLError("subquery is only allowed on instant vector")
            for s in val.series:
                t, v = inner_ts[s.ok], s.v[s.ok]
                lo = np.searchsorted(t, eff - rng, "right")
                hi = np.searchsorted(t, eff, "right")
                lab = without_name(s.labels) if s.drop_name else s.labels
                r = RSeries(lab, t, v, lo, hi)
                if s.h is not None:
                    hm = s.hmask()
                    # sampled at the subquery's steps, neighbours are no longer adjacent samples:
                    # their counter-reset hints say nothing, so resets are detected afresh
                    r.ht, r.hv = inner_ts[hm], _map_hists(s.h[hm], _hint_unknown)
                    r.hlo = np.searchsorted(r.ht, eff - rng, "right")
                    r.hhi = np.searchsorted(r.ht, eff, "right")
                out.append(r)
        return RangeVec(out, eff - rng, eff, rng, ts)

    def position(self, node) -> str:
        """``line:col`` (1-based) of ``node`` in the query. promql_parser keeps no positions, so the
        node's printed form is looked up in the query text; unknown forms fall back to ``1:1``."""
        if node is None:
            return "1:1"
        cands = []
        try:
            cands.append(node.prettify())
        except Exception:  # noqa: BLE001 - printing is best effort
            pass
        kind = type(node).__name__
        if kind == "Call":
            cands.append(node.func.name + "(")
        elif kind == "VectorSelector" and node.name:
            cands.append(node.name)
        elif kind == "MatrixSelector" and node.vector_selector.name:
            cands.append(node.vector_selector.name)
        elif kind == "NumberLiteral":
            cands.append(format(node.val, "g"))
        for c in cands:
            idx = self.query.find(c)
            if idx >= 0:
                line = self.query.count("\n", 0, idx) + 1
                col = idx - (self.query.rfind("\n", 0, idx) + 1) + 1
                return f"{line}:{col}"
        return "1:1"

    def warn(self, msg: str, node=None) -> None:
        text = f"PromQL warning: {msg} ({self.position(node)})"
        if text not in self.warnings:
            self.warnings.append(text)

    def info(self, msg: str, node=None) -> None:
        text = f"PromQL info: {msg} ({self.position(node)})"
        if text not in self.infos:
            self.infos.append(text)
