"""Tempo's validation rules (``ast_validate.go``): types, nil comparisons, regexes, limits.

``validate_query`` raises ``TraceQLError`` for an invalid query and ``TraceQLUnsupported``
for valid TraceQL that is not run (``parent``, scalar filters other than
``aggregate <op> literal``, ...). Messages are Tempo's.
"""

from __future__ import annotations

from .ast import (
    Aggregate,
    Attribute,
    BinaryOp,
    CoalesceOperation,
    GroupOperation,
    Intrinsic,
    MetricsAggregate,
    MetricsCompare,
    MetricsLeaf,
    MetricsMath,
    MetricsNode,
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
    implied_type,
    references_span,
)
from .errors import TraceQLError, TraceQLUnsupported
from .operators import check_regex, is_matching, types_valid, unary_valid
from .statics import Op, Static, T

__all__ = ["validate_query", "validate_element", "MAX_GROUP_BYS", "MAX_COMPARE_TOP_N"]

#: Tempo's limits (engine_metrics.go maxGroupBys, engine_metrics_compare.go maxCompareTopN).
MAX_GROUP_BYS = 5
MAX_COMPARE_TOP_N = 1000


def validate_query(q: Query) -> None:
    """Raise for an invalid or unsupported query (pipelines first, then metrics stages)."""
    if q.pipeline is not None:
        validate_element(q.pipeline)
        return
    leaves: list[MetricsLeaf] = []
    _leaves(q.metrics, leaves)
    for leaf in leaves:
        validate_element(leaf.pipeline)
    for leaf in leaves:
        _validate_first_stage(leaf.agg)
    _validate_stages(q.metrics)
    root = q.metrics
    if any(isinstance(leaf.agg, MetricsCompare) for leaf in leaves) and (isinstance(root, MetricsMath) or root.stages):
        raise TraceQLError("`compare()` cannot be used with second stage functions")


def _leaves(node: MetricsNode, out: list[MetricsLeaf]) -> None:
    if isinstance(node, MetricsLeaf):
        out.append(node)
    else:
        _leaves(node.lhs, out)
        _leaves(node.rhs, out)


def _validate_first_stage(agg: MetricsAggregate | MetricsCompare) -> None:
    if isinstance(agg, MetricsCompare):
        validate_element(agg.filter)
        if agg.top_n <= 0 or agg.top_n > MAX_COMPARE_TOP_N:
            raise TraceQLError(
                f"compare() top number of values must be an integer between 1 and {MAX_COMPARE_TOP_N}")
        if agg.start_ns == 0 and agg.end_ns == 0:
            return
        if agg.start_ns <= 0 or agg.end_ns <= 0:
            raise TraceQLError("compare() timestamps must be positive integer unix nanoseconds")
        if agg.end_ns <= agg.start_ns:
            raise TraceQLError("compare() end timestamp must be greater than start timestamp")
        return
    limit = MAX_GROUP_BYS - 1 if agg.op in ("quantile_over_time", "histogram_over_time") else MAX_GROUP_BYS
    if len(agg.by) > limit:
        raise TraceQLUnsupported(f"metrics group by {len(agg.by)} values")
    for q in agg.quantiles:
        if q < 0 or q > 1:
            raise TraceQLError(f"quantile must be between 0 and 1: {q:g}")


def _validate_stages(node: MetricsNode) -> None:
    if isinstance(node, MetricsMath):
        _validate_stages(node.lhs)
        _validate_stages(node.rhs)
    for st in node.stages:
        if isinstance(st, TopK) and st.limit <= 0:
            raise TraceQLError("limit must be greater than 0")


def validate_element(e: object) -> None:
    """Validate one pipeline element, scalar or field expression (recursively)."""
    if isinstance(e, Pipeline):
        for el in e.elements:
            validate_element(el)
    elif isinstance(e, SpansetFilter):
        validate_element(e.expr)
        if implied_type(e.expr) not in (T.ATTRIBUTE, T.BOOL):
            raise TraceQLError(f"span filter field expressions must resolve to a boolean: {e}")
    elif isinstance(e, SpansetOperation):
        validate_element(e.lhs)
        validate_element(e.rhs)
    elif isinstance(e, ScalarFilter):
        _validate_binary(e.op, e.lhs, e.rhs, e)
        if not isinstance(e.lhs, Aggregate):
            raise TraceQLUnsupported("scalar filter lhs of type (%v)")
        if not isinstance(e.rhs, Static):
            raise TraceQLUnsupported("scalar filter rhs of type (%v)")
    elif isinstance(e, ScalarOperation):
        _validate_binary(e.op, e.lhs, e.rhs, e)
    elif isinstance(e, Aggregate):
        if e.expr is None:
            return
        validate_element(e.expr)
        t = implied_type(e.expr)
        if t is not T.ATTRIBUTE and not t.numeric:
            raise TraceQLError(f"aggregate field expressions must resolve to a number type: {e}")
        if not references_span(e.expr):
            raise TraceQLError(f"aggregate field expressions must reference the span: {e}")
    elif isinstance(e, GroupOperation):
        if not references_span(e.expr):
            raise TraceQLError(f"grouping field expressions must reference the span: {e}")
        validate_element(e.expr)
    elif isinstance(e, SelectOperation):
        for a in e.attrs:
            validate_element(a)
    elif isinstance(e, BinaryOp):
        _validate_binary(e.op, e.lhs, e.rhs, e)
        if e.op in (Op.RE, Op.NRE):
            _validate_regex(e)
    elif isinstance(e, UnaryOp):
        _validate_unary(e)
    elif isinstance(e, Attribute):
        if e.parent:
            raise TraceQLUnsupported("parent")
        if e.intrinsic is Intrinsic.PARENT:
            raise TraceQLUnsupported("intrinsic (parent)")
    elif isinstance(e, Static | CoalesceOperation):
        return
    else:
        raise RuntimeError(f"BUG: cannot validate {type(e).__name__}")


def _validate_binary(op: Op, lhs: object, rhs: object, node: object) -> None:
    validate_element(lhs)
    validate_element(rhs)
    lt, rt = implied_type(lhs), implied_type(rhs)
    if not is_matching(lt, rt):
        raise TraceQLError(f"binary operations must operate on the same type: {node}")
    if not types_valid(op, lt, rt):
        raise TraceQLError(f"illegal operation for the given types: {node}")


def _validate_regex(e: BinaryOp) -> None:
    rhs = e.rhs
    if not isinstance(rhs, Static):
        raise TraceQLError(f"invalid type for =~ or !~: {_wrapped(rhs)}")
    if rhs.type is T.STRING:
        patterns = [rhs.value]
    elif rhs.type is T.STRING_ARRAY:
        patterns = list(rhs.value)
    else:
        raise TraceQLError(f"invalid type for =~ or !~: {rhs}")
    for p in patterns:
        if not check_regex(p):
            raise TraceQLError(f"invalid regex: {rhs}")


def _wrapped(e: object) -> str:
    return str(e) if isinstance(e, Static | Attribute) else f"({e})"


_SERVICE_NAME = Attribute("service.name", Scope.RESOURCE)


def _validate_unary(e: UnaryOp) -> None:
    validate_element(e.expr)
    if e.op is Op.NOT_EXISTS and isinstance(e.expr, Attribute):
        if e.expr.intrinsic is not Intrinsic.NONE:
            raise TraceQLError(f"{e.expr}=nil is not valid because intrinsics cannot be nil")
        if e.expr == _SERVICE_NAME:
            raise TraceQLError(f"{e.expr}=nil is not valid because resource.service.name cannot be nil")
    t = implied_type(e.expr)
    if t is T.ATTRIBUTE:
        return
    if not unary_valid(e.op, t):
        raise TraceQLError(f"illegal operation for the given type: {e}")
