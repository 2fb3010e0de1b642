"""Request parameters as Prometheus's ``web/api/v1`` parses them: form merging, timestamps,
durations, limits, ``match[]`` selectors and the ``U__`` label-name escaping."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import parse_qsl

import promql_parser as pp

from kms.metrics.promql.extended import MOD_LABEL
from kms.metrics.promql.model import Matcher

__all__ = [
    "ApiError",
    "MIN_TIME_MS",
    "MAX_TIME_MS",
    "Form",
    "parse_time_ms",
    "duration_ms",
    "parse_duration_ms",
    "parse_limit",
    "parse_selector",
    "selectors_of",
    "unescape_name",
]

#: Bounds used when ``start``/``end`` are absent (Prometheus uses its min/max representable time).
MIN_TIME_MS = -(2**62)
MAX_TIME_MS = 2**62 - 1
_MIN_FORMATTED = "-292273086-05-16T16:47:06Z"
_MAX_FORMATTED = "292277025-08-17T07:12:54.999999999Z"


class ApiError(Exception):
    """An error with an explicit Prometheus ``errorType`` and HTTP status."""

    def __init__(self, error_type: str, message: str, status: int):
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.status = status


class Form:
    """Query string plus url-encoded body, body first (Go's ``Request.Form``/``FormValue``)."""

    def __init__(self, query: str, body: bytes = b"", content_type: str = ""):
        pairs: list[tuple[str, str]] = []
        if body and content_type.split(";")[0].strip().lower() == "application/x-www-form-urlencoded":
            pairs += parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        pairs += parse_qsl(query, keep_blank_values=True)
        self._pairs = pairs

    def get(self, name: str, default: str = "") -> str:
        for k, v in self._pairs:
            if k == name:
                return v
        return default

    def getlist(self, name: str) -> list[str]:
        return [v for k, v in self._pairs if k == name]


_RFC3339 = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[Tt](\d\d):(\d\d):(\d\d)(?:\.(\d+))?([Zz]|[+-]\d\d:\d\d)"
)


def _bad_param(name: str, msg: str) -> ApiError:
    return ApiError("bad_data", f'invalid parameter "{name}": {msg}', 400)


def parse_time_ms(form: Form, name: str, default: int | None) -> int:
    """Unix seconds (float, fraction rounded to ms) or RFC3339(Nano); absurd values are clamped.
    ``default=None`` makes the parameter required."""
    s = form.get(name)
    if s == "" and default is not None:
        return default
    try:
        f = float(s)
    except ValueError:
        f = None
    if f is not None and "_" not in s and math.isfinite(f):
        sec = math.floor(f) if f >= 0 else math.ceil(f)
        ms = int(sec) * 1000 + round((f - sec) * 1000)
        return max(MIN_TIME_MS, min(MAX_TIME_MS, ms))
    if s == _MIN_FORMATTED:
        return MIN_TIME_MS
    if s == _MAX_FORMATTED:
        return MAX_TIME_MS
    m = _RFC3339.fullmatch(s)
    if m:
        y, mo, d, h, mi, se, frac, zone = m.groups()
        try:
            tz = UTC
            if zone not in ("Z", "z"):
                sign = -1 if zone[0] == "-" else 1
                tz = timezone(sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
            dt = datetime(int(y), int(mo), int(d), int(h), int(mi), int(se), tzinfo=tz)
        except ValueError:
            pass
        else:
            ms = int(dt.timestamp()) * 1000
            return ms + (int((frac or "0")[:3].ljust(3, "0")))
    raise _bad_param(name, f'cannot parse "{s}" to a valid timestamp')


_DURATION = re.compile(r"(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?")
_UNIT_MS = (31_536_000_000, 604_800_000, 86_400_000, 3_600_000, 60_000, 1000, 1)


def duration_ms(s: str) -> int:
    """Float seconds or a Prometheus duration (``1m30s``) to ms; raises ``ValueError``."""
    try:
        f = float(s)
    except ValueError:
        f = None
    if f is not None and "_" not in s and not math.isnan(f):
        if abs(f) * 1e9 >= 2**63:
            raise ValueError(f'cannot parse "{s}" to a valid duration. It overflows int64')
        return round(f * 1000)
    m = _DURATION.fullmatch(s)
    if s and m and any(m.groups()):
        return sum(int(g) * u for g, u in zip(m.groups(), _UNIT_MS, strict=True) if g)
    raise ValueError(f'cannot parse "{s}" to a valid duration')


def parse_duration_ms(s: str, name: str) -> int:
    try:
        return duration_ms(s)
    except ValueError as e:
        raise _bad_param(name, str(e)) from None


def parse_limit(form: Form) -> int:
    s = form.get("limit")
    if s == "":
        return 0
    try:
        n = int(s)
    except ValueError:
        raise ApiError("bad_data", f'cannot parse "limit": {s!r} is not an integer', 400) from None
    if n < 0:
        raise ApiError("bad_data", "limit must be non-negative", 400)
    return n


_OPS = {"MatchOp.Equal": "=", "MatchOp.NotEqual": "!=", "MatchOp.Re": "=~", "MatchOp.NotRe": "!~"}


def _matchers(vs) -> list[Matcher]:
    out = [Matcher("__name__", "=", vs.name)] if vs.name else []
    for m in vs.matchers.matchers:
        if m.name != MOD_LABEL:
            out.append(Matcher(m.name, _OPS[str(m.op)], m.value))
    return out


def parse_selector(text: str) -> list[Matcher]:
    """One ``match[]`` value: a metric selector such as ``up{job="x"}``."""
    try:
        expr = pp.parse(text)
    except (ValueError, TypeError) as e:
        raise ApiError("bad_data", f"1:1: parse error: {e}", 400) from None
    if type(expr).__name__ != "VectorSelector":
        raise ApiError("bad_data", f"1:1: parse error: {text!r} is not a metric selector", 400)
    if expr.matchers.or_matchers:
        raise ApiError("bad_data", "or-matchers in match[] are not supported", 400)
    try:
        return _matchers(expr)
    except (ValueError, re.error) as e:
        raise ApiError("bad_data", f"1:1: parse error: {e}", 400) from None


def selectors_of(expr) -> list[list[Matcher]]:
    """Matchers of every vector selector in a parsed expression (``parser.ExtractSelectors``)."""
    out: list[list[Matcher]] = []
    stack = [expr]
    while stack:
        e = stack.pop()
        kind = type(e).__name__
        if kind == "VectorSelector":
            out.append(_matchers(e))
        elif kind == "MatrixSelector":
            stack.append(e.vector_selector)
        elif kind == "BinaryExpr":
            stack += [e.rhs, e.lhs]
        elif kind == "Call":
            stack += list(reversed(e.args))
        elif kind == "AggregateExpr":
            stack += [x for x in (e.expr, e.param) if x is not None]
        elif kind in ("ParenExpr", "UnaryExpr", "SubqueryExpr"):
            stack.append(e.expr)
    return out


def unescape_name(name: str) -> str:
    """Undo the ``U__`` value-encoding escaping (``U__http_2e_status`` -> ``http.status``);
    an invalid escape gives the name back unchanged, as ``model.UnescapeName`` does."""
    if not name.startswith("U__"):
        return name
    body, out, i = name[3:], [], 0
    while i < len(body):
        c = body[i]
        if c != "_":
            out.append(c)
            i += 1
            continue
        i += 1
        if i >= len(body):
            return name
        if body[i] == "_":
            out.append("_")
            i += 1
            continue
        end = body.find("_", i)
        code = body[i:end] if end > 0 else ""
        if not code or len(code) > 6 or not re.fullmatch(r"[0-9a-fA-F]+", code):
            return name
        cp = int(code, 16)
        if cp > 0x10FFFF or 0xD800 <= cp <= 0xDFFF:
            return name
        out.append(chr(cp))
        i = end + 1
    return "".join(out)
