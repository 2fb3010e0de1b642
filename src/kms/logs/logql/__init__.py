"""LogQL for kms: Loki's query language over a ``LogSource``.

Public surface::

    parse(query) -> Expr                 # parse and validate (LogQLParseError = HTTP 400)
    is_metric_query(expr) -> bool
    LogQLEngine(source, max_entries_limit=5000)
        .query_range(query, start_ns, end_ns, step_ns, interval_ns=0, direction="backward", limit=100)
        .instant(query, time_ns, direction="backward", limit=100)
          -> (StreamsResult | Result, QueryStats)
    format_query(query) -> str           # Loki's /format_query (normalised text)

Modules: ``lexer``/``logql.lark``/``parser``/``validate`` (text -> ``ast``), ``linefilter``
(vectorised line filters), ``patterns``/``parsers``/``template``/``pipeline`` (per-row
stages), ``scan`` (source -> rows), ``logquery`` (streams), ``rangeagg`` (range aggregations
per step, numpy), ``hints`` (vectorised ``| logfmt`` under ``sum by``), ``metric`` (vector
aggregations and binary operations through the PromQL engine's operators), ``engine``.
"""

from __future__ import annotations

from ..source import Direction, LogEntry, LogSource, QueryStats, StreamsResult
from .ast import Expr, LogSelector
from .engine import LogQLEngine, is_metric_query, parse
from .errors import LogQLError, LogQLParseError

__all__ = [
    "LogQLEngine", "parse", "is_metric_query", "format_query", "Expr", "LogSelector", "LogQLError",
    "LogQLParseError", "LogEntry", "StreamsResult", "QueryStats", "LogSource", "Direction",
]


def format_query(query: str) -> str:
    """The query parsed and printed back in a normal form (Loki's ``/format_query``)."""
    return str(parse(query))
