"""Request parameters as Loki parses them (``pkg/loghttp/params.go``): timestamps as unix ns
integers (10 digits or fewer: seconds), float seconds or RFC3339Nano; durations as float seconds
or Prometheus durations; stream selectors of ``query``/``match[]``."""

from __future__ import annotations

import math
import re
from datetime import datetime

from kms.errors import BadInput
from kms.logs.loki_push import unquote
from kms.metrics.http.params import Form, duration_ms
from kms.metrics.promql.model import Matcher

__all__ = ["NS", "Form", "parse_time_ns", "parse_duration_ns", "parse_selector", "parse_limit", "parse_direction",
           "time_range"]

_RFC3339 = re.compile(r"(\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?([Zz]|[+-]\d\d:\d\d)")
NS = 1_000_000_000


def parse_time_ns(form: Form, name: str, default: int) -> int:
    s = form.get(name).strip()
    if s == "":
        return default
    if "." in s:
        try:
            f = float(s)
        except ValueError:
            f = None
        if f is not None and math.isfinite(f):
            sec = math.floor(f)
            return int(sec) * NS + round((f - sec) * NS)
    if re.fullmatch(r"-?\d+", s):
        n = int(s)
        n = n * NS if len(s.lstrip("-")) <= 10 else n
        return max(-(2**63), min(2**63 - 1, n))
    m = _RFC3339.fullmatch(s)
    if m:
        try:
            dt = datetime.fromisoformat(m.group(1).replace("t", "T").replace(" ", "T") + m.group(3).upper()
                                        .replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            return int(dt.timestamp()) * NS + int((m.group(2) or "0").ljust(9, "0"))
    raise BadInput(f'invalid parameter "{name}": cannot parse "{s}" to a valid timestamp')


def parse_duration_ns(s: str, name: str) -> int:
    try:
        return duration_ms(s.strip()) * 1_000_000
    except ValueError as e:
        raise BadInput(f'invalid parameter "{name}": {e}') from None


def parse_limit(form: Form, default: int, name: str = "limit") -> int:
    s = form.get(name).strip()
    if s == "":
        return default
    try:
        n = int(s)
    except ValueError:
        raise BadInput(f'invalid parameter "{name}": cannot parse "{s}" as an integer') from None
    if n <= 0:
        raise BadInput(f"limit must be a positive value, got {n}")
    return n


def parse_direction(form: Form) -> str:
    """``forward`` or ``backward``; unknown values are ``backward`` (decision 9)."""
    return "forward" if form.get("direction").strip().lower() == "forward" else "backward"


def time_range(form: Form, now_ns: int, default_span_ns: int) -> tuple[int, int]:
    """``start``/``end``/``since`` -> ``(start, end)`` ns; ``end`` defaults to now, ``start`` to
    ``end - since`` or ``end - default_span``."""
    end = parse_time_ns(form, "end", now_ns)
    since = form.get("since")
    span = parse_duration_ns(since, "since") if since else default_span_ns
    start = parse_time_ns(form, "start", end - span)
    return start, end


_MATCHER = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*("(?:[^"\\]|\\.)*"|`[^`]*`)\s*(,|\})', re.DOTALL)


def parse_selector(text: str) -> list[Matcher]:
    """The matchers of the stream selector a query starts with (``{a="x", b=~"y.*"} |= ...``);
    what follows the selector is not looked at. Empty text: no matchers."""
    s = text.strip()
    if not s:
        return []
    if not s.startswith("{"):
        raise BadInput(f"parse error at line 1, col 1: syntax error: unexpected {s[:1]!r}, expecting {{")
    pos, out = 1, []
    if s[1:].lstrip().startswith("}"):
        raise BadInput("parse error : queries require at least one regexp or equality matcher that does not have an "
                       "empty-compatible value. For instance, app=~\".*\" does not meet this requirement, but "
                       "app=~\".+\" will")
    while True:
        m = _MATCHER.match(s, pos)
        if not m:
            raise BadInput(f"parse error at line 1, col {pos + 1}: syntax error in stream selector {text!r}")
        try:
            out.append(Matcher(m.group(1), m.group(2), unquote(m.group(3))))
        except (ValueError, re.error) as e:
            raise BadInput(f"parse error at line 1, col {pos + 1}: {e}") from None
        pos = m.end()
        if m.group(4) == "}":
            return out
