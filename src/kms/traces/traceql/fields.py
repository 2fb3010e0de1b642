"""Field expressions over rows: attribute / intrinsic columns and their evaluation.

``evaluate_field(ctx, expr, rows)`` gives the expression's ``Vals`` for the rows (int64 row
indices, None = every row), or a ``Static`` when the expression is constant. ``&&`` and
``||`` evaluate the cheaper operand first and the other only on the rows still undecided,
so ``{ kind = server && span.http.target = "/x" }`` reads span attributes of server spans
only. Unscoped ``.x`` is the span attribute, or the resource attribute when the span has
none (Tempo's order).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kms.traces.attributes import TypedColumn, take_rows

from .ast import Attribute, BinaryOp, Intrinsic, Scope, UnaryOp
from .context import SpanContext
from .statics import Op, Static, T
from .values import StrPart, Vals, binary, truth, unary

__all__ = ["evaluate_field", "column", "cost", "matches"]

_TRACE_LEVEL = {Intrinsic.TRACE_DURATION, Intrinsic.TRACE_ROOT_SPAN, Intrinsic.TRACE_ROOT_SERVICE, Intrinsic.TRACE_ID}
_MULTI = {Intrinsic.EVENT_NAME, Intrinsic.EVENT_TIME_SINCE_START, Intrinsic.LINK_SPAN_ID, Intrinsic.LINK_TRACE_ID}


def cost(e: object) -> int:
    """A rough relative cost of evaluating an expression over all rows."""
    if isinstance(e, Attribute):
        if e.intrinsic in _MULTI or e.scope in (Scope.EVENT, Scope.LINK):
            return 50
        if e.intrinsic is not Intrinsic.NONE:
            return 8 if e.intrinsic in (Intrinsic.SPAN_ID, Intrinsic.PARENT_ID, Intrinsic.NESTED_SET_LEFT,
                                        Intrinsic.NESTED_SET_RIGHT, Intrinsic.NESTED_SET_PARENT) else 1
        return 1 if e.scope in (Scope.RESOURCE, Scope.INSTRUMENTATION) else 20
    if isinstance(e, BinaryOp):
        return cost(e.lhs) + cost(e.rhs)
    if isinstance(e, UnaryOp):
        return cost(e.expr)
    return 0


def _count(rows: np.ndarray | None, ctx: SpanContext) -> int:
    return ctx.n if rows is None else len(rows)


def evaluate_field(ctx: SpanContext, e: object, rows: np.ndarray | None) -> Vals | Static:
    if isinstance(e, Static):
        return e
    if isinstance(e, Attribute):
        return column(ctx, e, rows)
    if isinstance(e, UnaryOp):
        return unary(e.op, evaluate_field(ctx, e.expr, rows))
    if isinstance(e, BinaryOp):
        if e.op in (Op.AND, Op.OR):
            return _logical(ctx, e, rows)
        return binary(e.op, evaluate_field(ctx, e.lhs, rows), evaluate_field(ctx, e.rhs, rows))
    raise RuntimeError(f"BUG: not a field expression: {e!r}")


def matches(ctx: SpanContext, e: object, rows: np.ndarray | None) -> np.ndarray:
    """Whether the expression is boolean true for each row."""
    return truth(evaluate_field(ctx, e, rows), _count(rows, ctx))


def _logical(ctx: SpanContext, e: BinaryOp, rows: np.ndarray | None) -> Vals:
    first, second = (e.lhs, e.rhs) if cost(e.lhs) <= cost(e.rhs) else (e.rhs, e.lhs)
    n = _count(rows, ctx)
    res = matches(ctx, first, rows)
    undecided = np.flatnonzero(res if e.op is Op.AND else ~res)
    if len(undecided):
        sub = undecided if rows is None else rows[undecided]
        res[undecided] = matches(ctx, second, sub)
    return Vals.of(T.BOOL, res) if n else Vals(0)


# ------------------------------------------------------------------------------ columns


def _take(a: np.ndarray, rows: np.ndarray | None) -> np.ndarray:
    return a if rows is None else a[rows]


def column(ctx: SpanContext, a: Attribute, rows: np.ndarray | None) -> Vals:
    """The values of an attribute or intrinsic for the rows."""
    i = a.intrinsic
    if i is Intrinsic.NONE:
        return _attribute(ctx, a, rows)
    if i is Intrinsic.DURATION:
        return Vals.of(T.DURATION, _take(ctx.duration, rows))
    if i is Intrinsic.STATUS:
        return Vals.of(T.STATUS, _take(ctx.status, rows))
    if i is Intrinsic.KIND:
        return Vals.of(T.KIND, _take(ctx.kind, rows))
    if i in (Intrinsic.NAME, Intrinsic.STATUS_MESSAGE):
        codes, strings = ctx.name if i is Intrinsic.NAME else ctx.status_message
        c = _take(codes, rows)
        return Vals.strings(np.ones(len(c), bool), c, strings)
    if i in _TRACE_LEVEL:
        return _trace_level(ctx, i, _take(ctx.tix, rows))
    if i is Intrinsic.CHILD_COUNT:
        return Vals.of(T.INT, _take(ctx.child_count, rows))
    if i in (Intrinsic.NESTED_SET_LEFT, Intrinsic.NESTED_SET_RIGHT, Intrinsic.NESTED_SET_PARENT):
        r = np.arange(ctx.n) if rows is None else rows
        left, right, parent = ctx.nested_sets(r)
        return Vals.of(T.INT, {Intrinsic.NESTED_SET_LEFT: left, Intrinsic.NESTED_SET_RIGHT: right}.get(i, parent))
    if i in (Intrinsic.SPAN_ID, Intrinsic.PARENT_ID):
        return _hex_ids(ctx, i, rows)
    if i in (Intrinsic.INSTRUMENTATION_NAME, Intrinsic.INSTRUMENTATION_VERSION):
        return Vals.from_column(ctx.attrs.scope(str(i), rows))
    if i in (Intrinsic.EVENT_NAME, Intrinsic.EVENT_TIME_SINCE_START):
        ev = ctx.attrs.events(rows)
        n = _count(rows, ctx)
        if i is Intrinsic.EVENT_NAME:
            v = Vals.strings(np.ones(len(ev.owner), bool), None, pa.array(ev.names, pa.string()))
        else:
            starts = _take(ctx.start, rows)[ev.owner]
            v = Vals.of(T.DURATION, ev.times_ns - starts)
        return _multi(v, ev.owner, n)
    if i in (Intrinsic.LINK_TRACE_ID, Intrinsic.LINK_SPAN_ID):
        ln = ctx.attrs.links(rows)
        ids = ([t.hex().lstrip("0") for t in ln.trace_ids] if i is Intrinsic.LINK_TRACE_ID
               else [s.hex().rjust(16, "0") for s in ln.span_ids])
        v = Vals.strings(np.ones(len(ids), bool), None, pa.array(ids, pa.string()))
        return _multi(v, ln.owner, _count(rows, ctx))
    return Vals(_count(rows, ctx))  # parent (refused by validation)


def _multi(v: Vals, owner: np.ndarray, nrows: int) -> Vals:
    v.owner, v.nrows = owner, nrows
    return v


def _attribute(ctx: SpanContext, a: Attribute, rows: np.ndarray | None) -> Vals:
    if a.parent:
        return Vals(_count(rows, ctx))
    if a.scope is Scope.RESOURCE:
        return Vals.from_column(ctx.attrs.resource(a.name, rows))
    if a.scope is Scope.SPAN:
        return Vals.from_column(ctx.attrs.span(a.name, rows))
    if a.scope is Scope.INSTRUMENTATION:
        return Vals.from_column(ctx.attrs.scope(a.name, rows))
    if a.scope in (Scope.EVENT, Scope.LINK):
        items = ctx.attrs.events(rows) if a.scope is Scope.EVENT else ctx.attrs.links(rows)
        v = Vals.from_column(TypedColumn.from_values([d.get(a.name) for d in items.attributes]))
        return _multi(v, items.owner, _count(rows, ctx))
    span = Vals.from_column(ctx.attrs.span(a.name, rows))
    missing = ~span.present()
    if not missing.any():
        return span
    idx = np.flatnonzero(missing)
    res = Vals.from_column(ctx.attrs.resource(a.name, idx if rows is None else rows[idx]))
    return _fill(span, idx, res)


def _fill(base: Vals, idx: np.ndarray, extra: Vals) -> Vals:
    """``base`` with the values of ``extra`` (given at positions ``idx``) where base has none."""
    n = base.n
    for t, p in extra.parts.items():
        if isinstance(p, StrPart):
            full_mask = np.zeros(n, bool)
            full_mask[idx] = p.mask
            if not full_mask.any():
                continue
            old = base.parts.get(t)
            src = np.full(n, -1, np.int64)
            src[idx] = np.arange(len(idx))
            new_dense = p.dense().take(pa.array(np.where(src >= 0, src, 0)))
            if old is None:
                base.parts[t] = StrPart(full_mask, None, new_dense)
            else:
                merged = pc.if_else(pa.array(old.mask), old.dense(), new_dense)
                base.parts[t] = StrPart(old.mask | full_mask, None, merged)
        else:
            mask = np.zeros(n, bool)
            mask[idx] = p[0]
            vals = np.zeros(n, p[1].dtype)
            vals[idx] = p[1]
            old = base.parts.get(t)
            if old is None:
                base.parts[t] = (mask, vals)
            else:
                base.parts[t] = (old[0] | mask, np.where(mask, vals, old[1]))
    for pos, s in extra.objs.items():
        base.objs[int(idx[pos])] = s
    return base


def _trace_level(ctx: SpanContext, i: Intrinsic, tix: np.ndarray) -> Vals:
    first, last, root = ctx.trace_bounds
    if i is Intrinsic.TRACE_DURATION:
        return Vals.of(T.DURATION, (last - first)[tix])
    if i is Intrinsic.TRACE_ID:
        uniq, inv = np.unique(tix, return_inverse=True)
        ids = pa.array([ctx.trace_id(int(t)).hex().lstrip("0") for t in uniq], pa.string())
        return Vals.strings(np.ones(len(tix), bool), inv.astype(np.int32), ids)
    r = root[tix]
    has = r >= 0
    rr = np.where(has, r, 0)
    if i is Intrinsic.TRACE_ROOT_SPAN:
        codes, strings = ctx.name
        return Vals.strings(has, codes[rr], strings)
    codes, services = ctx.service
    return Vals.strings(has, codes[rr], pa.array(services, pa.string()))


def _hex_ids(ctx: SpanContext, i: Intrinsic, rows: np.ndarray | None) -> Vals:
    col = ctx.table.column("span_id" if i is Intrinsic.SPAN_ID else "parent_span_id")
    vals = (col if rows is None else take_rows(col, rows)).to_pylist()
    mask = np.array([bool(v) for v in vals], bool)
    strings = pa.array([v.hex().rjust(16, "0") if v else "" for v in vals], pa.string())
    return Vals.strings(mask, None, strings)

