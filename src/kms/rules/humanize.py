"""Prometheus's template number formatting: Go's ``%v`` for floats and the ``humanize*`` functions.

Outputs follow Prometheus's documented results (``humanize 1234567`` is ``1.235M``,
``humanizeDuration 3661`` is ``1h 1m 1s``); Go's ``%.4g`` and Python's agree on these inputs.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np

__all__ = ["go_float", "humanize", "humanize1024", "humanize_duration", "humanize_percentage",
           "humanize_timestamp", "to_float"]

_SMALL = ("m", "u", "n", "p", "f", "a", "z", "y")


def go_float(v: float) -> str:
    """Go's ``fmt`` ``%v`` of a float64: shortest digits, exponent form below 1e-4 or from 1e6
    (``strconv`` ``'g'`` with shortest precision decides at exponent 6)."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if v == 0:
        return "-0" if math.copysign(1, v) < 0 else "0"
    mant, exp_s = np.format_float_scientific(abs(v), unique=True, trim="-").split("e")
    exp = int(exp_s)
    digits = mant.replace(".", "")
    sign = "-" if v < 0 else ""
    if exp < -4 or exp >= 6:
        tail = f"e{'-' if exp < 0 else '+'}{abs(exp):02d}"
        return sign + (digits[0] + ("." + digits[1:] if len(digits) > 1 else "")) + tail
    if exp >= 0:
        whole = digits[: exp + 1].ljust(exp + 1, "0")
        frac = digits[exp + 1 :]
        return sign + whole + ("." + frac if frac else "")
    return sign + "0." + "0" * (-exp - 1) + digits


def to_float(v) -> float:
    if isinstance(v, str):
        return float(v.strip())
    return float(v)


def _g4(v: float) -> str:
    s = f"{v:.4g}"
    return {"nan": "NaN", "inf": "+Inf", "-inf": "-Inf"}.get(s, s)


def humanize(v) -> str:
    """SI prefixes (k, M, G ... and m, u, n ...) with 4 significant digits."""
    v = to_float(v)
    if v == 0 or math.isnan(v) or math.isinf(v):
        return _g4(v)
    prefix = ""
    if abs(v) >= 1:
        for p in ("k", "M", "G", "T", "P", "E", "Z", "Y"):
            if abs(v) < 1000:
                break
            prefix, v = p, v / 1000
    else:
        for p in _SMALL:
            if abs(v) >= 1:
                break
            prefix, v = p, v * 1000
    return _g4(v) + prefix


def humanize1024(v) -> str:
    v = to_float(v)
    if abs(v) <= 1 or math.isnan(v) or math.isinf(v):
        return _g4(v)
    prefix = ""
    for p in ("ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"):
        if abs(v) < 1024:
            break
        prefix, v = p, v / 1024
    return _g4(v) + prefix


def humanize_duration(v) -> str:
    """Seconds as ``1d 2h 3m 4s`` (or ``250ms`` below a second)."""
    v = to_float(v)
    if math.isnan(v) or math.isinf(v):
        return _g4(v)
    if v == 0:
        return "0s"
    if abs(v) >= 1:
        sign = "-" if v < 0 else ""
        v = abs(v)
        whole = int(v)
        days, hours, minutes = whole // 86400, whole // 3600 % 24, whole // 60 % 60
        seconds = _g4(math.fmod(v, 60))
        if days:
            return f"{sign}{days}d {hours}h {minutes}m {seconds}s"
        if hours:
            return f"{sign}{hours}h {minutes}m {seconds}s"
        if minutes:
            return f"{sign}{minutes}m {seconds}s"
        return f"{sign}{seconds}s"
    prefix = ""
    for p in _SMALL:
        if abs(v) >= 1:
            break
        prefix, v = p, v * 1000
    return f"{_g4(v)}{prefix}s"


def humanize_percentage(v) -> str:
    return _g4(to_float(v) * 100) + "%"


def humanize_timestamp(v) -> str:
    """Unix seconds as Go's ``time.Time.String()`` in UTC (``2024-01-02 03:04:05.5 +0000 UTC``)."""
    v = to_float(v)
    if math.isnan(v) or math.isinf(v):
        return _g4(v)
    ns = round(v * 1e9)
    dt = datetime.fromtimestamp(ns // 1_000_000_000, UTC)
    frac = ns % 1_000_000_000
    text = dt.strftime("%Y-%m-%d %H:%M:%S")
    if frac:
        text += "." + f"{frac:09d}".rstrip("0")
    return text + " +0000 UTC"
