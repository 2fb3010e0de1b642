"""TraceQL for kms: Tempo's query language over the span table.

Public surface::

    parse(text) -> Query                        # parse and validate (TraceQLError = HTTP 400)
    evaluate(query, spans, *, spss=3, limit=20) -> list[TraceMatch]
    evaluate_metrics(query, spans, *, start_ns, end_ns, step_ns, instant=False) -> MetricsResult
    matching_rows(query, spans) -> np.ndarray  # all rows in any result spanset
    parse_identifier(text) -> Attribute         # "resource.service.name", ".x", "status", ...

``TraceQLError`` messages are Tempo's without the HTTP prefix ``HTTP_PREFIX``
("invalid TraceQL query: "). Valid TraceQL that is not run raises ``TraceQLUnsupported``.
Modules: ``lexer``/``traceql.lark``/``parser`` (text -> ``ast``), ``validate`` (Tempo's rules),
``statics``/``operators``/``values`` (values and their semantics, scalar and vectorised),
``context``/``fields``/``evaluate``/``structural`` (execution over the table), ``search``
(result shaping) and ``metrics`` (TraceQL metrics).
"""

from __future__ import annotations

from .ast import Attribute, Intrinsic, Query, Scope
from .errors import HTTP_PREFIX, TraceQLError, TraceQLParseError, TraceQLUnsupported
from .metrics import MetricSeries, MetricsResult, evaluate_metrics
from .parser import parse_query
from .search import SpanSetMatch, TraceMatch, evaluate, matching_rows
from .statics import Static
from .validate import validate_query

__all__ = [
    "parse", "parse_identifier", "evaluate", "evaluate_metrics", "matching_rows", "Query", "TraceMatch", "SpanSetMatch",
    "MetricsResult", "MetricSeries", "Attribute", "Scope",
    "Intrinsic", "Static", "TraceQLError", "TraceQLParseError", "TraceQLUnsupported", "HTTP_PREFIX",
]


def parse(text: str) -> Query:
    """Parse and validate a TraceQL query (search or metrics)."""
    try:
        query = parse_query(text)
        validate_query(query)
        str(query)  # the stringer recurses like evaluation does: refuse what cannot be printed
    except RecursionError:
        raise TraceQLError("query is nested too deeply") from None
    return query


def parse_identifier(text: str) -> Attribute:
    """An attribute or intrinsic written as in a query (Tempo's ParseIdentifier): ``{ text }``
    must hold exactly one attribute."""
    q = parse_query("{" + text + "}")
    el = q.pipeline.elements[0] if q.pipeline is not None and len(q.pipeline.elements) == 1 else None
    expr = getattr(el, "expr", None)
    if not isinstance(expr, Attribute):
        raise TraceQLError(f"failed to parse identifier {text}: not an attribute")
    return expr
