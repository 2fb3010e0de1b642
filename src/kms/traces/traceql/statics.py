"""TraceQL values (``Static``), their types, and Tempo's scalar semantics.

``binop``/``unop`` are the reference semantics of one operation on two values, as Tempo's
``BinaryOperation.execute`` defines them: operands whose types do not match give ``false``,
int op int stays int (Go truncating division), every other numeric mix is computed as
float (so ``1s * 2s`` is a float), ``=`` between int and duration compares nanoseconds.
They are used for constant folding at parse time and for array-valued attributes; the
vectorised kernels in ``values.py`` implement the same table over columns.
Durations are int nanoseconds; Go ints are 64-bit and wrap around.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "T", "Op", "Status", "Kind", "Static", "NIL", "TRUE", "FALSE", "EvalError",
    "binop", "unop", "is_matching", "types_valid", "unary_valid", "parse_go_duration", "format_go_duration",
    "regex_matches", "check_regex", "wrap64",
]

INT_MIN, INT_MAX = -(1 << 63), (1 << 63) - 1


class EvalError(Exception):
    """An operation with no result (division by zero, ...); callers treat the value as missing."""


class T(IntEnum):
    """Static types (Tempo's StaticType); SPANSET and ATTRIBUTE only exist for type checking."""

    NIL = 0
    SPANSET = 1
    ATTRIBUTE = 2
    INT = 3
    FLOAT = 4
    STRING = 5
    BOOL = 6
    INT_ARRAY = 7
    FLOAT_ARRAY = 8
    STRING_ARRAY = 9
    BOOL_ARRAY = 10
    DURATION = 11
    STATUS = 12
    KIND = 13

    @property
    def numeric(self) -> bool:
        return self in (T.INT, T.FLOAT, T.DURATION)

    @property
    def is_array(self) -> bool:
        return self in (T.INT_ARRAY, T.FLOAT_ARRAY, T.STRING_ARRAY, T.BOOL_ARRAY)


_ELEMENT = {T.INT_ARRAY: T.INT, T.FLOAT_ARRAY: T.FLOAT, T.STRING_ARRAY: T.STRING, T.BOOL_ARRAY: T.BOOL}


class Op(IntEnum):
    """Operators; the names are Tempo's, ``str(op)`` is the TraceQL spelling."""

    ADD = 1
    SUB = 2
    DIV = 3
    MOD = 4
    MULT = 5
    EQ = 6
    NEQ = 7
    RE = 8
    NRE = 9
    GT = 10
    GTE = 11
    LT = 12
    LTE = 13
    POW = 14
    AND = 15
    OR = 16
    NOT = 17
    SS_CHILD = 18
    SS_PARENT = 19
    SS_DESC = 20
    SS_ANCE = 21
    SS_AND = 22
    SS_UNION = 23
    SS_SIBL = 24
    SS_NOT_CHILD = 25
    SS_NOT_PARENT = 26
    SS_NOT_SIBL = 27
    SS_NOT_ANCE = 28
    SS_NOT_DESC = 29
    SS_U_CHILD = 30
    SS_U_PARENT = 31
    SS_U_SIBL = 32
    SS_U_ANCE = 33
    SS_U_DESC = 34
    EXISTS = 35
    NOT_EXISTS = 36

    def __str__(self) -> str:
        return _OP_TEXT[self]

    @property
    def boolean(self) -> bool:
        return self in _BOOLEAN_OPS

    @property
    def arithmetic(self) -> bool:
        return self in (Op.ADD, Op.SUB, Op.MULT, Op.DIV)


_OP_TEXT = {
    Op.ADD: "+", Op.SUB: "-", Op.DIV: "/", Op.MOD: "%", Op.MULT: "*", Op.EQ: "=", Op.NEQ: "!=",
    Op.RE: "=~", Op.NRE: "!~", Op.GT: ">", Op.GTE: ">=", Op.LT: "<", Op.LTE: "<=", Op.POW: "^",
    Op.AND: "&&", Op.OR: "||", Op.NOT: "!", Op.SS_CHILD: ">", Op.SS_PARENT: "<", Op.SS_DESC: ">>",
    Op.SS_ANCE: "<<", Op.SS_AND: "&&", Op.SS_UNION: "||", Op.SS_SIBL: "~", Op.SS_NOT_CHILD: "!>",
    Op.SS_NOT_PARENT: "!<", Op.SS_NOT_SIBL: "!~", Op.SS_NOT_ANCE: "!<<", Op.SS_NOT_DESC: "!>>",
    Op.SS_U_CHILD: "&>", Op.SS_U_PARENT: "&<", Op.SS_U_SIBL: "&~", Op.SS_U_ANCE: "&<<",
    Op.SS_U_DESC: "&>>", Op.EXISTS: "!= nil", Op.NOT_EXISTS: "= nil",
}
_BOOLEAN_OPS = frozenset({Op.OR, Op.AND, Op.EQ, Op.NEQ, Op.RE, Op.NRE, Op.GT, Op.GTE, Op.LT, Op.LTE,
                          Op.NOT, Op.EXISTS, Op.NOT_EXISTS})


class Status(IntEnum):
    """Tempo's numbering (not OTLP's): error 0, ok 1, unset 2."""

    ERROR = 0
    OK = 1
    UNSET = 2

    def __str__(self) -> str:
        return self.name.lower()


class Kind(IntEnum):
    """Tempo's numbering (client and server are swapped relative to OTLP)."""

    UNSPECIFIED = 0
    INTERNAL = 1
    CLIENT = 2
    SERVER = 3
    PRODUCER = 4
    CONSUMER = 5

    def __str__(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class Static:
    """A typed constant. ``value``: int (INT, DURATION ns, STATUS, KIND), float, str, bool,
    tuple (arrays) or None (NIL)."""

    type: T
    value: Any = None

    def __str__(self) -> str:
        return encode(self, quotes=True)

    def as_float(self) -> float:
        if self.type in (T.INT, T.FLOAT, T.DURATION):
            return float(self.value)
        return math.nan

    def python(self) -> Any:
        """The value as Tempo shows it in search results (durations and enums as text)."""
        if self.type is T.DURATION:
            return format_go_duration(self.value)
        if self.type in (T.STATUS, T.KIND, T.NIL):
            return encode(self, quotes=False)
        if self.type.is_array:
            return list(self.value)
        return self.value


NIL = Static(T.NIL)
TRUE = Static(T.BOOL, True)
FALSE = Static(T.BOOL, False)


def wrap64(i: int) -> int:
    """Go int64 wrap-around."""
    return ((i - INT_MIN) % (1 << 64)) + INT_MIN


def encode(s: Static, quotes: bool) -> str:
    """Tempo's ``Static.EncodeToString``."""
    t, v = s.type, s.value
    if t is T.NIL:
        return "nil"
    if t is T.INT:
        return str(v)
    if t is T.FLOAT:
        return format_float(v)
    if t is T.STRING:
        return quote_string(v) if quotes else v
    if t is T.BOOL:
        return "true" if v else "false"
    if t is T.DURATION:
        return format_go_duration(v)
    if t is T.STATUS:
        return str(Status(v))
    if t is T.KIND:
        return str(Kind(v))
    if t is T.STRING_ARRAY:
        return "[" + ", ".join(quote_string(x) for x in v) + "]"
    return "[" + ", ".join(encode(Static(_ELEMENT[t], x), quotes) for x in v) + "]"


def quote_string(v: str) -> str:
    """Backquoted like Tempo; double-quoted with Go escapes when a backquote or CR is inside."""
    if "`" not in v and "\r" not in v:
        return "`" + v + "`"
    out = []
    for ch in v:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def format_float(v: float) -> str:
    """Go's ``strconv.FormatFloat(f, 'g', -1, 64)``, plus ``.0`` when it would read as an int."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    mant, _, exp = repr(float(v)).partition("e")  # shortest repr, as Go's -1 precision
    if exp:
        e = int(exp)
        return f"{mant}e{'-' if e < 0 else '+'}{abs(e):02d}"
    return mant


# ---------------------------------------------------------------------------------------------
# durations

_UNITS_GO = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000, "s": 10**9,
             "m": 60 * 10**9, "h": 3600 * 10**9}
_PROM_RE = re.compile(r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$")
_PROM_UNITS = (365 * 86400 * 10**9, 7 * 86400 * 10**9, 86400 * 10**9, 3600 * 10**9, 60 * 10**9, 10**9, 10**6)
_GO_PART = re.compile(r"(\d*)(?:\.(\d*))?([^\d.]+)")


def parse_go_duration(text: str) -> int | None:
    """Nanoseconds for a PromQL-style duration (``1d2h``) or a Go ``time.ParseDuration`` one
    (``1.5h``, ``300ms``); None when it is neither (as Tempo's lexer tries both)."""
    m = _PROM_RE.match(text)
    if m and text and text != "":
        total = sum(int(g) * u for g, u in zip(m.groups(), _PROM_UNITS, strict=True) if g)
        if total <= INT_MAX:
            return total
        return None
    if text == "0":
        return 0
    s, neg = text, False
    if s[:1] in "+-":
        neg, s = s[0] == "-", s[1:]
    if not s:
        return None
    total, pos = 0, 0
    while pos < len(s):
        m = _GO_PART.match(s, pos)
        if not m:
            return None
        whole, frac, unit = m.group(1), m.group(2), m.group(3)
        if (not whole and not frac) or unit not in _UNITS_GO:
            return None
        scale = _UNITS_GO[unit]
        v = int(whole or "0") * scale
        if frac:
            v += int(frac) * scale // 10 ** len(frac)
        total += v
        pos = m.end()
    if total > INT_MAX:
        return None
    return -total if neg else total


def format_go_duration(ns: int) -> str:
    """Go's ``time.Duration.String()`` (``1h0m0s``, ``1.5s``, ``100ms``, ``0s``)."""
    if ns == 0:
        return "0s"
    neg, u = ns < 0, abs(ns)
    if u < 10**9:
        for unit, scale in (("ns", 1), ("µs", 1_000), ("ms", 1_000_000)):
            if u < scale * 1000:
                text = _frac(u, scale) + unit
                break
    else:
        h, rem = divmod(u, 3600 * 10**9)
        m, rem = divmod(rem, 60 * 10**9)
        text = _frac(rem, 10**9) + "s"
        if h or m:
            text = f"{m}m" + text
        if h:
            text = f"{h}h" + text
    return "-" + text if neg else text


def _frac(v: int, scale: int) -> str:
    whole, rem = divmod(v, scale)
    if not rem:
        return str(whole)
    digits = str(rem).rjust(len(str(scale)) - 1, "0").rstrip("0")
    return f"{whole}.{digits}"


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
        return is_matching(_ELEMENT[a], b) if not b.is_array else False
    if b.is_array:
        return is_matching(_ELEMENT[b], a)
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
    et = _ELEMENT[array.type]
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
