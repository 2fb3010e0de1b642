"""Tempo's operator semantics on single values: type rules, regexes, ``binop``/``unop``.

``binop``/``unop`` are the reference semantics of one operation, as Tempo's
``BinaryOperation.execute`` defines them: operands whose types do not match give ``false``,
int op int stays int (Go truncating division), every other numeric mix is computed as
float (so ``1s * 2s`` is a float), ``=`` between int and duration compares nanoseconds.
They are used for constant folding at parse time and for array-valued attributes; the
vectorised kernels in ``values.py`` implement the same table over columns.
Regexes are RE2 (Arrow's, as Go's), fully anchored, ``.`` matching newlines (Prometheus).
"""

from __future__ import annotations

import math

import pyarrow as pa
import pyarrow.compute as pc

from .statics import ELEMENT, FALSE, INT_MIN, EvalError, Op, Static, T, wrap64

__all__ = ["binop", "unop", "equals", "is_matching", "types_valid", "unary_valid", "check_regex", "regex_matches"]


# ---------------------------------------------------------------------------------------------
# type rules (Tempo's enum_statics.go / enum_operators.go)


def is_matching(a: T, b: T) -> bool:
    """Whether two types can be combined by a binary operator at all."""
    if a is T.ATTRIBUTE or b is T.ATTRIBUTE or a is b:
        return True
    if a.numeric and b.numeric:
        return True
    if a is T.NIL or b is T.NIL:
        return True
    if a.is_array:
        return is_matching(ELEMENT[a], b) if not b.is_array else False
    if b.is_array:
        return is_matching(ELEMENT[b], a)
    return False


_NUMERIC_OPS = frozenset({Op.ADD, Op.SUB, Op.MULT, Op.DIV, Op.MOD, Op.POW, Op.EQ, Op.NEQ, Op.GT, Op.GTE,
                          Op.LT, Op.LTE})
_STRING_OPS = frozenset({Op.EQ, Op.NEQ, Op.RE, Op.NRE, Op.GT, Op.GTE, Op.LT, Op.LTE})
_BOOL_OPS = frozenset({Op.AND, Op.OR, Op.EQ, Op.NEQ})


def _type_valid(op: Op, t: T) -> bool:
    if t is T.ATTRIBUTE:
        return True
    if t in (T.BOOL, T.BOOL_ARRAY):
        return op in _BOOL_OPS
    if t in (T.FLOAT, T.FLOAT_ARRAY, T.INT, T.INT_ARRAY, T.DURATION):
        return op in _NUMERIC_OPS
    if t in (T.STRING, T.STRING_ARRAY):
        return op in _STRING_OPS
    if t in (T.NIL, T.STATUS, T.KIND):
        return op in (Op.EQ, Op.NEQ)
    return False


def types_valid(op: Op, a: T, b: T) -> bool:
    return _type_valid(op, a) and _type_valid(op, b)


def unary_valid(op: Op, t: T) -> bool:
    if t is T.ATTRIBUTE:
        return True
    if op is Op.SUB:
        return t.numeric
    if op is Op.NOT:
        return t is T.BOOL
    return op in (Op.EXISTS, Op.NOT_EXISTS)


# ---------------------------------------------------------------------------------------------
# regular expressions: RE2 (Arrow's), fully anchored, '.' matches newline (Prometheus style)


def anchored(pattern: str) -> str:
    return "^(?s:" + pattern + ")$"


def check_regex(pattern: str) -> bool:
    """Whether RE2 (Go's regexp syntax) accepts the pattern."""
    try:
        pc.match_substring_regex(pa.array([""]), pattern=anchored(pattern))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return False
    return True


def regex_matches(values: pa.Array, pattern: str) -> pa.Array:
    """Fully anchored RE2 match of each string (null in, null out)."""
    return pc.match_substring_regex(values, pattern=anchored(pattern))


# ---------------------------------------------------------------------------------------------
# scalar semantics


def equals(a: Static, b: Static) -> bool:
    """Tempo's ``Static.Equals`` (nil never equals anything)."""
    ta, tb = a.type, b.type
    if ta is T.NIL or tb is T.NIL:
        return False
    if ta in (T.INT, T.DURATION):
        if tb in (T.INT, T.DURATION):
            return a.value == b.value
        if tb is T.STATUS:
            return ta is T.INT and a.value == b.value
        if tb is T.FLOAT:
            return float(a.value) == b.value
        return False
    if ta is T.STATUS:
        return tb in (T.INT, T.STATUS) and a.value == b.value
    if ta is T.FLOAT:
        return a.value == b.as_float()
    return ta is tb and a.value == b.value


def _int_div(a: int, b: int) -> int:
    if b == 0:
        raise EvalError("division by zero")
    q = abs(a) // abs(b)
    return wrap64(q if (a >= 0) == (b >= 0) else -q)


def _int_mod(a: int, b: int) -> int:
    if b == 0:
        raise EvalError("modulo by zero")
    r = abs(a) % abs(b)
    return r if a >= 0 else -r


def _float_div(a: float, b: float) -> float:
    if b == 0:
        if a == 0 or math.isnan(a):
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1.0, b)
    return a / b


def _float_pow(a: float, b: float) -> float:
    try:
        return math.pow(a, b)
    except (OverflowError, ValueError):
        return math.nan if a < 0 else math.inf


def _int_pow(a: int, b: int) -> int:
    f = _float_pow(float(a), float(b))
    if math.isnan(f) or math.isinf(f) or abs(f) >= 2.0**63:
        return INT_MIN
    return int(f)


_CMP = {Op.GT: lambda x, y: x > y, Op.GTE: lambda x, y: x >= y, Op.LT: lambda x, y: x < y,
        Op.LTE: lambda x, y: x <= y}


def binop(op: Op, a: Static, b: Static) -> Static:
    """One binary operation with Tempo's semantics; raises EvalError when there is no value."""
    if not is_matching(a.type, b.type) or not types_valid(op, a.type, b.type):
        return FALSE
    ta, tb = a.type, b.type
    if ta is T.STRING and tb is T.STRING:
        if op in _CMP:
            return Static(T.BOOL, _CMP[op](a.value.encode(), b.value.encode()))
        if op in (Op.RE, Op.NRE):
            if not check_regex(b.value):
                raise EvalError(f"invalid regex {b.value!r}")
            m = bool(regex_matches(pa.array([a.value]), b.value)[0].as_py())
            return Static(T.BOOL, m if op is Op.RE else not m)
    elif ta is T.INT and tb is T.INT:
        x, y = a.value, b.value
        if op is Op.ADD:
            return Static(T.INT, wrap64(x + y))
        if op is Op.SUB:
            return Static(T.INT, wrap64(x - y))
        if op is Op.MULT:
            return Static(T.INT, wrap64(x * y))
        if op is Op.DIV:
            return Static(T.INT, _int_div(x, y))
        if op is Op.MOD:
            return Static(T.INT, _int_mod(x, y))
        if op is Op.POW:
            return Static(T.INT, _int_pow(x, y))
        if op in _CMP:
            return Static(T.BOOL, _CMP[op](x, y))
    elif ta is T.BOOL and tb is T.BOOL:
        if op is Op.AND:
            return Static(T.BOOL, a.value and b.value)
        if op is Op.OR:
            return Static(T.BOOL, a.value or b.value)
    elif (ta.is_array or tb.is_array) and is_matching(ta, tb):
        return _array_op(op, a, b)
    x, y = a.as_float(), b.as_float()
    if op is Op.ADD:
        return Static(T.FLOAT, x + y)
    if op is Op.SUB:
        return Static(T.FLOAT, x - y)
    if op is Op.MULT:
        return Static(T.FLOAT, x * y)
    if op is Op.DIV:
        return Static(T.FLOAT, _float_div(x, y))
    if op is Op.MOD:
        return Static(T.FLOAT, math.fmod(x, y) if y != 0 and not math.isinf(x) else math.nan)
    if op is Op.POW:
        return Static(T.FLOAT, _float_pow(x, y))
    if op in _CMP:
        return Static(T.BOOL, _CMP[op](x, y))
    if op is Op.EQ:
        return Static(T.BOOL, equals(a, b))
    if op is Op.NEQ:
        return Static(T.BOOL, not equals(a, b) if a.type is not T.NIL and b.type is not T.NIL else False)
    raise EvalError(f"unexpected operator {op}")


_FLIP = {Op.GT: Op.LT, Op.GTE: Op.LTE, Op.LT: Op.GT, Op.LTE: Op.GTE}


def _array_op(op: Op, a: Static, b: Static) -> Static:
    """Array against scalar: ``=``/``=~`` and the orderings match any element, ``!=``/``!~`` none."""
    if not op.boolean:
        raise EvalError("arithmetic on arrays")
    if a.type.is_array and b.type.is_array:
        raise EvalError("array operators must consist of a scalar and an array operand")
    elem_op, array, scalar, flip = op, b, a, False
    if a.type.is_array:
        elem_op, array, scalar = _FLIP.get(op, op), a, b
        flip = elem_op in (Op.RE, Op.NRE)
    match_all = elem_op in (Op.NEQ, Op.NRE)
    et = ELEMENT[array.type]
    count = 0
    for x in array.value:
        lhs, rhs = (Static(et, x), scalar) if flip else (scalar, Static(et, x))
        try:
            r = binop(elem_op, lhs, rhs)
        except EvalError:
            raise
        if r.type is T.BOOL and r.value:
            count += 1
            if not match_all:
                break
    return Static(T.BOOL, count == len(array.value) if match_all else count > 0)


def unop(op: Op, a: Static) -> Static:
    """``!x``, ``-x``, ``x != nil`` and ``x = nil``; raises EvalError for wrong types."""
    if op is Op.NOT:
        if a.type is not T.BOOL:
            raise EvalError(f"expected a boolean, got {a.type.name}")
        return Static(T.BOOL, not a.value)
    if op is Op.SUB:
        if a.type is T.INT:
            return Static(T.INT, wrap64(-a.value))
        if a.type is T.FLOAT:
            return Static(T.FLOAT, -a.value)
        if a.type is T.DURATION:
            return Static(T.DURATION, wrap64(-a.value))
        raise EvalError(f"expected a number, got {a.type.name}")
    if op is Op.EXISTS:
        return Static(T.BOOL, a.type is not T.NIL)
    if op is Op.NOT_EXISTS:
        return Static(T.BOOL, a.type is T.NIL)
    raise EvalError(f"invalid unary operator {op}")
