"""PromQL engine: parse with ``promql_parser``, evaluate vectorised over all steps with numpy."""

from kms.metrics.promql.engine import Engine
from kms.metrics.promql.model import STALE_NAN, Matcher, MemorySeriesSource, Series, SeriesSource, is_stale
from kms.metrics.promql.values import (
    Matrix,
    MatrixSeries,
    PromQLError,
    Result,
    Sample,
    Scalar,
    String,
    Vector,
)

__all__ = [
    "Engine",
    "SeriesSource",
    "MemorySeriesSource",
    "Series",
    "Matcher",
    "STALE_NAN",
    "is_stale",
    "PromQLError",
    "Result",
    "Vector",
    "Sample",
    "Matrix",
    "MatrixSeries",
    "Scalar",
    "String",
]
