"""Pipeline evaluation over a span table, vectorised across all traces at once.

Tempo evaluates a pipeline per trace on a list of spansets. Here a ``Batch`` holds the
spansets of every trace together: ``rows`` (row indices) grouped by spanset ``ss``, and per
spanset its trace, its ``origin`` (which input spanset of the enclosing evaluation it comes
from) and its attributes (``by()`` labels, aggregate values). Every pipeline element maps a
batch to a batch: filters keep rows, ``by()`` splits spansets, ``coalesce()`` merges those
with the same origin, spanset operators evaluate both sides on the same input and join
them per origin. The first filter of a query runs over the whole table in table order and
only its matches are grouped by trace.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .ast import (
    Aggregate,
    CoalesceOperation,
    GroupOperation,
    Pipeline,
    ScalarFilter,
    SelectOperation,
    SpansetFilter,
    SpansetOperation,
)
from .context import SpanContext
from .errors import TraceQLError, TraceQLUnsupported
from .fields import evaluate_field, matches
from .statics import Op, Static, T
from .structural import relate
from .values import StrPart, Vals, constant

__all__ = ["Batch", "run_pipeline", "row_values", "value_keys", "group_rows"]

Labels = list[tuple[str, Vals]]  # per-spanset values (n = number of spansets), shared key list
_NEGATED = (Op.SS_NOT_CHILD, Op.SS_NOT_PARENT, Op.SS_NOT_DESC, Op.SS_NOT_ANCE, Op.SS_NOT_SIBL)
_MULTIPLE = "spanset operators are not supported for multiple spansets per trace. consider using coalesce()"


@dataclass
class Batch:
    """Spansets of many traces. ``rows`` is grouped by ``ss`` (ascending rows in a spanset)."""

    rows: np.ndarray
    ss: np.ndarray
    trace: np.ndarray
    origin: np.ndarray
    labels: Labels

    @property
    def size(self) -> int:
        return len(self.trace)

    @classmethod
    def empty(cls) -> Batch:
        e = np.zeros(0, np.int64)
        return cls(e, e, e, e, [])

    @classmethod
    def of_rows(cls, rows: np.ndarray, group: np.ndarray, trace: np.ndarray, origin: np.ndarray,
                labels: Labels) -> Batch:
        """Spansets from rows labelled with a group number (any order; per-group arrays are
        indexed by it); groups keep their order."""
        if not len(rows):
            return cls.empty()
        ascending = len(rows) < 2 or bool(np.all(rows[1:] >= rows[:-1]))
        order = np.argsort(group, kind="stable") if ascending else np.lexsort((rows, group))
        rows, group = rows[order], group[order]
        new = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
        ids = group[new]
        ss = np.cumsum(np.r_[False, group[1:] != group[:-1]])
        return cls(rows, ss, trace[ids], origin[ids], _take_labels(labels, ids))

    def keep(self, mask: np.ndarray) -> Batch:
        """The rows where mask holds; spansets left empty are dropped."""
        if mask.all():
            return self
        rows, ss = self.rows[mask], self.ss[mask]
        if not len(rows):
            return Batch.empty()
        new = np.r_[True, ss[1:] != ss[:-1]]
        ids = ss[new]
        return Batch(rows, np.cumsum(new) - 1, self.trace[ids], self.origin[ids], _take_labels(self.labels, ids))

    def spansets(self, idx: np.ndarray) -> Batch:
        """Only the spansets ``idx`` (ascending)."""
        keep = np.zeros(self.size, bool)
        keep[idx] = True
        return self.keep(keep[self.ss])

    def bounds(self) -> np.ndarray:
        return np.searchsorted(self.ss, np.arange(self.size + 1))


class _Eval:
    def __init__(self, ctx: SpanContext):
        self.ctx = ctx

    # -- entry points
    def full(self, first: object) -> Batch:
        """Every trace as one spanset; a leading filter is run over the table in one pass."""
        ctx = self.ctx
        traces = np.arange(ctx.n_traces)
        if not isinstance(first, SpansetFilter):
            rows = ctx.by_trace
            return Batch(rows, ctx.tix[rows], traces, traces, [])
        rows = np.flatnonzero(matches(ctx, first.expr, None))
        return Batch.of_rows(rows, ctx.tix[rows], traces, traces, [])

    def pipeline(self, p: Pipeline, batch: Batch, skip_first: bool = False) -> Batch:
        for i, el in enumerate(p.elements):
            if skip_first and i == 0:
                continue
            if not batch.size:
                return batch
            batch = self.element(el, batch)
        return batch

    def element(self, el: object, batch: Batch) -> Batch:
        if isinstance(el, SpansetFilter):
            return batch.keep(matches(self.ctx, el.expr, batch.rows))
        if isinstance(el, Pipeline):
            return self.pipeline(el, batch)
        if isinstance(el, SpansetOperation):
            return self.spanset_op(el, batch)
        if isinstance(el, ScalarFilter):
            return self.scalar_filter(el, batch)
        if isinstance(el, GroupOperation):
            return self.group(el, batch)
        if isinstance(el, CoalesceOperation):
            return self.coalesce(batch)
        if isinstance(el, SelectOperation):
            return batch
        raise TraceQLUnsupported(f"pipeline element ({el})")

    # -- spanset operators
    def spanset_op(self, op: SpansetOperation, batch: Batch) -> Batch:
        base = Batch(batch.rows, batch.ss, batch.trace, np.arange(batch.size), batch.labels)
        lhs, rhs = self.element(op.lhs, base), self.element(op.rhs, base)
        lo, ro = lhs.origin[lhs.ss], rhs.origin[rhs.ss]
        n = batch.size
        if op.op in (Op.SS_AND, Op.SS_UNION):
            has_l = np.bincount(lhs.origin, minlength=n) > 0
            has_r = np.bincount(rhs.origin, minlength=n) > 0
            ok = has_l & has_r if op.op is Op.SS_AND else has_l | has_r
            o, r = np.concatenate([lo, ro]), np.concatenate([lhs.rows, rhs.rows])
            sel = ok[o]
            keys = np.unique(o[sel] * self.ctx.n + r[sel])
            o, r = keys // max(self.ctx.n, 1), keys % max(self.ctx.n, 1)
        else:
            r_count = np.bincount(rhs.origin, minlength=n)
            l_count = np.bincount(lhs.origin, minlength=n)
            if ((r_count >= 1) & ((l_count > 1) | (r_count > 1))).any():
                raise TraceQLError(_MULTIPLE)
            both = (l_count > 0) & (r_count > 0)  # only there can a relation hold: the tree is built there
            sl, sr = both[lo], both[ro]
            o, r = relate(self.ctx, op.op, lo[sl], lhs.rows[sl], ro[sr], rhs.rows[sr])
            if op.op in _NEGATED:  # no left-hand spans: every right-hand span is returned
                alone = l_count[ro] == 0
                o, r = np.concatenate([o, ro[alone]]), np.concatenate([r, rhs.rows[alone]])
        return Batch.of_rows(r, o, batch.trace, batch.origin, batch.labels)

    # -- aggregates
    def aggregate(self, agg: Aggregate, batch: Batch) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per spanset: (type, int value, float value, has value)."""
        s = batch.size
        typ = np.full(s, int(T.INT), np.int64)
        if agg.op == "count":
            cnt = np.bincount(batch.ss, minlength=s)
            return typ, cnt.astype(np.int64), cnt.astype(np.float64), np.ones(s, bool)
        v = evaluate_field(self.ctx, agg.expr, batch.rows)
        if isinstance(v, Static):
            v = constant(v, len(batch.rows))
        parts = {t: p for t, p in v.parts.items() if t in (T.INT, T.FLOAT, T.DURATION) and not isinstance(p, StrPart)}
        counts = {t: np.bincount(batch.ss[p[0]], minlength=s) for t, p in parts.items()}
        total = sum(counts.values(), np.zeros(s, np.int64))
        kinds = sum((c > 0).astype(np.int64) for c in counts.values()) if counts else np.zeros(s, np.int64)
        for t, c in counts.items():
            typ[(c > 0) & (kinds == 1)] = int(t)
        typ[kinds > 1] = int(T.FLOAT)
        ival, fval = np.zeros(s, np.int64), np.zeros(s, np.float64)
        if agg.op in ("min", "max"):
            ival[:] = np.iinfo(np.int64).max if agg.op == "min" else np.iinfo(np.int64).min
            fval[:] = np.inf if agg.op == "min" else -np.inf
            ufunc = np.minimum if agg.op == "min" else np.maximum
            for t, (m, vals) in parts.items():
                ufunc.at(fval, batch.ss[m], vals[m].astype(np.float64))
                if t is not T.FLOAT:
                    ufunc.at(ival, batch.ss[m], vals[m])
        else:
            for t, (m, vals) in parts.items():
                np.add.at(fval, batch.ss[m], vals[m].astype(np.float64))
                if t is not T.FLOAT:
                    np.add.at(ival, batch.ss[m], vals[m])
            if agg.op == "avg":
                safe = np.maximum(total, 1)
                with np.errstate(all="ignore"):
                    fval = fval / safe
                ival = np.where(ival >= 0, ival // safe, -(-ival // safe))
                typ[typ == int(T.INT)] = int(T.FLOAT)
        return typ, ival, fval, total > 0

    def scalar_filter(self, sf: ScalarFilter, batch: Batch) -> Batch:
        if not isinstance(sf.lhs, Aggregate) or not isinstance(sf.rhs, Static):
            raise TraceQLUnsupported("scalar filter lhs of type (%v)")
        typ, ival, fval, valid = self.aggregate(sf.lhs, batch)
        rhs = sf.rhs
        keep = valid.copy()
        exact = (typ != int(T.FLOAT)) & (rhs.type in (T.INT, T.DURATION))
        if sf.op in (Op.EQ, Op.NEQ):
            eq = np.where(exact, ival == (rhs.value if exact.any() else 0), fval == rhs.as_float())
            keep &= eq if sf.op is Op.EQ else ~eq
        else:
            cmp = {Op.GT: np.greater, Op.GTE: np.greater_equal, Op.LT: np.less, Op.LTE: np.less_equal}[sf.op]
            keep &= cmp(fval, rhs.as_float())
        if rhs.type not in (T.INT, T.FLOAT, T.DURATION):
            keep[:] = False
        value = Vals(batch.size)
        for t in (T.INT, T.DURATION, T.FLOAT):
            m = typ == int(t)
            if m.any():
                value.parts[t] = (m, fval if t is T.FLOAT else ival)
        out = Batch(batch.rows, batch.ss, batch.trace, batch.origin, batch.labels + [(str(sf.lhs), value)])
        return out.spansets(np.flatnonzero(keep))

    # -- grouping
    def group(self, g: GroupOperation, batch: Batch) -> Batch:
        v = row_values(evaluate_field(self.ctx, g.expr, batch.rows), len(batch.rows))
        group, first_pos = group_rows([batch.ss, *value_keys(v)])
        src = batch.ss[first_pos]
        labels = _take_labels(batch.labels, src) + [(str(g), v.take(first_pos))]
        return Batch.of_rows(batch.rows, group, batch.trace[src], batch.origin[src], labels)

    def coalesce(self, batch: Batch) -> Batch:
        uniq, first = np.unique(batch.origin, return_index=True)
        group = np.searchsorted(uniq, batch.origin[batch.ss])
        return Batch.of_rows(batch.rows, group, batch.trace[first], uniq, [])


def row_values(v: Vals | Static, n: int) -> Vals:
    """One value per row: constants repeated, multi-valued (event/link) values by their first."""
    if isinstance(v, Static):
        return constant(v, n)
    if v.owner is None:
        return v
    rows, first = np.unique(v.owner, return_index=True)
    out = Vals(n)
    for t, p in v.take(first).parts.items():
        out.parts[t] = _scatter(p, rows, n)
    return out


def value_keys(v: Vals) -> tuple[np.ndarray, np.ndarray]:
    """(type code, value code) per position, equal exactly for equal values (nil: type 0)."""
    n = v.n
    tcode, val = np.zeros(n, np.int64), np.zeros(n, np.int64)
    for t, p in v.parts.items():
        if isinstance(p, StrPart):
            codes = pc.dictionary_encode(p.dense()).indices.to_numpy(zero_copy_only=False) if p.codes is None else p.codes
            tcode[p.mask], val[p.mask] = int(t), codes[p.mask]
        else:
            raw = p[1].view(np.int64) if p[1].dtype == np.float64 else p[1].astype(np.int64)
            tcode[p[0]], val[p[0]] = int(t), raw[p[0]]
    for pos, s in v.objs.items():
        tcode[pos], val[pos] = 100, hash(s)
    return tcode, val


def group_rows(keys: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Group positions by equal key tuples: (group per position, first position of each group);
    groups are numbered in order of first appearance."""
    n = len(keys[0])
    order = np.lexsort(keys[::-1])
    new = np.zeros(n, bool)
    if n:
        new[0] = True
        for k in keys:
            ko = k[order]
            new[1:] |= ko[1:] != ko[:-1]
    gid = np.empty(n, np.int64)
    gid[order] = np.cumsum(new) - 1
    first_pos = order[new]  # stable sort: the first position of each group
    by_first = np.argsort(first_pos, kind="stable")
    rank = np.empty(len(first_pos), np.int64)
    rank[by_first] = np.arange(len(first_pos))
    return rank[gid], first_pos[by_first]


def _take_labels(labels: Labels, ids: np.ndarray) -> Labels:
    return [(k, v.take(ids)) for k, v in labels]


def _scatter(p: object, pos: np.ndarray, n: int) -> object:
    if isinstance(p, StrPart):
        mask = np.zeros(n, bool)
        mask[pos] = p.mask
        dense = p.dense().to_pylist()
        full: list[str | None] = [None] * n
        for i, s in zip(pos.tolist(), dense, strict=True):
            full[i] = s
        return StrPart(mask, None, pa.array(full, pa.string()))
    mask, vals = np.zeros(n, bool), np.zeros(n, p[1].dtype)
    mask[pos], vals[pos] = p[0], p[1]
    return mask, vals


def run_pipeline(ctx: SpanContext, p: Pipeline) -> Batch:
    """All spansets the pipeline yields over the table (origin = trace index)."""
    ev = _Eval(ctx)
    first = p.elements[0] if p.elements else None
    batch = ev.full(first)
    return ev.pipeline(p, batch, skip_first=isinstance(first, SpansetFilter))

