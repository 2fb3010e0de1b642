"""Metric queries: evaluate a LogQL expression at all steps at once and shape the result.

Values are the PromQL engine's step-vectorised intermediates (``InstantVec``/``ScalarVal``,
one slot per step), so vector aggregations and binary operations reuse
``kms.metrics.promql.aggregate``/``binops`` through small adapters; only ``sort``,
``sort_desc`` and ``label_replace`` are done here. Results use the PromQL value types with
millisecond times.
"""

from __future__ import annotations

import math
import re
from types import SimpleNamespace

import numpy as np

from kms.metrics.promql.aggregate import eval_aggregate
from kms.metrics.promql.binops import eval_binary
from kms.metrics.promql.model import compile_go_regex
from kms.metrics.promql.values import (
    InstantVec,
    Matrix,
    MatrixSeries,
    PromQLError,
    Result,
    Sample,
    Scalar,
    ScalarVal,
    Vector,
    VSeries,
)

from ..source import LogSource, QueryStats
from .ast import (
    BinOp,
    Expr,
    LabelReplace,
    Literal,
    RangeAggregation,
    Variants,
    VectorAggregation,
    VectorLiteral,
)
from .errors import LogQLError
from .rangeagg import ADDITIVE, eval_range_agg

__all__ = ["eval_metric"]

Value = InstantVec | ScalarVal


class _Given:
    """The ``ev`` the PromQL operators call back: here their operands are already values."""

    def eval(self, value, ts):  # noqa: ANN001 - PromQL's duck-typed evaluator interface
        return value

    def warn(self, msg, node=None) -> None:  # noqa: ANN001
        return None


_GIVEN = _Given()


class _Evaluator:
    def __init__(self, source: LogSource, ts: np.ndarray, stats: QueryStats):
        self.source, self.ts, self.stats = source, ts, stats
        self.n = len(ts)

    def eval(self, e: Expr) -> Value:
        if isinstance(e, Literal):
            return ScalarVal(np.full(self.n, e.value))
        if isinstance(e, VectorLiteral):
            return InstantVec([VSeries({}, np.full(self.n, e.value), np.ones(self.n, dtype=bool))])
        if isinstance(e, RangeAggregation):
            return eval_range_agg(self.source, e, self.ts, self.stats)
        if isinstance(e, VectorAggregation):
            return self._vector_agg(e)
        if isinstance(e, BinOp):
            return self._binop(e)
        if isinstance(e, LabelReplace):
            return self._label_replace(e)
        if isinstance(e, Variants):
            raise LogQLError("variants queries are not supported")
        raise LogQLError(f"unexpected expression in a metric query: {e}")

    def _instant(self, e: Expr) -> InstantVec:
        v = self.eval(e)
        if not isinstance(v, InstantVec):
            raise LogQLError(f"expected an instant vector, got a scalar: {e}")
        return v

    def _vector_agg(self, e: VectorAggregation) -> InstantVec:
        inner = e.expr
        if (e.op == "sum" and e.grouping is not None and isinstance(inner, RangeAggregation)
                and inner.op in ADDITIVE and inner.grouping is None):
            vec = eval_range_agg(self.source, inner, self.ts, self.stats, project=e.grouping)
        else:
            vec = self._instant(inner)
        if e.op in ("sort", "sort_desc"):
            return self._sort(vec, e.op == "sort_desc")
        op = "topk" if e.op == "approx_topk" else e.op
        modifier = None
        if e.grouping is not None:
            modifier = SimpleNamespace(type="Without" if e.grouping.without else "By", labels=list(e.grouping.labels))
        param = ScalarVal(np.full(self.n, e.param)) if e.param is not None else None
        node = SimpleNamespace(op=op, modifier=modifier, param=param, expr=vec)
        try:
            return eval_aggregate(_GIVEN, node, self.ts)
        except PromQLError as err:
            raise LogQLError(err.message) from None

    def _sort(self, vec: InstantVec, desc: bool) -> InstantVec:
        if self.n != 1:
            return vec  # ordering only matters for an instant vector
        def key(s: VSeries) -> tuple[int, float]:
            x = float(s.v[0])
            return (1, 0.0) if math.isnan(x) else (0, -x if desc else x)

        return InstantVec(sorted(vec.series, key=key))

    def _binop(self, e: BinOp) -> Value:
        lhs, rhs = self.eval(e.lhs), self.eval(e.rhs)
        if e.op in ("/", "%"):  # Loki: a zero divisor gives NaN, whatever the dividend
            rhs = _zero_as_nan(rhs)
        m = e.matching
        matching = None
        if m.explicit:
            matching = SimpleNamespace(type="Include" if m.on else "Exclude", labels=list(m.labels))
        card = {"one-to-one": "OneToOne", "many-to-one": "ManyToOne", "one-to-many": "OneToMany"}[m.card]
        modifier = SimpleNamespace(
            return_bool=e.return_bool, matching=matching, card=card, group_labels=list(m.include), fill_values=None
        )
        node = SimpleNamespace(op=e.op, modifier=modifier, lhs=lhs, rhs=rhs)
        try:
            out = eval_binary(_GIVEN, node, self.ts)
        except PromQLError as err:  # (Loki's wording of the many-to-many error, without the series)
            raise LogQLError(_DUPLICATES.sub(r"found duplicate series on the \1 hand-side;", err.message)) from None
        return out

    def _label_replace(self, e: LabelReplace) -> InstantVec:
        vec = self._instant(e.expr)
        rx = compile_go_regex("^(?:" + e.regex + ")$")
        repl = _go_template(e.replacement)
        out: dict[tuple, VSeries] = {}
        for s in vec.series:
            labels = dict(s.labels)
            m = rx.match(labels.get(e.src, ""))
            if m is not None:
                value = m.expand(repl)
                if value:
                    labels[e.dst] = value
                else:
                    labels.pop(e.dst, None)
            key = tuple(sorted(labels.items()))
            if key in out:
                prev = out[key]
                if np.any(prev.ok & s.ok):
                    raise LogQLError("vector cannot contain metrics with the same labelset")
                out[key] = VSeries(labels, np.where(s.ok, s.v, prev.v), prev.ok | s.ok)
            else:
                out[key] = VSeries(labels, s.v, s.ok)
        return InstantVec(list(out.values()))


_DUPLICATES = re.compile(r"found duplicate series for the match group .*? on the (left|right) hand-side of the "
                         r"operation: .*?;", re.DOTALL)


def _zero_as_nan(v: Value) -> Value:
    if isinstance(v, ScalarVal):
        return ScalarVal(np.where(v.v == 0, np.nan, v.v))
    return InstantVec([VSeries(s.labels, np.where(s.v == 0, np.nan, s.v), s.ok) for s in v.series])


def _merged(series: list[VSeries]) -> list[VSeries]:
    """Series of one label set as one (``a or b`` over a range: ``b`` fills the steps ``a`` lacks)."""
    out: dict[tuple, VSeries] = {}
    for s in series:
        key = tuple(sorted(s.labels.items()))
        prev = out.get(key)
        out[key] = s if prev is None else VSeries(s.labels, np.where(prev.ok, prev.v, s.v), prev.ok | s.ok)
    return list(out.values())


def _go_template(repl: str) -> str:
    """A Go regexp replacement (``$1``, ``${name}``) as a Python ``Match.expand`` template."""
    out, i = [], 0
    while i < len(repl):
        c = repl[i]
        if c == "\\":
            out.append("\\\\")
        elif c == "$" and i + 1 < len(repl):
            if repl[i + 1] == "$":
                out.append("$")
                i += 2
                continue
            j = i + 1
            if repl[j] == "{":
                k = repl.find("}", j)
                if k > j:
                    out.append(f"\\g<{repl[j + 1 : k]}>")
                    i = k + 1
                    continue
            k = j
            while k < len(repl) and (repl[k].isalnum() or repl[k] == "_"):
                k += 1
            if k > j:
                out.append(f"\\g<{repl[j:k]}>")
                i = k
                continue
            out.append("$")
        else:
            out.append(c)
        i += 1
    return "".join(out)


def eval_metric(source: LogSource, expr: Expr, ts: np.ndarray, stats: QueryStats, *, instant: bool) -> Result:
    """``expr`` at the step times ``ts`` (int64 ns): a Vector/Scalar when ``instant``, else a Matrix."""
    try:
        value = _Evaluator(source, ts, stats).eval(expr)
    except IndexError as e:  # an unknown group in a label_replace template
        raise LogQLError(f"invalid replacement: {e}") from None
    t_ms = ts // 1_000_000
    if isinstance(value, ScalarVal):
        if instant:
            return Result(Scalar(int(t_ms[0]), float(value.v[0])))
        return Result(Matrix([MatrixSeries({}, t_ms.copy(), np.asarray(value.v, dtype=np.float64))]))
    if instant:
        samples = [Sample(dict(s.labels), int(t_ms[0]), float(s.v[0])) for s in value.series if s.ok[0]]
        return Result(Vector(samples))
    series = [MatrixSeries(dict(s.labels), t_ms[s.ok], np.asarray(s.v, dtype=np.float64)[s.ok])
              for s in _merged(value.series) if s.ok.any()]
    series.sort(key=lambda s: sorted(s.labels.items()))
    return Result(Matrix(series))
