"""The checks Loki's ``ParseExpr`` runs after the grammar accepted a query.

- Every stream selector needs a matcher that does not match the empty string.
- Range aggregations: which need ``| unwrap`` and which refuse it, which take a parameter
  (only ``quantile_over_time``) and which accept ``by``/``without`` (the unwrapped ones
  except ``sum_over_time``, ``rate``, ``rate_counter`` and ``absent_over_time``).
- Vector aggregations: ``topk``/``bottomk``/``approx_topk`` need an integer k > 0, the others
  take no parameter; ``sort``/``sort_desc``/``approx_topk`` take no grouping.
"""

from __future__ import annotations

from .ast import BinOp, Expr, LabelReplace, LogRange, LogSelector, RangeAggregation, VectorAggregation
from .errors import LogQLParseError

__all__ = ["validate"]

NEEDS_UNWRAP = {"avg_over_time", "sum_over_time", "min_over_time", "max_over_time", "stddev_over_time",
                "stdvar_over_time", "quantile_over_time", "first_over_time", "last_over_time", "rate_counter"}
NO_UNWRAP = {"count_over_time", "bytes_rate", "bytes_over_time"}
GROUPING_OK = {"avg_over_time", "min_over_time", "max_over_time", "stddev_over_time", "stdvar_over_time",
               "quantile_over_time", "first_over_time", "last_over_time"}
K_PARAM = {"topk", "bottomk", "approx_topk"}
NO_GROUPING = {"sort", "sort_desc", "approx_topk"}
ERR_MATCHER = ("queries require at least one regexp or equality matcher that does not have an empty-compatible "
               'value. For instance, app=~".*" does not meet this requirement, but app=~".+" will')


def _err(msg: str) -> LogQLParseError:
    return LogQLParseError(msg)


def validate_selector(sel: LogSelector) -> None:
    if not any(not m.matches("") for m in sel.matchers):
        raise _err(ERR_MATCHER)


def _validate_range(e: RangeAggregation) -> None:
    r: LogRange = e.range
    validate_selector(r.selector)
    if e.grouping is not None and e.op not in GROUPING_OK:
        raise _err(f"grouping not allowed for {e.op} aggregation")
    if r.unwrap is not None and e.op in NO_UNWRAP:
        raise _err(f"invalid aggregation {e.op} with unwrap")
    if r.unwrap is None and e.op in NEEDS_UNWRAP:
        raise _err(f"invalid aggregation {e.op} without unwrap")
    if e.op == "quantile_over_time" and e.param is None:
        raise _err("parameter required for operation quantile_over_time")
    if e.op != "quantile_over_time" and e.param is not None:
        raise _err(f"parameter not supported for operation {e.op}")


def _validate_vector(e: VectorAggregation) -> None:
    if e.op in K_PARAM:
        if e.param is None:
            raise _err(f"parameter required for operation {e.op}")
        if e.param != int(e.param):
            raise _err(f"invalid parameter (must be an integer): {e.param:g}")
        if e.param <= 0:
            raise _err(f"invalid parameter {e.op}(k,...): k must be greater than 0")
    elif e.param is not None:
        raise _err(f"unsupported parameter for operation {e.op}({e.param:g},")
    if e.op in NO_GROUPING and e.grouping is not None:
        raise _err(f"grouping not allowed for {e.op} aggregation")


def validate(e: Expr) -> None:
    """Raise LogQLParseError when Loki's post-parse checks refuse ``e``."""
    if isinstance(e, LogSelector):
        validate_selector(e)
    elif isinstance(e, RangeAggregation):
        _validate_range(e)
    elif isinstance(e, VectorAggregation):
        _validate_vector(e)
        validate(e.expr)
    elif isinstance(e, BinOp):
        validate(e.lhs)
        validate(e.rhs)
    elif isinstance(e, LabelReplace):
        validate(e.expr)
