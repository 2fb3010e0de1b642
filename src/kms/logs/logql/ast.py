"""The LogQL syntax tree: frozen dataclasses; ``str(expr)`` prints valid LogQL back.

Durations are int nanoseconds. A log query is a ``LogSelector`` (matchers plus pipeline
stages); a metric query is anything else (range and vector aggregations, binary operations,
literals, ``vector()``, ``label_replace``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from kms.metrics.promql.model import Matcher

__all__ = [
    "Expr", "LogSelector", "Stage", "LineFilter", "FilterValue", "Parser", "LabelFilterStage", "LineFormat",
    "LabelFormat", "LabelFmt", "Decolorize", "DropKeep", "LabelFilter", "StringFilter", "NumberFilter",
    "IPFilter", "AndFilter", "OrFilter", "Unwrap", "LogRange", "RangeAggregation", "Grouping",
    "VectorAggregation", "BinOp", "VectorMatching", "Literal", "VectorLiteral", "LabelReplace",
    "Variants", "format_duration", "quote",
]


def quote(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)


def format_duration(ns: int) -> str:
    """Prometheus' duration formatting (``1h30m``, ``500ms``, ``0s``)."""
    if ns == 0:
        return "0s"
    sign, ns = ("-", -ns) if ns < 0 else ("", ns)
    ms = ns // 10**6
    out = []
    for unit, size in (("y", 31536000000), ("w", 604800000), ("d", 86400000), ("h", 3600000), ("m", 60000),
                       ("s", 1000), ("ms", 1)):
        if ms >= size:
            out.append(f"{ms // size}{unit}")
            ms %= size
    return sign + ("".join(out) or f"{ns}ns")


def _fmt_num(v: float) -> str:
    from kms.metrics.promql.aggregate import format_float

    return format_float(v)


def _matcher_str(m: Matcher) -> str:
    return f"{m.name}{m.op}{quote(m.value)}"


# ------------------------------------------------------------------------------ label filters


class LabelFilter:
    """Base of the label filter expressions (``| a="x" and b > 5``)."""


@dataclass(frozen=True)
class StringFilter(LabelFilter):
    matcher: Matcher

    def __str__(self) -> str:
        return _matcher_str(self.matcher)


@dataclass(frozen=True)
class NumberFilter(LabelFilter):
    """``name op value``; ``kind`` is number, duration (value in seconds) or bytes."""

    name: str
    op: str  # == != > >= < <=
    value: float
    kind: str = "number"
    text: str = ""

    def __str__(self) -> str:
        op = "==" if self.op == "=" else self.op
        return f"{self.name}{op}{self.text or _fmt_num(self.value)}"


@dataclass(frozen=True)
class IPFilter(LabelFilter):
    name: str
    op: str  # = or !=
    pattern: str

    def __str__(self) -> str:
        return f"{self.name}{self.op}ip({quote(self.pattern)})"


@dataclass(frozen=True)
class AndFilter(LabelFilter):
    left: LabelFilter
    right: LabelFilter

    def __str__(self) -> str:
        return f"{_paren(self.left)} and {_paren(self.right)}"


@dataclass(frozen=True)
class OrFilter(LabelFilter):
    left: LabelFilter
    right: LabelFilter

    def __str__(self) -> str:
        return f"{_paren(self.left)} or {_paren(self.right)}"


def _paren(f: LabelFilter) -> str:
    return f"( {f} )" if isinstance(f, AndFilter | OrFilter) else str(f)


# ------------------------------------------------------------------------------ pipeline stages


class Stage:
    """Base of the pipeline stages."""


@dataclass(frozen=True)
class FilterValue:
    """One alternative of a line filter: a string (or regex or pattern), or an ``ip()``."""

    value: str
    is_ip: bool = False

    def __str__(self) -> str:
        return f"ip({quote(self.value)})" if self.is_ip else quote(self.value)


@dataclass(frozen=True)
class LineFilter(Stage):
    """``|= "a" or "b"``: ``op`` is one of ``|= != |~ !~ |> !>``; a positive op keeps lines
    matching any alternative, a negative one keeps lines matching none."""

    op: str
    values: tuple[FilterValue, ...]

    @property
    def negated(self) -> bool:
        return self.op.startswith("!")

    def __str__(self) -> str:
        return f"{self.op} " + " or ".join(str(v) for v in self.values)


@dataclass(frozen=True)
class Parser(Stage):
    """``json``/``logfmt``/``regexp``/``pattern``/``unpack``; ``params`` are (label, path)
    pairs for json/logfmt, ``arg`` the expression of regexp/pattern."""

    kind: str
    arg: str = ""
    params: tuple[tuple[str, str], ...] = ()
    strict: bool = False
    keep_empty: bool = False

    def __str__(self) -> str:
        out = f"| {self.kind}"
        if self.strict:
            out += " --strict"
        if self.keep_empty:
            out += " --keep-empty"
        if self.arg or self.kind in ("regexp", "pattern"):
            out += " " + quote(self.arg)
        if self.params:
            out += " " + ",".join(f"{k}={quote(v)}" for k, v in self.params)
        return out


@dataclass(frozen=True)
class LabelFilterStage(Stage):
    filter: LabelFilter

    def __str__(self) -> str:
        return f"| {self.filter}"


@dataclass(frozen=True)
class LineFormat(Stage):
    template: str

    def __str__(self) -> str:
        return f"| line_format {quote(self.template)}"


@dataclass(frozen=True)
class LabelFmt:
    """``dst=src`` (rename) when ``rename``, else ``dst="template"``."""

    dst: str
    value: str
    rename: bool

    def __str__(self) -> str:
        return f"{self.dst}={self.value}" if self.rename else f"{self.dst}={quote(self.value)}"


@dataclass(frozen=True)
class LabelFormat(Stage):
    items: tuple[LabelFmt, ...]

    def __str__(self) -> str:
        return "| label_format " + ",".join(str(i) for i in self.items)


@dataclass(frozen=True)
class Decolorize(Stage):
    def __str__(self) -> str:
        return "| decolorize"


@dataclass(frozen=True)
class DropKeep(Stage):
    """``| drop a, b="v"`` or ``| keep ...``: names, or matchers (drop/keep when it matches)."""

    keep: bool
    items: tuple[str | Matcher, ...]

    def __str__(self) -> str:
        items = ",".join(i if isinstance(i, str) else _matcher_str(i) for i in self.items)
        return f"| {'keep' if self.keep else 'drop'} {items}"


# ------------------------------------------------------------------------------ expressions


class Expr:
    """Base of every LogQL expression."""


@dataclass(frozen=True)
class LogSelector(Expr):
    matchers: tuple[Matcher, ...]
    stages: tuple[Stage, ...] = ()

    def __str__(self) -> str:
        sel = "{" + ", ".join(_matcher_str(m) for m in self.matchers) + "}"
        return " ".join([sel, *(str(s) for s in self.stages)])


@dataclass(frozen=True)
class Unwrap:
    name: str
    conv: str = ""  # "", bytes, duration, duration_seconds
    post_filters: tuple[LabelFilter, ...] = ()

    def __str__(self) -> str:
        out = f"| unwrap {self.conv}({self.name})" if self.conv else f"| unwrap {self.name}"
        return out + "".join(f" | {f}" for f in self.post_filters)


@dataclass(frozen=True)
class LogRange:
    selector: LogSelector
    range_ns: int
    offset_ns: int = 0
    unwrap: Unwrap | None = None

    def __str__(self) -> str:
        out = str(self.selector)
        if self.unwrap is not None:
            out += f" {self.unwrap}"
        out += f" [{format_duration(self.range_ns)}]"
        if self.offset_ns:
            out += f" offset {format_duration(self.offset_ns)}"
        return out


@dataclass(frozen=True)
class Grouping:
    without: bool
    labels: tuple[str, ...]

    def __str__(self) -> str:
        return f" {'without' if self.without else 'by'} ({','.join(self.labels)})"


@dataclass(frozen=True)
class RangeAggregation(Expr):
    op: str
    range: LogRange
    param: float | None = None
    grouping: Grouping | None = None

    def __str__(self) -> str:
        p = f"{_fmt_num(self.param)}," if self.param is not None else ""
        return f"{self.op}({p}{self.range}){self.grouping or ''}"


@dataclass(frozen=True)
class VectorAggregation(Expr):
    op: str
    expr: Expr
    grouping: Grouping | None = None
    param: float | None = None

    def __str__(self) -> str:
        p = f"{_fmt_num(self.param)}," if self.param is not None else ""
        return f"{self.op}{self.grouping or ''}({p}{self.expr})"


@dataclass(frozen=True)
class VectorMatching:
    """``on``/``ignoring`` labels and ``group_left``/``group_right`` (card: one-to-one,
    many-to-one, one-to-many) with the labels to include."""

    on: bool = False
    labels: tuple[str, ...] = ()
    card: str = "one-to-one"
    include: tuple[str, ...] = ()
    explicit: bool = False  # on()/ignoring() written

    def __str__(self) -> str:
        out = ""
        if self.explicit:
            out += f" {'on' if self.on else 'ignoring'}({','.join(self.labels)})"
        if self.card != "one-to-one":
            side = "group_left" if self.card == "many-to-one" else "group_right"
            out += f" {side}({','.join(self.include)})"
        return out


@dataclass(frozen=True)
class BinOp(Expr):
    op: str
    lhs: Expr
    rhs: Expr
    return_bool: bool = False
    matching: VectorMatching = VectorMatching()

    def __str__(self) -> str:
        b = " bool" if self.return_bool else ""
        return f"({self.lhs} {self.op}{b}{self.matching} {self.rhs})"


@dataclass(frozen=True)
class Literal(Expr):
    value: float

    def __str__(self) -> str:
        v = self.value
        if v != v:  # folded 0/0 and friends have no literal of their own
            return "(0 / 0)"
        if v in (float("inf"), float("-inf")):
            return "(1 / 0)" if v > 0 else "(-1 / 0)"
        return "0" if v == 0 else _fmt_num(v)  # "-0" would read back as a duration


@dataclass(frozen=True)
class VectorLiteral(Expr):
    value: float

    def __str__(self) -> str:
        return f"vector({_fmt_num(self.value)})"


@dataclass(frozen=True)
class LabelReplace(Expr):
    expr: Expr
    dst: str
    replacement: str
    src: str
    regex: str

    def __str__(self) -> str:
        args = ",".join(quote(x) for x in (self.dst, self.replacement, self.src, self.regex))
        return f"label_replace({self.expr},{args})"


@dataclass(frozen=True)
class Variants(Expr):
    """``variants(expr, ...) of (log range)``: several metric queries over one log range."""

    exprs: tuple[Expr, ...]
    range: LogRange

    def __str__(self) -> str:
        return f"variants({', '.join(str(e) for e in self.exprs)}) of ({self.range})"
