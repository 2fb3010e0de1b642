"""The TraceQL syntax tree: frozen dataclasses, their implied types and the stringer.

``str(node)`` follows Tempo's ``ast_stringer.go`` (operands that are not literals or
attributes are parenthesised, pipelines are joined by ``|``), so a printed query parses
back to an equal tree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from .lexer import is_attribute_rune
from .statics import Op, Static, T, format_float

__all__ = [
    "Scope", "Intrinsic", "Attribute", "BinaryOp", "UnaryOp", "FieldExpr", "SpansetFilter", "SpansetOperation",
    "Pipeline", "ScalarFilter", "ScalarOperation", "Aggregate", "GroupOperation", "CoalesceOperation",
    "SelectOperation", "MetricsAggregate", "MetricsCompare", "TopK", "MetricsFilter", "MetricsScalarOp",
    "MetricsLeaf", "MetricsMath", "Hint", "Query", "implied_type", "references_span",
]


class Scope(IntEnum):
    NONE = 0
    RESOURCE = 2
    SPAN = 3
    EVENT = 4
    LINK = 5
    INSTRUMENTATION = 6

    def __str__(self) -> str:
        return self.name.lower()


class Intrinsic(IntEnum):
    NONE = 0
    DURATION = 1
    NAME = 2
    STATUS = 3
    STATUS_MESSAGE = 4
    KIND = 5
    CHILD_COUNT = 6
    TRACE_ROOT_SERVICE = 7
    TRACE_ROOT_SPAN = 8
    TRACE_DURATION = 9
    NESTED_SET_LEFT = 10
    NESTED_SET_RIGHT = 11
    NESTED_SET_PARENT = 12
    EVENT_NAME = 13
    EVENT_TIME_SINCE_START = 14
    LINK_SPAN_ID = 15
    LINK_TRACE_ID = 16
    INSTRUMENTATION_NAME = 17
    INSTRUMENTATION_VERSION = 18
    PARENT = 19
    TRACE_ID = 23
    SPAN_ID = 24
    PARENT_ID = 25

    def __str__(self) -> str:
        return INTRINSIC_NAMES[self]

    @property
    def type(self) -> T:
        return _INTRINSIC_TYPES.get(self, T.ATTRIBUTE)


INTRINSIC_NAMES = {
    Intrinsic.NONE: "none", Intrinsic.DURATION: "duration", Intrinsic.NAME: "name", Intrinsic.STATUS: "status",
    Intrinsic.STATUS_MESSAGE: "statusMessage", Intrinsic.KIND: "kind", Intrinsic.CHILD_COUNT: "span:childCount",
    Intrinsic.EVENT_NAME: "event:name", Intrinsic.EVENT_TIME_SINCE_START: "event:timeSinceStart",
    Intrinsic.LINK_SPAN_ID: "link:spanID", Intrinsic.LINK_TRACE_ID: "link:traceID", Intrinsic.PARENT: "parent",
    Intrinsic.TRACE_ROOT_SERVICE: "rootServiceName", Intrinsic.TRACE_ROOT_SPAN: "rootName",
    Intrinsic.TRACE_DURATION: "traceDuration", Intrinsic.TRACE_ID: "trace:id", Intrinsic.SPAN_ID: "span:id",
    Intrinsic.PARENT_ID: "span:parentID", Intrinsic.INSTRUMENTATION_NAME: "instrumentation:name",
    Intrinsic.INSTRUMENTATION_VERSION: "instrumentation:version", Intrinsic.NESTED_SET_LEFT: "nestedSetLeft",
    Intrinsic.NESTED_SET_RIGHT: "nestedSetRight", Intrinsic.NESTED_SET_PARENT: "nestedSetParent",
}
_INTRINSIC_TYPES = {
    Intrinsic.DURATION: T.DURATION, Intrinsic.CHILD_COUNT: T.INT, Intrinsic.NAME: T.STRING,
    Intrinsic.STATUS: T.STATUS, Intrinsic.STATUS_MESSAGE: T.STRING, Intrinsic.KIND: T.KIND,
    Intrinsic.EVENT_NAME: T.STRING, Intrinsic.EVENT_TIME_SINCE_START: T.DURATION, Intrinsic.LINK_TRACE_ID: T.STRING,
    Intrinsic.LINK_SPAN_ID: T.STRING, Intrinsic.PARENT: T.NIL, Intrinsic.TRACE_DURATION: T.DURATION,
    Intrinsic.TRACE_ROOT_SERVICE: T.STRING, Intrinsic.TRACE_ROOT_SPAN: T.STRING, Intrinsic.NESTED_SET_LEFT: T.INT,
    Intrinsic.NESTED_SET_RIGHT: T.INT, Intrinsic.NESTED_SET_PARENT: T.INT, Intrinsic.TRACE_ID: T.STRING,
    Intrinsic.SPAN_ID: T.STRING, Intrinsic.PARENT_ID: T.STRING, Intrinsic.INSTRUMENTATION_NAME: T.STRING,
    Intrinsic.INSTRUMENTATION_VERSION: T.STRING,
}


# ------------------------------------------------------------------------------ field expressions


@dataclass(frozen=True)
class Attribute:
    """An attribute (``span.x``, ``.x``, ``parent.resource.x``) or an intrinsic (``duration``)."""

    name: str
    scope: Scope = Scope.NONE
    parent: bool = False
    intrinsic: Intrinsic = Intrinsic.NONE

    @classmethod
    def of(cls, intrinsic: Intrinsic) -> Attribute:
        return cls(str(intrinsic), Scope.NONE, False, intrinsic)

    def __str__(self) -> str:
        scopes = (["parent"] if self.parent else []) + ([str(self.scope)] if self.scope is not Scope.NONE else [])
        att = self.name if self.intrinsic is Intrinsic.NONE else str(self.intrinsic)
        prefix = ".".join(scopes) + "." if scopes else ""
        if self.intrinsic is Intrinsic.NONE:
            prefix = prefix or "."
            if (not att or '"' in att or not all(is_attribute_rune(c) for c in att)
                    or (self.parent and att.startswith(("span.", "resource.")))):
                att = '"' + att.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return prefix + att


@dataclass(frozen=True)
class BinaryOp:
    op: Op
    lhs: FieldExpr
    rhs: FieldExpr

    def __str__(self) -> str:
        return f"{_wrap(self.lhs)} {self.op} {_wrap(self.rhs)}"


@dataclass(frozen=True)
class UnaryOp:
    """``-x``, ``!x``, and ``x != nil`` / ``x = nil`` (op EXISTS / NOT_EXISTS)."""

    op: Op
    expr: FieldExpr

    def __str__(self) -> str:
        if self.op in (Op.EXISTS, Op.NOT_EXISTS):
            return f"{_wrap(self.expr)} {self.op}"
        return f"{self.op}{_wrap(self.expr)}"


FieldExpr = Static | Attribute | BinaryOp | UnaryOp


def _wrap(e: object) -> str:
    if isinstance(e, Static) and e.type in (T.INT, T.FLOAT, T.DURATION) and e.value < 0:
        return f"({e})"  # "-1 * x" would read back as -(1 * x)
    if isinstance(e, Static | Attribute):
        return str(e)
    return f"({e})"


# ------------------------------------------------------------------------------ pipelines


@dataclass(frozen=True)
class SpansetFilter:
    expr: FieldExpr

    def __str__(self) -> str:
        return f"{{ {self.expr} }}"


@dataclass(frozen=True)
class SpansetOperation:
    """``&&``, ``||`` and the structural operators between spanset expressions/pipelines."""

    op: Op
    lhs: SpansetExpr
    rhs: SpansetExpr

    def __str__(self) -> str:
        return f"{_wrap(self.lhs)} {self.op} {_wrap(self.rhs)}"


@dataclass(frozen=True)
class Aggregate:
    """``count()``, ``avg(e)``, ``min(e)``, ``max(e)``, ``sum(e)`` over a spanset."""

    op: str
    expr: FieldExpr | None = None

    def __str__(self) -> str:
        return f"{self.op}({'' if self.expr is None else self.expr})"


@dataclass(frozen=True)
class ScalarOperation:
    op: Op
    lhs: ScalarExpr
    rhs: ScalarExpr

    def __str__(self) -> str:
        return f"{_wrap(self.lhs)} {self.op} {_wrap(self.rhs)}"


@dataclass(frozen=True)
class ScalarFilter:
    """``aggregate <op> literal`` (the only form Tempo runs) and the other scalar comparisons."""

    op: Op
    lhs: ScalarExpr
    rhs: ScalarExpr

    def __str__(self) -> str:
        return f"{_wrap(self.lhs)} {self.op} {_wrap(self.rhs)}"


@dataclass(frozen=True)
class GroupOperation:
    expr: FieldExpr

    def __str__(self) -> str:
        return f"by({self.expr})"


@dataclass(frozen=True)
class CoalesceOperation:
    def __str__(self) -> str:
        return "coalesce()"


@dataclass(frozen=True)
class SelectOperation:
    attrs: tuple[Attribute, ...]

    def __str__(self) -> str:
        return "select(" + ", ".join(str(a) for a in self.attrs) + ")"


@dataclass(frozen=True)
class Pipeline:
    elements: tuple[PipelineElement, ...]

    def __str__(self) -> str:
        return "|".join(str(e) for e in self.elements)


SpansetExpr = SpansetFilter | SpansetOperation | Pipeline
ScalarExpr = Aggregate | ScalarOperation | Static | Pipeline
PipelineElement = SpansetFilter | SpansetOperation | Pipeline | ScalarFilter | GroupOperation | CoalesceOperation | SelectOperation


# ------------------------------------------------------------------------------ metrics


@dataclass(frozen=True)
class MetricsAggregate:
    """First-stage metrics function: rate(), count_over_time(), ..._over_time(attr), quantile_over_time."""

    op: str
    attr: Attribute | None = None
    by: tuple[Attribute, ...] = ()
    quantiles: tuple[float, ...] = ()

    def __str__(self) -> str:
        s = self.op + "(" + ("" if self.attr is None else str(self.attr))
        if self.op == "quantile_over_time":
            s += "," + ",".join(f"{q:.5f}" for q in self.quantiles)
        s += ")"
        if self.by:
            s += "by(" + ",".join(str(b) for b in self.by) + ")"
        return s


@dataclass(frozen=True)
class MetricsCompare:
    filter: SpansetFilter
    top_n: int = 10
    start_ns: int = 0
    end_ns: int = 0

    def __str__(self) -> str:
        extra = "" if (self.top_n, self.start_ns, self.end_ns) == (10, 0, 0) else f",{self.top_n}"
        if self.start_ns or self.end_ns:
            extra += f",{self.start_ns},{self.end_ns}"
        return f"compare({self.filter}{extra})"


@dataclass(frozen=True)
class TopK:
    op: str  # "topk" | "bottomk"
    limit: int


@dataclass(frozen=True)
class MetricsFilter:
    """A comparison applied to each sample of a metrics result (durations in seconds)."""

    op: Op
    value: float


@dataclass(frozen=True)
class MetricsScalarOp:
    """``series op value`` (or ``value op series`` when ``scalar_on_left``) on each sample."""

    op: Op
    value: float
    scalar_on_left: bool = False


SecondStage = TopK | MetricsFilter | MetricsScalarOp


@dataclass(frozen=True)
class MetricsLeaf:
    pipeline: Pipeline
    agg: MetricsAggregate | MetricsCompare
    stages: tuple[SecondStage, ...] = ()

    def __str__(self) -> str:
        return _render_stages(f"{self.pipeline} | {self.agg}", self.stages)


@dataclass(frozen=True)
class MetricsMath:
    op: Op
    lhs: MetricsNode
    rhs: MetricsNode
    stages: tuple[SecondStage, ...] = ()

    def __str__(self) -> str:
        return _render_stages(f"({self.lhs}) {self.op} ({self.rhs})", self.stages)


MetricsNode = MetricsLeaf | MetricsMath


def _render_stages(inner: str, stages: tuple[SecondStage, ...]) -> str:
    for st in stages:
        if isinstance(st, TopK):
            inner += f" | {st.op}({st.limit})"
        elif isinstance(st, MetricsFilter):
            inner += f" {st.op} {_metric_float(st.value)}"
        else:
            v = _metric_float(st.value)
            inner = f"{v} {st.op} ({inner})" if st.scalar_on_left else f"({inner}) {st.op} {v}"
    return inner


def _metric_float(v: float) -> str:
    """Tempo's formatFloat: integral values without a decimal point."""
    if v == v and abs(v) != float("inf") and v == int(v):
        return str(int(v))
    return format_float(v)


# ------------------------------------------------------------------------------ the query


@dataclass(frozen=True)
class Hint:
    name: str
    value: Static


@dataclass(frozen=True)
class Query:
    """A parsed and validated query: a search ``pipeline`` or a ``metrics`` expression."""

    pipeline: Pipeline | None = None
    metrics: MetricsNode | None = None
    hints: tuple[Hint, ...] | None = field(default=None)

    @property
    def is_metrics(self) -> bool:
        return self.metrics is not None

    def hint(self, name: str, default: object = None) -> object:
        """A hint's value (last one wins), as a Python value."""
        for h in reversed(self.hints or ()):
            if h.name == name:
                return h.value.value
        return default

    def __str__(self) -> str:
        s = str(self.metrics) if self.metrics is not None else str(self.pipeline)
        if self.hints is not None:
            s += " with(" + ",".join(f"{h.name}={h.value}" for h in self.hints) + ")"
        return s


# ------------------------------------------------------------------------------ typing


def implied_type(e: object) -> T:
    """The type an expression evaluates to (T.ATTRIBUTE when only known at query time)."""
    if isinstance(e, Static):
        return e.type
    if isinstance(e, Attribute):
        return e.intrinsic.type if e.intrinsic is not Intrinsic.NONE else T.ATTRIBUTE
    if isinstance(e, BinaryOp | ScalarOperation):
        if e.op.boolean:
            return T.BOOL
        t = implied_type(e.lhs)
        return t if t is not T.ATTRIBUTE else implied_type(e.rhs)
    if isinstance(e, UnaryOp):
        return T.BOOL if e.op in (Op.EXISTS, Op.NOT_EXISTS) else implied_type(e.expr)
    if isinstance(e, Aggregate):
        return T.INT if e.op == "count" or e.expr is None else implied_type(e.expr)
    if isinstance(e, Pipeline):
        last = e.elements[-1] if e.elements else None
        return implied_type(last) if isinstance(last, Aggregate) else T.SPANSET
    return T.SPANSET


def references_span(e: object) -> bool:
    if isinstance(e, Attribute):
        return True
    if isinstance(e, BinaryOp):
        return references_span(e.lhs) or references_span(e.rhs)
    if isinstance(e, UnaryOp):
        return references_span(e.expr)
    return False
