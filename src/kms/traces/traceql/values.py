"""Column values (``Vals``) and Tempo's operators over them, vectorised.

A ``Vals`` holds one expression's value for ``n`` positions, split by type: numeric-like
parts are ``(mask, numpy values)``, strings a ``StrPart`` (dictionary codes or a dense Arrow
array), array-valued attributes stay per position as ``Static`` (rare; computed in Python
with ``statics.binop``). A missing value is a position in no part. Event and link values are
*multi-valued*: ``owner`` maps each element to its row position; comparisons on them hold
for a row when they hold for any element.

Semantics follow ``statics.binop``: mismatched types compare false (a total boolean, so
``!(.a = 1)`` holds where ``.a`` is missing), int op int stays int, other numeric mixes are
float, ``&&``/``||`` are true only on boolean operands. Arithmetic without a value (division
by zero, wrong types) gives a missing value.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kms.traces.attributes import TypedColumn

from .operators import binop, is_matching, regex_matches, types_valid, unop
from .statics import NIL, EvalError, Op, Static, T

__all__ = ["StrPart", "Vals", "Operand", "binary", "unary", "truth", "to_static", "constant"]

_ARRAY_TYPES = {str: T.STRING_ARRAY, int: T.INT_ARRAY, float: T.FLOAT_ARRAY, bool: T.BOOL_ARRAY}
_NUMPY = {T.INT: np.int64, T.FLOAT: np.float64, T.DURATION: np.int64, T.BOOL: bool, T.STATUS: np.int64,
          T.KIND: np.int64}


@dataclass
class StrPart:
    """Strings at ``mask`` positions: ``strings[codes]`` (a dictionary) or ``strings`` itself."""

    mask: np.ndarray
    codes: np.ndarray | None
    strings: pa.Array

    def map(self, fn: Any) -> np.ndarray:
        """Apply an Arrow function to the strings; the result per position (numpy)."""
        out = fn(self.strings)
        if isinstance(out, pa.ChunkedArray):
            out = out.combine_chunks()
        if pa.types.is_boolean(out.type):
            out = out.fill_null(False)
        res = out.to_numpy(zero_copy_only=False)
        return res[self.codes] if self.codes is not None else res

    def dense(self) -> pa.Array:
        return self.strings if self.codes is None else self.strings.take(pa.array(self.codes))

    def take(self, idx: np.ndarray) -> StrPart:
        if self.codes is not None:
            return StrPart(self.mask[idx], self.codes[idx], self.strings)
        return StrPart(self.mask[idx], None, self.strings.take(pa.array(idx)))


class Vals:
    """Values of one expression at ``n`` positions (see the module docstring)."""

    __slots__ = ("n", "parts", "objs", "owner", "nrows")

    def __init__(self, n: int, parts: dict[T, Any] | None = None, objs: dict[int, Static] | None = None,
                 owner: np.ndarray | None = None, nrows: int | None = None):
        self.n = n
        self.parts: dict[T, Any] = parts or {}
        self.objs: dict[int, Static] = objs or {}
        self.owner = owner
        self.nrows = n if nrows is None else nrows

    @classmethod
    def of(cls, t: T, values: np.ndarray, mask: np.ndarray | None = None) -> Vals:
        n = len(values)
        return cls(n, {t: (np.ones(n, bool) if mask is None else mask, values)})

    @classmethod
    def strings(cls, mask: np.ndarray, codes: np.ndarray | None, strings: pa.Array) -> Vals:
        return cls(len(mask), {T.STRING: StrPart(mask, codes, strings)})

    @classmethod
    def from_column(cls, col: TypedColumn) -> Vals:
        v = cls(col.n)
        if col.strings is not None:
            v.parts[T.STRING] = StrPart(*col.strings)
        for t, part in ((T.INT, col.ints), (T.FLOAT, col.floats), (T.BOOL, col.bools)):
            if part is not None:
                v.parts[t] = part
        for pos, val in col.other.items():
            s = to_static(val)
            if s is not NIL:
                v.objs[pos] = s
        return v

    def present(self) -> np.ndarray:
        m = np.zeros(self.n, bool)
        for p in self.parts.values():
            m |= p.mask if isinstance(p, StrPart) else p[0]
        if self.objs:
            m[list(self.objs)] = True
        return m

    def take(self, idx: np.ndarray) -> Vals:
        parts = {t: (p.take(idx) if isinstance(p, StrPart) else (p[0][idx], p[1][idx])) for t, p in self.parts.items()}
        objs = {}
        for old, s in self.objs.items():
            for new in np.flatnonzero(idx == old):
                objs[int(new)] = s
        return Vals(len(idx), parts, objs)

    def static_at(self, i: int) -> Static:
        for t, p in self.parts.items():
            if isinstance(p, StrPart):
                if p.mask[i]:
                    return Static(T.STRING, p.strings[int(p.codes[i]) if p.codes is not None else i].as_py())
            elif p[0][i]:
                v = p[1][i]
                return Static(t, bool(v) if t is T.BOOL else float(v) if t is T.FLOAT else int(v))
        return self.objs.get(i, NIL)

    def reduce_any(self) -> Vals:
        """Multi-valued booleans -> per row: true when any element is true."""
        if self.owner is None:
            return self
        return Vals.of(T.BOOL, truth(self))


Operand = Vals | Static


def to_static(v: Any) -> Static:
    """A Python attribute value as a Static (homogeneous lists become arrays; maps and bytes nil)."""
    if isinstance(v, bool):
        return Static(T.BOOL, v)
    if isinstance(v, int):
        return Static(T.INT, v)
    if isinstance(v, float):
        return Static(T.FLOAT, v)
    if isinstance(v, str):
        return Static(T.STRING, v)
    if isinstance(v, list) and v and all(type(x) is type(v[0]) for x in v) and type(v[0]) in _ARRAY_TYPES:
        return Static(_ARRAY_TYPES[type(v[0])], tuple(v))
    return NIL


def truth(v: Operand, n: int | None = None) -> np.ndarray:
    """Where the value is boolean true."""
    if isinstance(v, Static):
        return np.full(n or 0, v.type is T.BOOL and bool(v.value))
    p = v.parts.get(T.BOOL)
    out = np.zeros(v.n, bool) if p is None else p[0] & p[1]
    for pos, s in v.objs.items():
        out[pos] = s.type is T.BOOL and bool(s.value)
    if v.owner is not None:  # multi-valued: a row is true when any of its elements is
        rows = np.zeros(v.nrows, bool)
        rows[v.owner[out]] = True
        return rows
    return out


# ------------------------------------------------------------------------------ kernels

_CMP = {Op.GT: np.greater, Op.GTE: np.greater_equal, Op.LT: np.less, Op.LTE: np.less_equal, Op.EQ: np.equal,
        Op.NEQ: np.not_equal}
_ARROW_CMP = {Op.GT: pc.greater, Op.GTE: pc.greater_equal, Op.LT: pc.less, Op.LTE: pc.less_equal,
              Op.EQ: pc.equal, Op.NEQ: pc.not_equal}
_FLIP = {Op.GT: Op.LT, Op.GTE: Op.LTE, Op.LT: Op.GT, Op.LTE: Op.GTE, Op.EQ: Op.EQ, Op.NEQ: Op.NEQ}


def _iter(x: Operand) -> Iterator[tuple[T, np.ndarray | None, Any]]:
    if isinstance(x, Static):
        if x.type is not T.NIL and not x.type.is_array:
            yield x.type, None, x.value
        return
    for t, p in x.parts.items():
        yield t, (p.mask if isinstance(p, StrPart) else p[0]), (p if isinstance(p, StrPart) else p[1])


def _strings(op: Op, a: Any, b: Any, n: int) -> np.ndarray:
    """A string comparison / regex: StrPart or str on each side."""
    if isinstance(a, str) and isinstance(b, str):
        return np.full(n, binop(op, Static(T.STRING, a), Static(T.STRING, b)).value)
    if isinstance(a, str):
        if op in (Op.RE, Op.NRE):  # validated to be impossible; be total anyway
            dense = b.dense().to_pylist()
            return np.array([binop(op, Static(T.STRING, a), Static(T.STRING, s or "")).value for s in dense], bool)
        return _strings(_FLIP[op], b, a, n)
    if isinstance(b, str):
        if op in (Op.RE, Op.NRE):
            res = a.map(lambda arr: regex_matches(arr, b))
            return res if op is Op.RE else ~res
        return a.map(lambda arr: _ARROW_CMP[op](arr, pa.scalar(b, pa.string())))
    res = _ARROW_CMP.get(op, pc.equal)(a.dense(), b.dense())
    return res.fill_null(False).to_numpy(zero_copy_only=False)


def _int_kernel(op: Op, x: Any, y: Any, m: np.ndarray) -> tuple[T, Any, np.ndarray]:
    if op in _CMP:
        return T.BOOL, _CMP[op](x, y), m
    if op is Op.ADD:
        return T.INT, np.add(x, y), m
    if op is Op.SUB:
        return T.INT, np.subtract(x, y), m
    if op is Op.MULT:
        return T.INT, np.multiply(x, y), m
    y_arr = np.broadcast_to(np.asarray(y, np.int64), m.shape)
    safe = np.where(y_arr == 0, 1, y_arr)
    if op is Op.DIV:
        q = np.abs(x) // np.abs(safe) * np.sign(x) * np.sign(safe)
        return T.INT, q, m & (y_arr != 0)
    if op is Op.MOD:
        return T.INT, np.fmod(x, safe), m & (y_arr != 0)
    if op is Op.POW:
        f = np.power(np.asarray(x, np.float64), np.asarray(y, np.float64))
        ok = np.isfinite(f) & (np.abs(f) < 2.0**63)
        return T.INT, np.where(ok, f, 0).astype(np.int64), m & ok
    raise EvalError(f"unexpected operator {op}")


def _float_kernel(op: Op, ta: T, x: Any, tb: T, y: Any, m: np.ndarray) -> tuple[T, Any, np.ndarray]:
    if op in (Op.EQ, Op.NEQ) and ta in (T.INT, T.DURATION) and tb in (T.INT, T.DURATION):
        return T.BOOL, _CMP[op](x, y), m  # exact, as Static.Equals compares the int64 values
    fx, fy = np.asarray(x, np.float64), np.asarray(y, np.float64)
    with np.errstate(all="ignore"):
        if op in _CMP:
            return T.BOOL, _CMP[op](fx, fy), m
        out = {Op.ADD: np.add, Op.SUB: np.subtract, Op.MULT: np.multiply, Op.DIV: np.divide,
               Op.MOD: np.fmod, Op.POW: np.power}[op](fx, fy)
    return T.FLOAT, out, m


def _kernel(op: Op, ta: T, a: Any, tb: T, b: Any, m: np.ndarray) -> tuple[T, Any, np.ndarray]:
    if ta is T.STRING and tb is T.STRING:
        if op in _CMP or op in (Op.RE, Op.NRE):
            return T.BOOL, _strings(op, a, b, len(m)), m
        raise EvalError(f"unexpected operator {op} for strings")
    if ta is T.INT and tb is T.INT:
        return _int_kernel(op, a, b, m)
    if ta is tb and ta in (T.BOOL, T.STATUS, T.KIND):
        if op in (Op.EQ, Op.NEQ):
            return T.BOOL, _CMP[op](a, b), m
        if op in (Op.AND, Op.OR) and ta is T.BOOL:
            return T.BOOL, (np.logical_and if op is Op.AND else np.logical_or)(a, b), m
        raise EvalError(f"unexpected operator {op}")
    return _float_kernel(op, ta, a, tb, b, m)


# ------------------------------------------------------------------------------ operators


def _align(a: Operand, b: Operand) -> tuple[Operand, Operand, np.ndarray | None, int] | None:
    """Broadcast a row-level operand onto a multi-valued one; None when owners differ."""
    oa = a.owner if isinstance(a, Vals) else None
    ob = b.owner if isinstance(b, Vals) else None
    if oa is not None and ob is not None and oa is not ob:
        return None
    if oa is not None and isinstance(b, Vals) and ob is None:
        b = b.take(oa)
    if ob is not None and isinstance(a, Vals) and oa is None:
        a = a.take(ob)
    owner = oa if oa is not None else ob
    n = a.n if isinstance(a, Vals) else b.n  # type: ignore[union-attr]
    nrows = (a if isinstance(a, Vals) and a.owner is not None else b).nrows if owner is not None else n
    return a, b, owner, nrows


def binary(op: Op, a: Operand, b: Operand) -> Operand:
    """``a op b`` with Tempo's semantics (comparisons on multi-valued operands: any element)."""
    if isinstance(a, Static) and isinstance(b, Static):
        try:
            return binop(op, a, b)
        except EvalError:
            return NIL
    aligned = _align(a, b)
    if aligned is None:
        nrows = a.nrows if isinstance(a, Vals) else b.nrows  # type: ignore[union-attr]
        return Vals.of(T.BOOL, np.zeros(nrows, bool)) if op.boolean else Vals(nrows)
    a, b, owner, nrows = aligned
    n = a.n if isinstance(a, Vals) else b.n  # type: ignore[union-attr]
    boolean = op.boolean
    out = Vals(n, owner=owner, nrows=nrows)
    res_val = np.zeros(n, bool)
    for ta, ma, xa in _iter(a):
        for tb, mb, xb in _iter(b):
            m = np.ones(n, bool) if ma is None and mb is None else (ma if mb is None else mb if ma is None else ma & mb)
            if not m.any() or not is_matching(ta, tb) or not types_valid(op, ta, tb):
                continue
            t, vals, ok = _kernel(op, ta, xa, tb, xb, m)
            if boolean:
                res_val |= np.broadcast_to(vals, (n,)) & ok
            else:
                vals = np.broadcast_to(vals, (n,))
                prev = out.parts.get(t)
                if prev is None:
                    out.parts[t] = (ok.copy(), np.array(vals, _NUMPY[t]))
                else:
                    prev[1][ok] = vals[ok]
                    prev[0][:] |= ok
    _objects(op, a, b, out, res_val)
    if boolean:
        out.parts = {T.BOOL: (np.ones(n, bool), res_val)}
        return out.reduce_any()
    return out


def _objects(op: Op, a: Operand, b: Operand, out: Vals, res_val: np.ndarray) -> None:
    """Positions where either side is an array value: computed one by one."""
    positions = set(a.objs if isinstance(a, Vals) else ()) | set(b.objs if isinstance(b, Vals) else ())
    for pos in sorted(positions):
        sa = a if isinstance(a, Static) else a.static_at(pos)
        sb = b if isinstance(b, Static) else b.static_at(pos)
        if sa is NIL or sb is NIL:
            continue
        try:
            r = binop(op, sa, sb)
        except EvalError:
            continue
        if op.boolean:
            res_val[pos] = r.type is T.BOOL and bool(r.value)
        elif r.type in _NUMPY:
            prev = out.parts.setdefault(r.type, (np.zeros(out.n, bool), np.zeros(out.n, _NUMPY[r.type])))
            prev[0][pos], prev[1][pos] = True, r.value


def unary(op: Op, a: Operand) -> Operand:
    """``-a``, ``!a``, ``a != nil``, ``a = nil``."""
    if isinstance(a, Static):
        try:
            return unop(op, a)
        except EvalError:
            return NIL
    if op in (Op.EXISTS, Op.NOT_EXISTS):
        present = a.present()
        if a.owner is not None:
            rows = np.zeros(a.nrows, bool)
            rows[a.owner[present]] = True
            present, n = rows, a.nrows
        else:
            n = a.n
        return Vals.of(T.BOOL, present if op is Op.EXISTS else ~present) if n else Vals(0)
    out = Vals(a.n, owner=a.owner, nrows=a.nrows)
    for t, p in a.parts.items():
        if op is Op.NOT and t is T.BOOL:
            out.parts[t] = (p[0], ~p[1])
        elif op is Op.SUB and t in (T.INT, T.FLOAT, T.DURATION):
            out.parts[t] = (p[0], -p[1])
    for pos, s in a.objs.items():
        try:
            r = unop(op, s)
        except EvalError:
            continue
        out.objs[pos] = r
    return out


def constant(s: Static, n: int) -> Vals:
    """A Static repeated n times."""
    if s.type is T.STRING:
        return Vals.strings(np.ones(n, bool), np.zeros(n, np.int32), pa.array([s.value], pa.string()))
    if s.type in _NUMPY:
        return Vals.of(s.type, np.full(n, s.value, _NUMPY[s.type]))
    if s.type is T.NIL:
        return Vals(n)
    return Vals(n, objs=dict.fromkeys(range(n), s))

