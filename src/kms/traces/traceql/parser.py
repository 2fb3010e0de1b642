"""Text -> ``Query``: the lark LALR parser over ``traceql.lark`` and the tree builder.

Like Tempo's grammar actions, building folds constant sub-expressions that validate
(``{ 1 = 2 }`` becomes ``{ false }``), strips leading zeros from strings compared with
``trace:id``, and folds literal arithmetic in scalar positions (durations refused there).
Unlike Tempo, a run of more than 64 operands of one ``&&`` or ``||`` is built as balanced
blocks rather than left-deep, so thousand-condition queries do not exhaust Python's stack.
The LALR tables are built once and shared; the builder keeps its per-parse state per thread.
"""

from __future__ import annotations

import functools
import math
import threading
from dataclasses import dataclass
from importlib import resources

from lark import Lark, Token, Transformer
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from .ast import (
    Aggregate,
    Attribute,
    BinaryOp,
    CoalesceOperation,
    GroupOperation,
    Hint,
    Intrinsic,
    MetricsAggregate,
    MetricsCompare,
    MetricsFilter,
    MetricsLeaf,
    MetricsMath,
    MetricsScalarOp,
    Pipeline,
    Query,
    ScalarFilter,
    ScalarOperation,
    Scope,
    SelectOperation,
    SpansetFilter,
    SpansetOperation,
    TopK,
    UnaryOp,
    references_span,
)
from .errors import TraceQLError, TraceQLParseError
from .lexer import TOKEN_TEXT, TraceQLLexer
from .operators import binop, unop
from .statics import FALSE, INT_MAX, INT_MIN, TRUE, EvalError, Kind, Op, Static, Status, T
from .validate import validate_element

__all__ = ["parse_query", "fold"]

_OPS = {
    "EQ": Op.EQ, "NEQ": Op.NEQ, "LT": Op.LT, "LTE": Op.LTE, "GT": Op.GT, "GTE": Op.GTE, "RE": Op.RE, "NRE": Op.NRE,
    "ADD": Op.ADD, "SUB": Op.SUB, "MUL": Op.MULT, "DIV": Op.DIV, "MOD": Op.MOD, "POW": Op.POW, "AND": Op.AND,
    "OR": Op.OR,
}
_SS_OPS = {
    "AND": Op.SS_AND, "OR": Op.SS_UNION, "GT": Op.SS_CHILD, "LT": Op.SS_PARENT, "DESC": Op.SS_DESC,
    "ANCE": Op.SS_ANCE, "SIBL": Op.SS_SIBL, "NOT_CHILD": Op.SS_NOT_CHILD, "NOT_PARENT": Op.SS_NOT_PARENT,
    "NOT_DESC": Op.SS_NOT_DESC, "NOT_ANCE": Op.SS_NOT_ANCE, "NRE": Op.SS_NOT_SIBL, "UNION_CHILD": Op.SS_U_CHILD,
    "UNION_PARENT": Op.SS_U_PARENT, "UNION_DESC": Op.SS_U_DESC, "UNION_ANCE": Op.SS_U_ANCE,
    "UNION_SIBL": Op.SS_U_SIBL,
}
_STATIC_TOKENS = {
    "TRUE": TRUE, "FALSE": FALSE,
    "STATUS_OK": Static(T.STATUS, Status.OK), "STATUS_ERROR": Static(T.STATUS, Status.ERROR),
    "STATUS_UNSET": Static(T.STATUS, Status.UNSET),
    "KIND_UNSPECIFIED": Static(T.KIND, Kind.UNSPECIFIED), "KIND_INTERNAL": Static(T.KIND, Kind.INTERNAL),
    "KIND_SERVER": Static(T.KIND, Kind.SERVER), "KIND_CLIENT": Static(T.KIND, Kind.CLIENT),
    "KIND_PRODUCER": Static(T.KIND, Kind.PRODUCER), "KIND_CONSUMER": Static(T.KIND, Kind.CONSUMER),
}
_INTRINSICS = {
    "IDURATION": Intrinsic.DURATION, "NAME": Intrinsic.NAME, "STATUS": Intrinsic.STATUS,
    "STATUS_MESSAGE": Intrinsic.STATUS_MESSAGE, "KIND": Intrinsic.KIND, "PARENT": Intrinsic.PARENT,
    "ROOTNAME": Intrinsic.TRACE_ROOT_SPAN, "ROOTSERVICENAME": Intrinsic.TRACE_ROOT_SERVICE,
    "TRACEDURATION": Intrinsic.TRACE_DURATION, "NESTEDSETLEFT": Intrinsic.NESTED_SET_LEFT,
    "NESTEDSETRIGHT": Intrinsic.NESTED_SET_RIGHT, "NESTEDSETPARENT": Intrinsic.NESTED_SET_PARENT,
}
_SCOPED_INTRINSICS = {
    ("TRACE_COLON", "IDURATION"): Intrinsic.TRACE_DURATION, ("TRACE_COLON", "ROOTNAME"): Intrinsic.TRACE_ROOT_SPAN,
    ("TRACE_COLON", "ROOTSERVICE"): Intrinsic.TRACE_ROOT_SERVICE, ("TRACE_COLON", "ID"): Intrinsic.TRACE_ID,
    ("SPAN_COLON", "IDURATION"): Intrinsic.DURATION, ("SPAN_COLON", "NAME"): Intrinsic.NAME,
    ("SPAN_COLON", "KIND"): Intrinsic.KIND, ("SPAN_COLON", "STATUS"): Intrinsic.STATUS,
    ("SPAN_COLON", "STATUS_MESSAGE"): Intrinsic.STATUS_MESSAGE, ("SPAN_COLON", "ID"): Intrinsic.SPAN_ID,
    ("SPAN_COLON", "PARENT_ID"): Intrinsic.PARENT_ID, ("SPAN_COLON", "CHILDCOUNT"): Intrinsic.CHILD_COUNT,
    ("EVENT_COLON", "NAME"): Intrinsic.EVENT_NAME, ("EVENT_COLON", "TIMESINCESTART"): Intrinsic.EVENT_TIME_SINCE_START,
    ("LINK_COLON", "TRACE_ID"): Intrinsic.LINK_TRACE_ID, ("LINK_COLON", "SPAN_ID"): Intrinsic.LINK_SPAN_ID,
    ("INSTRUMENTATION_COLON", "NAME"): Intrinsic.INSTRUMENTATION_NAME,
    ("INSTRUMENTATION_COLON", "VERSION"): Intrinsic.INSTRUMENTATION_VERSION,
}
_CHAIN_BLOCK = 64  # operands of one &&/|| run between rebalancings
_SCOPES = {
    "DOT": Scope.NONE, "RESOURCE_DOT": Scope.RESOURCE, "SPAN_DOT": Scope.SPAN, "EVENT_DOT": Scope.EVENT,
    "LINK_DOT": Scope.LINK, "INSTRUMENTATION_DOT": Scope.INSTRUMENTATION,
}


def _error_at(tok: Token, msg: str) -> TraceQLParseError:
    return TraceQLParseError(msg, getattr(tok, "line", 0) or 0, getattr(tok, "column", 0) or 0)


def _is_node(x: object) -> bool:
    return isinstance(x, MetricsLeaf | MetricsMath)


# ------------------------------------------------------------------------------ constant folding


def fold(e: object) -> Static:
    """Evaluate an expression that references no span; raises EvalError when it has no value."""
    if isinstance(e, Static):
        return e
    if isinstance(e, BinaryOp):
        lhs = fold(e.lhs)
        if e.op is Op.AND and lhs == FALSE:
            return FALSE
        if e.op is Op.OR and lhs == TRUE:
            return TRUE
        return binop(e.op, lhs, fold(e.rhs))
    if isinstance(e, UnaryOp):
        return unop(e.op, fold(e.expr))
    raise EvalError("not constant")


def _simplify(node: BinaryOp | UnaryOp) -> object:
    if references_span(node):
        return node
    try:
        validate_element(node)
        value = fold(node)
    except (TraceQLError, EvalError):
        return node
    if value.type is T.FLOAT and not math.isfinite(value.value):
        return node  # NaN / Inf have no literal: keep the expression so it prints back
    return value


def _trace_id_operand(attr: object, other: object) -> object:
    if (isinstance(attr, Attribute) and attr.intrinsic is Intrinsic.TRACE_ID and isinstance(other, Static)
            and other.type is T.STRING):
        return Static(T.STRING, other.value.lstrip("0"))
    return other


def make_binary(op: Op, lhs: object, rhs: object) -> object:
    rhs = _trace_id_operand(lhs, rhs)
    lhs = _trace_id_operand(rhs, lhs)
    return _simplify(BinaryOp(op, lhs, rhs))


def make_unary(op: Op, e: object) -> object:
    return _simplify(UnaryOp(op, e))


# ------------------------------------------------------------------------------ tree builder


class _Builder(Transformer):
    """Builds AST nodes bottom-up while the LALR parser reduces (errors surface in order)."""

    def __init__(self) -> None:
        super().__init__()
        self._state = threading.local()  # one Lark (and builder) serves every thread

    @property
    def _runs(self) -> dict[int, _Run]:
        if not hasattr(self._state, "runs"):
            self._state.runs, self._state.keep = {}, []
        return self._state.runs

    @property
    def _keep(self) -> list[object]:
        self._runs  # noqa: B018 - creates this thread's state
        return self._state.keep

    def reset(self) -> None:
        self._runs.clear()
        self._keep.clear()

    # -- roots
    def start(self, c):
        return c[0]

    def root_pipeline(self, c):
        e = c[0]
        return Query(pipeline=e if isinstance(e, Pipeline) else Pipeline((e,)))

    def root_metrics(self, c):
        stages = c[3] if len(c) > 3 else ()
        return Query(metrics=MetricsLeaf(c[0], c[2], tuple(stages)))

    def root_math(self, c):
        node = c[0]
        if len(c) > 1:
            node = _with_stages(node, tuple(c[1]))
        return Query(metrics=node)

    def root_hints(self, c):
        q, hints = c
        return Query(q.pipeline, q.metrics, hints)

    # -- pipelines
    def spanset_pipeline(self, c):
        if len(c) == 1:
            return Pipeline((c[0],))
        return Pipeline(c[0].elements + (c[2],))

    def wrapped_pipeline(self, c):
        return c[1]

    def wrapped_scalar_pipeline(self, c):
        return Pipeline(c[1].elements + (c[3],))

    def parens(self, c):
        return c[1]

    def ss_op(self, c):
        return SpansetOperation(_SS_OPS[c[1].type], c[0], c[2])

    def spanset_filter(self, c):
        return SpansetFilter(TRUE if len(c) == 2 else c[1])

    def group_op(self, c):
        return GroupOperation(c[2])

    def coalesce_op(self, c):
        return CoalesceOperation()

    def select_op(self, c):
        return SelectOperation(tuple(c[2]))

    def attribute_list(self, c):
        return [x for x in c if not isinstance(x, Token)]

    # -- scalar filters
    def scalar_filter(self, c):
        return ScalarFilter(_OPS[c[1].type], c[0], c[2])

    scalar_pipeline_filter = scalar_filter

    def scalar_op(self, c):
        return ScalarOperation(_OPS[c[1].type], c[0], c[2])

    def aggregate(self, c):
        return Aggregate(c[0].value, None if len(c) == 3 else c[2])

    # -- literals
    def literal(self, c):
        tok = c[0]
        return Static({"INTEGER": T.INT, "FLOAT": T.FLOAT, "DURATION": T.DURATION}[tok.type], tok.value)

    def literal_neg(self, c):
        try:
            return unop(Op.SUB, c[1])
        except EvalError as e:
            raise _error_at(c[0], str(e)) from None

    def literal_op(self, c):
        lhs, tok, rhs = c
        if T.DURATION in (lhs.type, rhs.type):
            raise _error_at(tok, "duration cannot be used in scalar arithmetic")
        try:
            return binop(_OPS[tok.type], lhs, rhs)
        except EvalError as e:
            raise _error_at(tok, str(e)) from None

    # -- metrics
    def metrics_agg(self, c):
        name = c[0].value
        rest = [x for x in c[2:] if not isinstance(x, Token)]
        attr = rest.pop(0) if rest and isinstance(rest[0], Attribute) else None
        quantiles = tuple(rest.pop(0)) if rest and isinstance(rest[0], list) and name == "quantile_over_time" else ()
        by = tuple(rest.pop(0)) if rest else ()
        return MetricsAggregate(name, attr, by, quantiles)

    def metrics_compare(self, c):
        ints = [t.value for t in c if isinstance(t, Token) and t.type == "INTEGER"]
        return MetricsCompare(c[2], *ints)

    def by_list(self, c):
        return tuple(c[2])

    def numeric_list(self, c):
        return [float(t.value) for t in c if t.type != "COMMA"]

    def second_stages(self, c):
        return list(c)

    def topk(self, c):
        return TopK(c[1].value, c[3].value)

    def metrics_filter(self, c):
        tok, s = c
        v = s.as_float() / 1e9 if s.type is T.DURATION else s.as_float()
        return MetricsFilter(_OPS[tok.type], v)

    def metrics_op(self, c):
        lhs, tok, rhs = c
        op = _OPS[tok.type]
        if _is_node(lhs) and _is_node(rhs):
            return MetricsMath(op, lhs, rhs)
        node, scalar, left = (lhs, rhs, False) if _is_node(lhs) else (rhs, lhs, True)
        if scalar.type is T.DURATION:
            raise _error_at(tok, "duration cannot be used as a scalar operand in metric arithmetic")
        return _with_stages(node, (MetricsScalarOp(op, scalar.as_float(), left),))

    def wrapped_metrics(self, c):
        stages = tuple(c[4]) if isinstance(c[4], list) else ()
        return MetricsLeaf(c[1], c[3], stages)

    # -- hints
    def hints(self, c):
        return tuple(h for h in c if isinstance(h, Hint))

    def hint(self, c):
        return Hint(c[0].value, c[2])

    # -- field expressions
    def binary(self, c):
        op = _OPS[c[1].type]
        if op in (Op.AND, Op.OR):
            return self._chain(op, c[0], c[2])
        return make_binary(op, c[0], c[2])

    def _chain(self, op: Op, lhs: object, rhs: object) -> object:
        """``a && b && c ...`` is left-deep, as Tempo builds it, up to _CHAIN_BLOCK operands of
        one operator; longer runs are kept as balanced blocks (a binary counter), so depth
        stays logarithmic. Same meaning: && and || are associative."""
        run = self._runs.get(id(lhs)) if isinstance(lhs, BinaryOp) and lhs.op is op else None
        if run is None:
            run = _Run([lhs])
        if run.stack is None:
            run.operands.append(rhs)
            if len(run.operands) < _CHAIN_BLOCK:
                node = make_binary(op, lhs, rhs)
            else:
                run.stack = [(len(run.operands), _balanced(op, run.operands))]
                node = run.stack[0][1]
        else:
            run.stack.append((1, rhs))
            while len(run.stack) > 1 and run.stack[-1][0] == run.stack[-2][0]:
                (n, right), (_, left) = run.stack.pop(), run.stack.pop()
                run.stack.append((2 * n, BinaryOp(op, left, right)))
            node = run.stack[0][1]
            for _, tree in run.stack[1:]:
                node = BinaryOp(op, node, tree)
        self._runs[id(node)] = run
        self._keep.append(node)  # ids stay unique while the parse runs
        return node

    def unary(self, c):
        return make_unary(Op.SUB if c[0].type == "SUB" else Op.NOT, c[1])

    def exists(self, c):
        return make_unary(Op.EXISTS, c[0])

    def not_exists(self, c):
        return make_unary(Op.NOT_EXISTS, c[0])

    def nil_exists(self, c):
        return make_unary(Op.EXISTS, c[2])

    def nil_not_exists(self, c):
        return make_unary(Op.NOT_EXISTS, c[2])

    def nil_nil(self, c):
        return FALSE

    def static(self, c):
        tok = c[0]
        if tok.type in _STATIC_TOKENS:
            return _STATIC_TOKENS[tok.type]
        if tok.type == "STRING":
            return Static(T.STRING, tok.value)
        if tok.type in ("INTEGER", "FLOAT", "DURATION"):
            return self.literal(c)
        if tok.value == "minInt":
            return Static(T.INT, INT_MIN)
        if tok.value == "maxInt":
            return Static(T.INT, INT_MAX)
        raise _error_at(tok, f"unknown identifier: {tok.value}")

    def intrinsic_field(self, c):
        return Attribute.of(_INTRINSICS[c[0].type])

    def scoped_intrinsic(self, c):
        return Attribute.of(_SCOPED_INTRINSICS[(c[0].type, c[1].type)])

    def attribute_field(self, c):
        types = [t.type for t in c]
        name = c[-2].value
        if types[0] == "PARENT_DOT":
            scope = {"RESOURCE_DOT": Scope.RESOURCE, "SPAN_DOT": Scope.SPAN}.get(types[1], Scope.NONE)
            return Attribute(name, scope, True)
        return Attribute(name, _SCOPES[types[0]])


@dataclass
class _Run:
    """One run of && (or ||) being parsed: its operands, then its balanced blocks."""

    operands: list
    stack: list[tuple[int, object]] | None = None


def _balanced(op: Op, operands: list) -> object:
    """Operands of an already built (and simplified) run, as a balanced tree."""
    if len(operands) == 1:
        return operands[0]
    mid = len(operands) // 2
    return BinaryOp(op, _balanced(op, operands[:mid]), _balanced(op, operands[mid:]))


def _with_stages(node, stages: tuple) -> MetricsLeaf | MetricsMath:
    if isinstance(node, MetricsLeaf):
        return MetricsLeaf(node.pipeline, node.agg, node.stages + stages)
    return MetricsMath(node.op, node.lhs, node.rhs, node.stages + stages)


@functools.cache
def _parser() -> Lark:
    grammar = resources.files(__package__).joinpath("traceql.lark").read_text(encoding="utf-8")
    return Lark(grammar, parser="lalr", lexer=TraceQLLexer, transformer=_Builder(), start="start")


def _parse(text: str) -> Query:
    parser = _parser()
    builder: _Builder = parser.options.transformer
    builder.reset()
    try:
        return parser.parse(text)
    finally:
        builder.reset()


def _describe(tok: Token) -> str:
    if tok.type in ("IDENTIFIER", "STRING", "INTEGER", "FLOAT", "DURATION"):
        return tok.type
    return TOKEN_TEXT.get(tok.type, tok.type)


def parse_query(text: str) -> Query:
    """Parse (without validating); raises TraceQLParseError with Tempo-like positions."""
    if not text.strip():
        raise TraceQLParseError("syntax error: unexpected $end")
    try:
        return _parse(text)
    except UnexpectedToken as e:
        tok = e.token
        msg = f"syntax error: unexpected {_describe(tok)}"
        expected = sorted(TOKEN_TEXT.get(x, x) for x in (e.accepts or e.expected or ()))
        if 0 < len(expected) <= 4:
            msg += ", expecting " + " or ".join(expected)
        if tok.type == "$END":
            lines = text.split("\n")
            raise TraceQLParseError(msg, len(lines), len(lines[-1]) + 1) from None
        raise _error_at(tok, msg) from None
    except (UnexpectedCharacters, UnexpectedEOF, UnexpectedInput) as e:  # not raised with our lexer
        raise TraceQLParseError(f"syntax error: {e}") from None
