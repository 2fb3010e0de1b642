"""Label values read as numbers the way Loki reads them, errors included: Go's
``strconv.ParseFloat`` (number filters, ``unwrap``), Go's ``time.ParseDuration`` (duration
filters, ``unwrap duration()``: no ``d`` or ``w`` units, unlike durations written in a query)
and go-humanize's ``ParseBytes`` (bytes filters, ``unwrap bytes()``: ``2,048`` is 2048, whole
bytes). A value that does not convert raises ValueError with Go's message, which Loki shows as
``__error_details__``."""

from __future__ import annotations

import math
import re

__all__ = ["go_float", "go_duration_seconds", "humanize_bytes"]

_DECIMAL = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\Z")
_HEX = re.compile(r"[+-]?0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)[pP][+-]?\d+\Z")
_SPECIAL = {"inf": math.inf, "+inf": math.inf, "-inf": -math.inf, "infinity": math.inf, "+infinity": math.inf,
            "-infinity": -math.inf, "nan": math.nan, "+nan": math.nan, "-nan": math.nan}
_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_BYTE_UNITS = {
    "": 1, "b": 1, "k": 10**3, "kb": 10**3, "ki": 2**10, "kib": 2**10, "m": 10**6, "mb": 10**6, "mi": 2**20,
    "mib": 2**20, "g": 10**9, "gb": 10**9, "gi": 2**30, "gib": 2**30, "t": 10**12, "tb": 10**12, "ti": 2**40,
    "tib": 2**40, "p": 10**15, "pb": 10**15, "pi": 2**50, "pib": 2**50, "e": 10**18, "eb": 10**18,
    "ei": 2**60, "eib": 2**60,
}


def _quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def go_float(text: str) -> float:
    """``strconv.ParseFloat(text, 64)``."""
    special = _SPECIAL.get(text.lower())
    if special is not None:
        return special
    if _DECIMAL.match(text):
        v = float(text)
    elif _HEX.match(text):
        v = float.fromhex(text)
    else:
        raise ValueError(f"strconv.ParseFloat: parsing {_quote(text)}: invalid syntax")
    if math.isinf(v):
        raise ValueError(f"strconv.ParseFloat: parsing {_quote(text)}: value out of range")
    return v


def go_duration_seconds(text: str) -> float:
    """``time.ParseDuration(text).Seconds()``."""
    s = text
    neg = s[:1] == "-"
    if s[:1] in "+-":
        s = s[1:]
    if s == "0":
        return 0.0
    if not s:
        raise ValueError(f"time: invalid duration {_quote(text)}")
    total, i = 0.0, 0
    while i < len(s):
        j = i
        while j < len(s) and s[j].isdigit():
            j += 1
        whole = s[i:j]
        frac = ""
        if j < len(s) and s[j] == ".":
            k = j + 1
            while k < len(s) and s[k].isdigit():
                k += 1
            frac, j = s[j + 1:k], k
        if not whole and not frac:
            raise ValueError(f"time: invalid duration {_quote(text)}")
        k = j
        while k < len(s) and s[k] != "." and not s[k].isdigit():
            k += 1
        unit = s[j:k]
        if not unit:
            raise ValueError(f"time: missing unit in duration {_quote(text)}")
        scale = _GO_UNITS.get(unit)
        if scale is None:
            raise ValueError(f"time: unknown unit {_quote(unit)} in duration {_quote(text)}")
        total += float(f"{whole or 0}.{frac or 0}") * scale
        i = k
    return -total if neg else total


def humanize_bytes(text: str) -> float:
    """``humanize.ParseBytes(text)``: digits, dots and commas (dropped), then a unit."""
    n = 0
    while n < len(text) and (text[n].isdigit() or text[n] in ".,"):
        n += 1
    number = go_float(text[:n].replace(",", ""))
    unit = text[n:].strip().lower()
    scale = _BYTE_UNITS.get(unit)
    if scale is None:
        raise ValueError(f"unhandled size name: {unit}")
    v = number * scale
    if v >= 2.0**64:
        raise ValueError(f"too large: {text}")
    return float(int(v))  # a uint64: whole bytes
