"""``LogQLEngine``: parse, then run a log query (streams) or a metric query (vector/matrix)."""

from __future__ import annotations

import time

import numpy as np

from kms.metrics.promql.values import Result

from ..source import Direction, LogSource, QueryStats, StreamsResult
from .ast import BinOp, Expr, LabelReplace, LogSelector, VectorAggregation
from .errors import LogQLError, LogQLParseError
from .logquery import eval_log_query
from .metric import eval_metric
from .parser import parse_expr
from .validate import validate

__all__ = ["LogQLEngine", "parse", "is_metric_query"]

ERR_INSTANT_LOG = (
    "log queries are not supported as an instant query type, please change your query to a range query type"
)


def parse(query: str) -> Expr:
    """Parse and validate a LogQL query (LogQLParseError, an HTTP 400, when Loki refuses it)."""
    if not isinstance(query, str):
        raise LogQLParseError("syntax error: unexpected $end", 1, 1)
    try:
        expr = parse_expr(query)
        validate(expr)
    except RecursionError:
        raise LogQLError("query is nested too deeply") from None
    return expr


def is_metric_query(expr: Expr) -> bool:
    return not isinstance(expr, LogSelector)


class LogQLEngine:
    """Runs LogQL over a ``LogSource``. Times are int ns; a range query's log entries are those in
    ``[start_ns, end_ns)``, its metric steps ``start_ns, start_ns + step_ns, ... <= end_ns``."""

    def __init__(self, source: LogSource, *, max_entries_limit: int = 5000):
        self.source = source
        self.max_entries_limit = max_entries_limit

    def _check_limit(self, limit: int) -> None:
        if limit > self.max_entries_limit > 0:
            raise LogQLError(
                f"max entries limit per query exceeded, limit > max_entries_limit ({limit} > {self.max_entries_limit})"
            )

    def query_range(
        self,
        query: str,
        start_ns: int,
        end_ns: int,
        step_ns: int,
        *,
        interval_ns: int = 0,
        direction: Direction = "backward",
        limit: int = 100,
    ) -> tuple[StreamsResult | Result, QueryStats]:
        t0 = time.perf_counter()
        expr = parse(query)
        stats = QueryStats()
        if isinstance(expr, LogSelector):
            self._check_limit(limit)
            res: StreamsResult | Result = eval_log_query(
                self.source, expr, start_ns, end_ns, direction=direction, limit=limit,
                interval_ns=interval_ns, stats=stats,
            )
        else:
            if step_ns <= 0:
                raise LogQLError(
                    "zero or negative query resolution step widths are not accepted. "
                    "Try a positive integer"
                )
            if _uses_approx_topk(expr):
                raise LogQLError("approx_topk: count min sketches are only supported on instant queries")
            ts = np.arange(start_ns, end_ns + 1, step_ns, dtype=np.int64)
            if len(ts) == 0:
                raise LogQLError("end timestamp must not be before start time")
            res = eval_metric(self.source, expr, ts, stats, instant=False)
        stats.exec_time_s = time.perf_counter() - t0
        return res, stats

    def instant(
        self, query: str, time_ns: int, *, direction: Direction = "backward", limit: int = 100
    ) -> tuple[StreamsResult | Result, QueryStats]:
        t0 = time.perf_counter()
        expr = parse(query)
        if isinstance(expr, LogSelector):
            raise LogQLError(ERR_INSTANT_LOG)
        stats = QueryStats()
        res = eval_metric(self.source, expr, np.array([time_ns], dtype=np.int64), stats, instant=True)
        stats.exec_time_s = time.perf_counter() - t0
        return res, stats


def _uses_approx_topk(e: Expr) -> bool:
    """Whether ``approx_topk`` appears in ``e`` (Loki runs it on instant queries only)."""
    if isinstance(e, VectorAggregation):
        return e.op == "approx_topk" or _uses_approx_topk(e.expr)
    if isinstance(e, BinOp):
        return _uses_approx_topk(e.lhs) or _uses_approx_topk(e.rhs)
    if isinstance(e, LabelReplace):
        return _uses_approx_topk(e.expr)
    return False
