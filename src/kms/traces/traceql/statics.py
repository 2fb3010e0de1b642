"""TraceQL values (``Static``), their types and enums, and how they are written.

Durations are int nanoseconds, parsed and printed as Go does (PromQL units too); Go ints
are 64-bit and wrap around. The operators' semantics live in ``operators.py``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

__all__ = [
    "T", "Op", "Status", "Kind", "Static", "NIL", "TRUE", "FALSE", "EvalError", "INT_MIN", "INT_MAX",
    "parse_go_duration", "format_go_duration", "format_float", "quote_string", "encode", "wrap64",
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


ELEMENT = {T.INT_ARRAY: T.INT, T.FLOAT_ARRAY: T.FLOAT, T.STRING_ARRAY: T.STRING, T.BOOL_ARRAY: T.BOOL}


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
        return "minInt" if v == INT_MIN else str(v)  # -9223372036854775808 has no literal
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
    return "[" + ", ".join(encode(Static(ELEMENT[t], x), quotes) for x in v) + "]"


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
