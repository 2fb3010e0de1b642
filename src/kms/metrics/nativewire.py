"""Native histograms from the wire: remote write's ``Histogram`` messages (1.0 and 2.0 share the
layout) and OTLP exponential-histogram data points, as ``FloatHistogram``s.

Remote write sends buckets as spans (offset, length) over bucket indexes, with integer counts
delta-encoded (``*_deltas``) or float counts absolute (``*_counts``). OTLP's exponential buckets
are indexed one lower than Prometheus's (OTLP bucket ``i`` is ``(base^i, base^(i+1)]``, Prometheus
bucket ``i`` is ``(base^(i-1), base^i]``) and scales above 8 are merged down to 8, as Prometheus's
OTLP translator does.
"""

from __future__ import annotations

import math

from kms.metrics.promql.nativehist import CUSTOM_SCHEMA, FloatHistogram, reduce_buckets

__all__ = ["from_remote_write", "from_otlp_exponential", "to_remote_write", "HistogramError"]

_HINTS = {0: "unknown", 1: "reset", 2: "not_reset", 3: "gauge"}
MAX_SCHEMA = 8
MIN_SCHEMA = -4


class HistogramError(ValueError):
    """A histogram that cannot be stored (bad schema, spans not matching the buckets)."""


def _buckets(spans, values, deltas: bool) -> dict[int, float]:
    out: dict[int, float] = {}
    idx = 0
    k = 0
    running = 0
    values = list(values)
    for span in spans:
        idx += span.offset  # the first from 0, later ones from the end of the previous span
        for _ in range(span.length):
            if k >= len(values):
                raise HistogramError("histogram spans describe more buckets than were sent")
            if deltas:
                running += values[k]
                out[idx] = float(running)
            else:
                out[idx] = float(values[k])
            k += 1
            idx += 1
    if k != len(values):
        raise HistogramError("histogram spans describe fewer buckets than were sent")
    if deltas and any(c < 0 for c in out.values()):
        raise HistogramError("histogram has a negative bucket count")
    return out


def from_remote_write(msg) -> FloatHistogram:
    """A remote-write ``Histogram`` message (integer or float counts) as a float histogram."""
    schema = int(msg.schema)
    if not (MIN_SCHEMA <= schema <= MAX_SCHEMA or schema == CUSTOM_SCHEMA):
        raise HistogramError(f"histogram schema {schema} is not supported (valid: -4..8 and -53)")
    is_float = bool(
        msg.count_float or msg.zero_count_float or len(msg.positive_counts) or len(msg.negative_counts)
    )
    h = FloatHistogram(
        schema=schema,
        zero_threshold=float(msg.zero_threshold),
        zero_count=float(msg.zero_count_float if is_float else msg.zero_count_int),
        count=float(msg.count_float if is_float else msg.count_int),
        sum=float(msg.sum),
        hint=_HINTS.get(int(msg.reset_hint), "unknown"),
    )
    if is_float:
        h.pos = _buckets(msg.positive_spans, msg.positive_counts, False)
        h.neg = _buckets(msg.negative_spans, msg.negative_counts, False)
    else:
        h.pos = _buckets(msg.positive_spans, msg.positive_deltas, True)
        h.neg = _buckets(msg.negative_spans, msg.negative_deltas, True)
    if schema == CUSTOM_SCHEMA:
        cv = tuple(float(x) for x in msg.custom_values)
        if any(b <= a for a, b in zip(cv, cv[1:], strict=False)) or any(math.isinf(x) for x in cv):
            raise HistogramError("custom bucket bounds must be finite and strictly increasing")
        if h.neg or any(i > len(cv) or i < 0 for i in h.pos):
            raise HistogramError("custom-bucket histogram has buckets outside its bounds")
        h.custom_values = cv
    return h.compact()


def from_otlp_exponential(point, gauge: bool = False) -> FloatHistogram:
    """An OTLP ``ExponentialHistogramDataPoint`` as a float histogram (Prometheus's mapping)."""
    scale = int(point.scale)
    if scale < MIN_SCHEMA:
        raise HistogramError(f"cannot convert exponential histogram with scale {scale} (below {MIN_SCHEMA})")
    pos = {
        int(point.positive.offset) + i + 1: float(c) for i, c in enumerate(point.positive.bucket_counts) if c
    }
    neg = {
        int(point.negative.offset) + i + 1: float(c) for i, c in enumerate(point.negative.bucket_counts) if c
    }
    schema = min(scale, MAX_SCHEMA)
    if scale > MAX_SCHEMA:
        pos, neg = reduce_buckets(pos, scale, schema), reduce_buckets(neg, scale, schema)
    has_sum = point.HasField("sum") if hasattr(point, "HasField") else True
    return FloatHistogram(
        schema=schema,
        zero_threshold=float(point.zero_threshold),
        zero_count=float(point.zero_count),
        count=float(point.count),
        sum=float(point.sum) if has_sum else 0.0,
        pos=pos,
        neg=neg,
        hint="gauge" if gauge else "unknown",
    )


def _spans(buckets: dict[int, float], msg_spans, msg_counts) -> None:
    prev_end = 0
    for n, i in enumerate(sorted(buckets)):
        if n and i == prev_end:
            msg_spans[-1].length += 1
        else:
            msg_spans.add(offset=i - prev_end if n else i, length=1)
        msg_counts.append(buckets[i])
        prev_end = i + 1


def to_remote_write(h: FloatHistogram, ts_ms: int, msg) -> None:
    """Fill a remote-write ``Histogram`` message with ``h`` (float counts)."""
    msg.count_float = h.count
    msg.sum = h.sum
    msg.schema = h.schema
    msg.zero_threshold = h.zero_threshold
    msg.zero_count_float = h.zero_count
    msg.reset_hint = {v: k for k, v in _HINTS.items()}[h.hint]
    msg.timestamp = ts_ms
    msg.custom_values.extend(h.custom_values)
    _spans({i: c for i, c in h.pos.items() if c}, msg.positive_spans, msg.positive_counts)
    _spans({i: c for i, c in h.neg.items() if c}, msg.negative_spans, msg.negative_counts)
