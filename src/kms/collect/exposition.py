"""Prometheus text exposition (0.0.4) and OpenMetrics 1.0 bodies -> columns of raw lines.

The parse is split in two so that a scrape does almost no per-sample Python work:

* :func:`parse` runs C regular expressions over the whole body and returns, per sample line, the
  raw series text (``name{labels}`` exactly as exposed, the key a scrape loop caches its series
  by, as Prometheus does), the value column (numpy, converted in one call) and the timestamp column;
  plus metadata (``# TYPE/HELP/UNIT``) and OpenMetrics exemplars.
* :func:`parse_series` turns one raw series text into a name and labels (unescaped) and checks
  its label syntax in full; scrape loops call it only for series text they have not met before
  (so a malformed label set fails the scrape when first met, and is never cached).
* :func:`split_layout` splits a text-format body of plain ``series value`` lines by numpy over
  its bytes, values included; a scrape loop whose target exposes the same lines again (but for
  the values) stores them without looking at a single line (``series.py``).

Timestamps are **milliseconds** (OpenMetrics' float seconds are converted); a sample without
one has :data:`NO_TS`. A line that is neither a sample nor a comment fails the whole body with
:class:`ParseError` naming the line, as Prometheus fails the scrape.
"""

from __future__ import annotations

import contextlib
import itertools
import operator
import re
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "ACCEPT",
    "NO_TS",
    "Layout",
    "ParseError",
    "Parsed",
    "RawExemplar",
    "is_openmetrics",
    "parse",
    "parse_series",
    "split_layout",
]

#: Prometheus's scrape Accept header: OpenMetrics first, then the text format.
ACCEPT = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
          "text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
NO_TS = np.iinfo(np.int64).min

# name, optional {labels} (quoted values may hold any character but an unescaped quote), value,
# optional timestamp, optional OpenMetrics exemplar (" # {labels} value [ts]").
_SAMPLE = re.compile(
    rb'^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{(?:[^"}\n]|"(?:[^"\\\n]|\\.)*")*\})?|\{(?:[^"}\n]|"(?:[^"\\\n]|\\.)*")*\})'
    rb"[ \t]+([^ \t\r\n#]+)(?:[ \t]+([^ \t\r\n#]+))?[ \t]*(?:(#[^\r\n]*))?\r?$",
    re.M,
)
# The fast path: one match per line (comment, blank or sample: series text, then its tail), so
# the scanner never restarts inside a line; label values holding "}" make it miss a line and the
# exact grammar (_SAMPLE) takes over. bench_scrape: ~0.75 us a line against ~2.2 us for _SAMPLE.
_LINE = re.compile(
    rb"^(?:#[^\n]*|[ \t\r]*|([a-zA-Z_:][^ \t{\n]*(?:\{[^}\n]*\})?|\{[^}\n]*\})([ \t][^\n]*))$", re.M)
_COMMENT_LINES = re.compile(rb"\n#[^\n]*")
_META = re.compile(rb"^#[ \t]+(HELP|TYPE|UNIT)[ \t]+(\S+)(?:[ \t]+(.*?))?[ \t]*\r?$", re.M)
_EXEMPLAR = re.compile(r'^#[ \t]*(\{(?:[^"}]|"(?:[^"\\]|\\.)*")*\})[ \t]+(\S+)(?:[ \t]+(\S+))?[ \t]*$')
_PAIR = re.compile(r'[ \t]*(?:([a-zA-Z_][a-zA-Z0-9_]*)|"((?:[^"\\]|\\.)*)")[ \t]*(?:=[ \t]*"((?:[^"\\]|\\.)*)")?'
                   r"[ \t]*(,|\}|\Z)", re.S)
_ESCAPE = re.compile(r"\\(.)", re.S)
_TYPES = {"counter": "counter", "gauge": "gauge", "histogram": "histogram", "summary": "summary",
          "untyped": "unknown", "unknown": "unknown", "gaugehistogram": "gaugehistogram", "info": "info",
          "stateset": "stateset"}


class ParseError(ValueError):
    """The body is not valid exposition; the message names the line."""


@dataclass(frozen=True, slots=True)
class RawExemplar:
    sample: int  # index of the sample line it is attached to
    labels: tuple[tuple[str, str], ...]
    value: float
    ts_ms: int  # NO_TS when the exemplar has none


@dataclass
class Parsed:
    series: list[bytes]  # raw series text of each sample line
    values: np.ndarray  # float64
    ts_ms: np.ndarray  # int64, NO_TS where the line has no timestamp
    #: family -> {"type", "help", "unit"} (OpenMetrics' or the text format's comments)
    metadata: dict[str, dict[str, str]] = field(default_factory=dict)
    exemplars: list[RawExemplar] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.series)


def is_openmetrics(content_type: str) -> bool:
    """Prometheus picks the parser by the response's media type; anything else is the text format."""
    return content_type.split(";", 1)[0].strip().lower() == "application/openmetrics-text"


def _unescape(s: str) -> str:
    if "\\" not in s:
        return s
    table = {"n": "\n", "\\": "\\", '"': '"'}
    return _ESCAPE.sub(lambda m: table.get(m.group(1), "\\" + m.group(1)), s)


def _floats(raw: list[bytes]) -> np.ndarray:
    """One C conversion for the common case; Go's spellings numpy does not know (``+Inf``,
    hex, underscores) fall back to Python's ``float`` per value."""
    try:
        return np.array(raw, dtype="S").astype(np.float64)
    except ValueError:
        out = np.empty(len(raw), np.float64)
        for i, b in enumerate(raw):
            out[i] = _float(b)
        return out


def _float(b: bytes | str) -> float:
    s = b.decode("utf-8", "replace") if isinstance(b, bytes) else b
    try:
        return float(s)
    except ValueError:
        try:
            return float.fromhex(s) if "0x" in s.lower() else float(s.replace("_", ""))
        except ValueError:
            raise ParseError(f"strconv.ParseFloat: parsing {s!r}: invalid syntax") from None


def _timestamps(raw: list[bytes], openmetrics: bool) -> np.ndarray:
    """Timestamps in ms; the text format's are integer ms, OpenMetrics' float seconds."""
    present = [i for i, t in enumerate(raw) if t] if any(raw) else []
    out = np.full(len(raw), NO_TS, np.int64)
    if not present:
        return out
    vals = [raw[i] for i in present]
    if openmetrics:
        secs = _floats(vals)
        if not np.isfinite(secs).all():
            raise ParseError("invalid timestamp")
        out[present] = np.round(secs * 1000).astype(np.int64)
    else:
        try:
            out[present] = np.array([int(v) for v in vals], np.int64)
        except ValueError:
            raise ParseError(f"invalid timestamp {vals[0]!r}") from None
    return out


def _rows_careful(body: bytes, om: bool) -> tuple[list[bytes], list[bytes]]:
    """Line by line with the exact grammar (quoted label values may hold ``}``): the slow path,
    taken only when the fast one did not account for every line. Raises on the first bad line."""
    series, rest = [], []
    lines = body.split(b"\n")
    for no, line in enumerate(lines, 1):
        if not line.strip(b" \t\r"):
            if om and no < len(lines):
                raise ParseError(f"line {no}: unexpected blank line (OpenMetrics allows none)")
            continue
        if line.startswith(b"#"):
            continue
        m = _SAMPLE.match(line)
        if m is None:
            raise ParseError(f"line {no}: not a sample or a comment: {line[:120].decode(errors='replace')!r}")
        series.append(m.group(1))
        rest.append(line[m.end(1):])
    return series, rest


def _split_rest(rest: list[bytes], series: list[bytes], om: bool) -> tuple[np.ndarray, np.ndarray, list[RawExemplar]]:
    """Values, timestamps and exemplars of lines whose tail is more than a bare value."""
    vals, tss, exs = [], [], []
    for i, tail in enumerate(rest):
        text, _, ex = tail.partition(b"#")
        tokens = text.split()
        if ex and not om:
            raise ParseError(f"unexpected '#' after the value of {series[i][:120].decode(errors='replace')!r}")
        if not 1 <= len(tokens) <= 2:
            raise ParseError(f"expected a value and an optional timestamp after {series[i][:120].decode(errors='replace')!r}")
        vals.append(tokens[0])
        tss.append(tokens[1] if len(tokens) == 2 else b"")
        if ex:
            exs.append(_exemplar(i, "#" + ex.decode("utf-8", "replace")))
    return _floats(vals), _timestamps(tss, om), exs


def _values(tails: list[bytes]) -> np.ndarray:
    # Python's float() per value beats numpy's bytes->float cast 1.6x (bench_scrape); ValueError
    # for anything that is not a bare value
    return np.fromiter(map(float, tails), np.float64, len(tails))


def _rows_split(body: bytes) -> tuple[list[bytes], np.ndarray] | None:
    """The fastest path, for text-format bodies of ``series value`` lines: C-level splits, no
    regex. None when the body has anything else (timestamps, tabs, ``#`` after a value), which
    the regex path then handles. A series text taken here is checked in full only when first
    met (:func:`parse_series`); a valid one never contains a space outside its braces, so a line
    with a timestamp cannot pass as ``series value``."""
    if b"\t" in body or b" #" in body:
        return None
    lines = [line for line in body.split(b"\n") if line and line[0] != 35]  # 35: "#"
    parts = list(map(bytes.rpartition, lines, itertools.repeat(b" ")))
    series = list(map(operator.itemgetter(0), parts))
    if not all(series) or any(s[-1] != 125 and b" " in s for s in series):  # 125: "}"
        return None
    try:
        return series, _values(list(map(operator.itemgetter(2), parts)))
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class Layout:
    """A text-format body of ``series value`` lines, split by numpy over its bytes: no Python
    work per line (but converting values that are not integers). ``skeleton`` is the body without its values
    (comments and series texts): a scrape loop compares it with the last scrape's to know that
    the series are the same, in the same order, without looking at them."""

    skeleton: bytes
    values: np.ndarray  # float64, one per sample line
    starts: np.ndarray  # the series text of sample line i is body[starts[i]:stops[i]] ...
    stops: np.ndarray
    shift: np.ndarray  # ... and skeleton[starts[i] - shift[i]:stops[i] - shift[i]]

    def __len__(self) -> int:
        return len(self.starts)

    def series(self, body: bytes) -> list[bytes]:
        return list(map(body.__getitem__, map(slice, self.starts.tolist(), self.stops.tolist())))


_POW10 = 10.0 ** np.arange(16)


def _token_values(body: bytes, buf: np.ndarray, at: np.ndarray, lengths: np.ndarray, shift: np.ndarray,
                  last: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """The values of the tokens ``body[last[i] + 1:ends[i]]`` (``buf[at]``: each token after its
    space). Integers of up to 15 digits, most values exposed, are summed from their digits by
    numpy: exact, as each partial sum is an integer below 2**53 (5x faster than ``float`` on
    bench_scrape's bodies); any other token goes through ``float`` (ValueError if not a number)."""
    d = buf[at].astype(np.int8) - 48
    d[shift] = 0  # the space before each token
    neg = (lengths > 2) & (d[np.minimum(shift + 1, len(d) - 1)] == 45 - 48)  # a leading "-"
    d[(shift + 1)[neg]] = 0
    bad = np.logical_or.reduceat((d < 0) | (d > 9), shift) | (lengths > 16)
    power = np.minimum(np.repeat(shift + lengths - 1, lengths) - np.arange(len(at)), 15)
    values = np.add.reduceat(np.where((d < 0) | (d > 9), 0, d) * _POW10[power], shift)
    values[neg] = -values[neg]
    for i in np.flatnonzero(bad).tolist():
        values[i] = float(body[last[i] + 1 : ends[i]])
    return values


def split_layout(body: bytes) -> Layout | None:
    """The body's :class:`Layout` when :func:`_rows_split` would take it line by line, with the
    same series and values; None otherwise (the other paths then parse it or say what is wrong)."""
    if b"\t" in body or b" #" in body or not body:
        return None
    buf = np.frombuffer(body, np.uint8)
    ends = np.flatnonzero(buf == 10)
    if body[-1] != 10:
        ends = np.append(ends, len(buf))
    starts = np.empty_like(ends)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    sample = ends > starts
    sample[sample] = buf[starts[sample]] != 35  # 35: "#"
    s, e = starts[sample], ends[sample]
    spaces = np.flatnonzero(buf == 32)
    k = np.searchsorted(spaces, e) - 1  # the last space before each line's end
    if not len(s) or (k < 0).any():
        return None
    last = spaces[k]
    if (last <= s).any() or (last >= e - 1).any():  # no space, an empty series or an empty value
        return None
    # a space inside the series text is allowed only in a label value ("}" ends the text);
    # otherwise the line is "series value timestamp", for the regex path
    inner = k > 0
    inner[inner] = spaces[k[inner] - 1] >= s[inner]
    if (inner & (buf[last - 1] != 125)).any():  # 125: "}"
        return None
    # the value bytes [last, e) of every line: a ramp over their total length
    lengths = e - last
    shift = np.cumsum(lengths) - lengths  # value bytes before each line
    offsets = np.repeat(last - shift, lengths)
    at = np.arange(len(offsets)) + offsets
    try:
        values = _token_values(body, buf, at, lengths, shift, last, e)
    except ValueError:
        return None
    keep = np.ones(len(buf), bool)
    keep[at] = False
    return Layout(buf[keep].tobytes(), values, s, last, shift)


def _rows(body: bytes, om: bool, layout: Layout | None = None
          ) -> tuple[list[bytes], np.ndarray, np.ndarray, list[RawExemplar]]:
    if layout is not None:
        return layout.series(body), layout.values, np.full(len(layout), NO_TS, np.int64), []
    if not om and (fast := _rows_split(body)) is not None:
        series, values = fast
        return series, values, np.full(len(series), NO_TS, np.int64), []
    rows = _LINE.findall(body)
    if len(rows) == body.count(b"\n") + 1 and not (om and _blank_inside(body)):
        series, rest = zip(*rows, strict=True) if rows else ((), ())
        keep = list(map(bool, series))
        series = list(itertools.compress(series, keep))
        rest = list(itertools.compress(rest, keep))
        try:  # the common case: every tail is a bare value (one C conversion)
            values = _values(rest)
            return series, values, np.full(len(series), NO_TS, np.int64), []
        except ValueError:
            with contextlib.suppress(ParseError):
                return series, *_split_rest(rest, series, om)
    series, rest = _rows_careful(body, om)
    return series, *_split_rest(rest, series, om)


def _blank_inside(body: bytes) -> bool:
    return body.startswith(b"\n") or b"\n\n" in body


def parse(body: bytes, content_type: str = "text/plain", layout: Layout | None = None) -> Parsed:
    """Parse a whole scrape body; :class:`ParseError` if any line is invalid. ``layout``: the
    body's :func:`split_layout`, if the caller has it (text format only)."""
    om = is_openmetrics(content_type)
    if om:
        layout = None
        end = body.rstrip(b"\r\n ")
        if not (end == b"# EOF" or end.endswith(b"\n# EOF")):
            raise ParseError("data does not end with # EOF")
        body = end[: -len(b"# EOF")]
        body = body[:-1] if body.endswith(b"\n") else body
    series, values, ts, exemplars = _rows(body, om, layout)
    out = Parsed(series, values, ts, exemplars=exemplars)
    if b"#" in body:
        # the comment lines first: a literal-prefixed search skips sample lines ~10x faster than
        # the anchored _META scanning every line (bench_scrape: 0.9 ms -> 0.1 ms per 2k lines)
        comments = _COMMENT_LINES.findall(b"\n" + body)
        for m in filter(None, (_META.match(c, 1) for c in comments)):
            kind, name, text = m.groups(b"")
            fam = name.decode("utf-8", "replace")
            md = out.metadata.setdefault(fam, {"type": "unknown", "help": "", "unit": ""})
            value = text.decode("utf-8", "replace")
            if kind == b"TYPE":
                if value.lower() not in _TYPES:
                    raise ParseError(f"invalid metric type {value!r} of {fam}")
                md["type"] = _TYPES[value.lower()]
            elif kind == b"HELP":
                md["help"] = _unescape(value)
            else:
                md["unit"] = value
    return out


def _exemplar(i: int, text: str) -> RawExemplar:
    m = _EXEMPLAR.match(text)
    if m is None:
        raise ParseError(f"invalid exemplar {text[:120]!r}")
    labels, _ = _labels(m.group(1)[1:-1])
    ts = m.group(3)
    if sum(len(k) + len(v) for k, v in labels) > 128:
        raise ParseError(f"exemplar labels longer than 128 characters: {text[:120]!r}")
    return RawExemplar(i, tuple(sorted(labels)), _float(m.group(2)),
                       round(_float(ts) * 1000) if ts else int(NO_TS))


def _labels(inner: str) -> tuple[list[tuple[str, str]], str]:
    """Pairs of a ``{...}`` body, and a quoted metric name found among them (Prometheus 3 form)."""
    pairs: list[tuple[str, str]] = []
    name = ""
    pos = 0
    inner = inner.strip()
    while pos < len(inner):
        m = _PAIR.match(inner, pos)
        if m is None:
            raise ParseError(f"invalid labels {{{inner[:120]}}}")
        key = m.group(1) if m.group(1) is not None else _unescape(m.group(2))
        if m.group(3) is None:  # a bare quoted string: the metric name
            if m.group(2) is None or name:
                raise ParseError(f"invalid labels {{{inner[:120]}}}")
            name = key
        else:
            pairs.append((key, _unescape(m.group(3))))
        pos = m.end()
        if m.group(4) != ",":
            if pos < len(inner):
                raise ParseError(f"invalid labels {{{inner[:120]}}}")
            break
    return pairs, name


def parse_series(raw: bytes) -> tuple[str, list[tuple[str, str]]]:
    """Metric name and labels (in exposition order, unescaped) of a raw series text;
    :class:`ParseError` on duplicate label names or a missing name."""
    text = raw.decode("utf-8", "strict") if isinstance(raw, bytes) else raw
    brace = text.find("{")
    if brace < 0:
        return text, []
    name = text[:brace]
    pairs, quoted = _labels(text[brace + 1 : -1])
    if quoted:
        if name:
            raise ParseError(f"metric name given twice in {text[:120]!r}")
        name = quoted
    if not name:
        raise ParseError(f"no metric name in {text[:120]!r}")
    names = [k for k, _ in pairs]
    if len(set(names)) != len(names):
        raise ParseError(f"duplicate label names in {text[:120]!r}")
    return name, pairs
