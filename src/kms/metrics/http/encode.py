"""Prometheus JSON encoding (``util/jsonutil``): timestamps are JSON numbers of seconds with
exactly three decimals when the ms part is non-zero, values are strings (``"NaN"``, ``"+Inf"``)."""

from __future__ import annotations

import math
from decimal import Decimal

import orjson

from kms.metrics.promql.values import Matrix, Scalar, String, Vector

__all__ = ["fmt_ts", "fmt_value", "encode_result", "envelope", "count_points"]


def fmt_ts(t_ms: int) -> str:
    t = int(t_ms)
    sign = "-" if t < 0 else ""
    t = abs(t)
    frac = t % 1000
    return f"{sign}{t // 1000}" + (f".{frac:03d}" if frac else "")


def fmt_value(v: float) -> str:
    """Go's ``strconv.FormatFloat(v, 'f' or 'e', -1, 64)`` as Prometheus picks it."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    s = repr(float(v))
    a = abs(v)
    if a != 0 and (a < 1e-6 or a >= 1e21):
        return s  # Python's exponent form matches Go's here ("1e-07", "1.5e+21")
    if "e" in s:
        s = format(Decimal(s), "f")
    return s[:-2] if s.endswith(".0") else s


def _labels(labels: dict[str, str]) -> str:
    return orjson.dumps(labels, option=orjson.OPT_SORT_KEYS).decode()


def _pair(t_ms: int, v: float) -> str:
    return f'[{fmt_ts(t_ms)},"{fmt_value(v)}"]'


def _histogram(t_ms: int, h) -> str:
    """A native histogram as Prometheus's API shows it: count, sum and the non-empty buckets as
    ``[boundary rule, lower, upper, count]`` (rule 0: (l,u], 1: [l,u), 3: [l,u])."""
    buckets = []
    for b in h.buckets():
        rule = (
            3
            if (b.lower == -h.zero_threshold and b.upper == h.zero_threshold and not h.custom)
            else (1 if b.upper <= 0 and not h.custom else 0)
        )
        buckets.append(f'[{rule},"{fmt_value(b.lower)}","{fmt_value(b.upper)}","{fmt_value(b.count)}"]')
    body = f'{{"count":"{fmt_value(h.count)}","sum":"{fmt_value(h.sum)}"'
    if buckets:
        body += ',"buckets":[' + ",".join(buckets) + "]"
    return f"[{fmt_ts(t_ms)},{body}}}]"


def encode_result(value) -> str:
    """``{"resultType":..,"result":..}`` as JSON text."""
    if isinstance(value, Scalar):
        body = _pair(value.t_ms, value.value)
    elif isinstance(value, String):
        body = f"[{fmt_ts(value.t_ms)},{orjson.dumps(value.value).decode()}]"
    elif isinstance(value, Vector):
        body = (
            "["
            + ",".join(
                f'{{"metric":{_labels(s.labels)},"value":{_pair(s.t_ms, s.value)}}}'
                if s.histogram is None
                else f'{{"metric":{_labels(s.labels)},"histogram":{_histogram(s.t_ms, s.histogram)}}}'
                for s in value.samples
            )
            + "]"
        )
    elif isinstance(value, Matrix):
        parts = []
        for s in value.series:
            item = f'{{"metric":{_labels(s.labels)}'
            if len(s.t):
                item += (
                    ',"values":['
                    + ",".join(_pair(t, v) for t, v in zip(s.t.tolist(), s.v.tolist(), strict=True))
                    + "]"
                )
            if s.histograms:
                item += ',"histograms":[' + ",".join(_histogram(t, h) for t, h in s.histograms) + "]"
            parts.append(item + "}")
        body = "[" + ",".join(parts) + "]"
    else:
        raise RuntimeError(f"BUG: unknown result type {type(value).__name__}")
    return f'{{"resultType":"{value.type}","result":{body}}}'


def count_points(value) -> int:
    if isinstance(value, Vector):
        return len(value.samples)
    if isinstance(value, Matrix):
        return sum(len(s.t) + len(s.histograms) for s in value.series)
    return 1


def envelope(data_json: str, warnings: list[str] | None = None, infos: list[str] | None = None) -> bytes:
    out = '{"status":"success","data":' + data_json
    if warnings:
        out += ',"warnings":' + orjson.dumps(list(warnings)).decode()
    if infos:
        out += ',"infos":' + orjson.dumps(list(infos)).decode()
    return (out + "}").encode()
