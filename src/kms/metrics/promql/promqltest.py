"""Runner for Prometheus's PromQL test scripts (format: shared/conformance/promql/README.md).

``run_file(path)`` returns a ``FileReport`` with one ``CaseResult`` per ``eval`` header: passed
or failed (with the reason); ``native`` marks the cases that touch native histograms, so their
rate can be reported apart. Instant cases also get the range-mode re-run the README describes.

Native histograms are compared as the query API shows them (``FloatHistogram.same_as``):
schema, count, sum, zero bucket, custom bounds and every non-empty bucket; how Prometheus's
TSDB happens to lay out empty buckets in spans is not compared.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import promql_parser as pp

from kms.metrics.promql.engine import Engine, Evaluator
from kms.metrics.promql.model import STALE_NAN, MemorySeriesSource, is_stale
from kms.metrics.promql.nativehist import CUSTOM_SCHEMA, FloatHistogram
from kms.metrics.promql.values import Matrix, PromQLError, Scalar, String, Vector, label_key

__all__ = ["CaseResult", "FileReport", "run_file", "parse_duration_ms"]

_DUR = re.compile(r"(\d+)(ms|y|w|d|h|m|s)")
_UNIT_MS = {
    "ms": 1,
    "s": 1000,
    "m": 60_000,
    "h": 3_600_000,
    "d": 86_400_000,
    "w": 604_800_000,
    "y": 31_536_000_000,
}
_MIN_NORMAL = 2.2250738585072014e-308


def parse_duration_ms(s: str) -> int:
    if s == "0":
        return 0
    pos, total = 0, 0
    for m in _DUR.finditer(s):
        if m.start() != pos:
            raise ValueError(f"bad duration {s!r}")
        total += int(m.group(1)) * _UNIT_MS[m.group(2)]
        pos = m.end()
    if pos != len(s) or pos == 0:
        raise ValueError(f"bad duration {s!r}")
    return total


@dataclass
class CaseResult:
    line: int
    query: str
    status: str  # "passed" | "failed"
    reason: str = ""
    native: bool = False  # the case touches native histograms


@dataclass
class FileReport:
    path: str
    cases: list[CaseResult] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for c in self.cases if c.status == status)


_HIST_FIELD = re.compile(r"(\w+):\s*(\[[^\]]*\]|[^\s\]]+)")
_HINTS = {"unknown": "unknown", "reset": "reset", "not_reset": "not_reset", "gauge": "gauge"}
_TOKEN = re.compile(r"\{\{.*?\}\}(?:[+-]\{\{.*?\}\})?(?:x\d+)?|\S+")


def parse_histogram(text: str) -> FloatHistogram:
    """One ``{{schema:0 sum:5 count:4 buckets:[1 2 1] ...}}`` value of the test notation."""
    inner = text.strip()[2:-2]
    h = FloatHistogram()
    spans: dict[str, list[float]] = {}
    offsets = {"offset": 0, "n_offset": 0}
    for key, val in _HIST_FIELD.findall(inner):
        if val.startswith("["):
            nums = [_parse_float(x) for x in val[1:-1].split()]
            if key == "custom_values":
                h.custom_values = tuple(nums)
            elif key in ("buckets", "n_buckets"):
                spans[key] = nums
            else:
                raise ValueError(f"unknown histogram list {key!r}")
        elif key == "schema":
            h.schema = int(val)
        elif key in ("offset", "n_offset"):
            offsets[key] = int(val)
        elif key == "counter_reset_hint":
            h.hint = _HINTS[val]
        elif key in ("sum", "count", "z_bucket", "z_bucket_w"):
            attr = {"sum": "sum", "count": "count", "z_bucket": "zero_count", "z_bucket_w": "zero_threshold"}[
                key
            ]
            setattr(h, attr, _parse_float(val))
        else:
            raise ValueError(f"unknown histogram field {key!r}")
    h.pos = {offsets["offset"] + i: c for i, c in enumerate(spans.get("buckets", []))}
    h.neg = {offsets["n_offset"] + i: c for i, c in enumerate(spans.get("n_buckets", []))}
    return h


def _hist_sequence(item: str) -> list[FloatHistogram]:
    m = re.fullmatch(r"(\{\{.*?\}\})(?:([+-])(\{\{.*?\}\}))?(?:x(\d+))?", item)
    if m is None:
        raise ValueError(f"bad histogram value {item!r}")
    base = parse_histogram(m.group(1))
    if m.group(4) is None:
        return [base]
    times = int(m.group(4))
    inc = parse_histogram(m.group(3)) if m.group(3) else None
    out, cur = [base], base
    for _ in range(times):
        if inc is not None:
            cur = cur.copy()
            (cur.add if m.group(2) == "+" else cur.sub)(inc)
        out.append(cur)
    return out


def _stored_hint(h: FloatHistogram, prev: FloatHistogram | None) -> None:
    """Set the counter-reset hint a histogram reads back with from Prometheus's TSDB: a chunk
    starts at a series' first histogram and at every reset and its first sample reads back as
    ``unknown`` (prometheus/prometheus#15346), later samples as ``not_reset``; gauge histograms
    stay gauges."""
    if h.hint == "gauge" or prev is None:
        return
    h.hint = "unknown" if h.detect_reset(prev) else "not_reset"


def _classic_to_nhcb(
    classic: list[tuple[dict[str, str], list, int]],
) -> dict[tuple, dict[int, FloatHistogram]]:
    """``load_with_nhcb``: classic ``_bucket``/``_count``/``_sum`` series also loaded as native
    histograms with custom buckets under the base name, as Prometheus's test loader does."""
    parts: dict[tuple, dict[int, dict]] = {}
    for labels, vals, step in classic:
        name = labels["__name__"]
        suffix = next(x for x in ("_bucket", "_count", "_sum") if name.endswith(x))
        base = {k: v for k, v in labels.items() if k not in ("__name__", "le")}
        base["__name__"] = name[: -len(suffix)]
        if suffix == "_bucket":
            try:
                le = float(labels.get("le", "nan").replace("+Inf", "inf"))
            except ValueError:
                continue
            if math.isnan(le):
                continue
        for k, v in enumerate(vals):
            if v is None or isinstance(v, FloatHistogram) or is_stale(np.array([v]))[0]:
                continue
            d = parts.setdefault(label_key(base), {}).setdefault(k * step, {"buckets": {}})
            if suffix == "_bucket":
                d["buckets"][le] = v
            else:
                d[suffix] = v
    out: dict[tuple, dict[int, FloatHistogram]] = {}
    for key, by_t in parts.items():
        for t, d in by_t.items():
            les = sorted(d["buckets"])
            if not les:
                continue
            finite = tuple(x for x in les if not math.isinf(x))
            h = FloatHistogram(schema=CUSTOM_SCHEMA, custom_values=finite)
            prev = 0.0
            for i, le in enumerate(les):
                c = d["buckets"][le]
                h.pos[i] = c - prev
                prev = c
            h.count = d.get("_count", prev)
            h.sum = d.get("_sum", 0.0)
            out.setdefault(key, {})[t] = h
    return out


_OFFSET = re.compile(
    r"([-+]?(?:\d+(?:ms|y|w|d|h|m|s))+|[-+]?0)(?:([+-])((?:\d+(?:ms|y|w|d|h|m|s))+))?(?:x(\d+))?"
)


def _signed_ms(text: str) -> int:
    sign = -1 if text.startswith("-") else 1
    return sign * parse_duration_ms(text.lstrip("+-"))


def parse_offsets(items: list[str]) -> list[int | None]:
    """The ``@st`` notation: per sample, its start timestamp as an offset from the sample's time
    (``-30s``), with the value notation's ``a+bxN`` / ``a-bxN`` / ``axN`` expansions; ``_``: none."""
    out: list[int | None] = []
    for it in items:
        if it == "_":
            out.append(None)
            continue
        if it.startswith("_x"):
            out.extend([None] * int(it[2:]))
            continue
        m = _OFFSET.fullmatch(it)
        if m is None:
            raise ValueError(f"bad start timestamp offset {it!r}")
        base = _signed_ms(m.group(1))
        inc = _signed_ms(m.group(3)) * (-1 if m.group(2) == "-" else 1) if m.group(3) else 0
        times = int(m.group(4)) if m.group(4) else 0
        out.extend(base + i * inc for i in range(times + 1))
    return out


def value_tokens(text: str) -> list[str]:
    """Whitespace-separated values, a ``{{...}}`` histogram (and its expansion) as one."""
    return _TOKEN.findall(text)


def _parse_float(tok: str) -> float:
    t = tok.lower()
    if t in ("nan",):
        return math.nan
    if t in ("inf", "+inf"):
        return math.inf
    if t == "-inf":
        return -math.inf
    if t.startswith(("0x", "-0x", "+0x")):
        raise ValueError(f"hex not allowed in series values: {tok}")
    return float(tok)


_EXPAND = re.compile(r"^([-+]?[^x+\-]+(?:[eE][-+]?\d+)?)([+-])([^x]+)x(\d+)$")


def parse_values(items: list[str]) -> list[float | FloatHistogram | None]:
    """Series-notation values; ``None`` is an empty slot, histograms are ``FloatHistogram``s."""
    out: list[float | FloatHistogram | None] = []
    for it in items:
        if it.startswith("{{"):
            out.extend(_hist_sequence(it))
        elif it == "_":
            out.append(None)
        elif it.startswith("_x"):
            out.extend([None] * int(it[2:]))
        elif it == "stale":
            out.append(STALE_NAN)
        else:
            m = re.fullmatch(
                r"([-+]?(?:[0-9.]+(?:[eE][-+]?\d+)?|Inf|inf|NaN|nan))(?:([+-])([0-9.]+(?:[eE][-+]?\d+)?|Inf|NaN))?x(\d+)",
                it,
            )
            if m:
                a = _parse_float(m.group(1))
                b = _parse_float(m.group(3)) if m.group(3) else 0.0
                if m.group(2) == "-":
                    b = -b
                out.extend(a + i * b for i in range(int(m.group(4)) + 1))
            else:
                out.append(_parse_float(it))
    return out


def _split_series(line: str) -> tuple[str, str]:
    brace = line.find("{")
    ws = re.search(r"\s", line)
    if brace >= 0 and (ws is None or brace < ws.start()):
        depth, quote, i = 0, "", brace
        while i < len(line):
            c = line[i]
            if quote:
                if c == "\\":
                    i += 1
                elif c == quote:
                    quote = ""
            elif c in "\"'`":
                quote = c
            elif c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
                if depth == 0:
                    return line[: i + 1], line[i + 1 :].strip()
            i += 1
        raise ValueError(f"unbalanced braces: {line}")
    if ws is None:
        return line, ""
    return line[: ws.start()], line[ws.start() :].strip()


def parse_labels(desc: str) -> dict[str, str]:
    if desc.strip() == "{}":
        return {}
    e = pp.parse(desc)
    labels = {}
    if e.name:
        labels["__name__"] = e.name
    for m in e.matchers.matchers:
        labels[m.name] = m.value
    return labels


def _almost_equal(a: float, b: float) -> bool:
    if is_stale(np.array([a]))[0] or is_stale(np.array([b]))[0]:
        return bool(is_stale(np.array([a]))[0] and is_stale(np.array([b]))[0])
    if math.isnan(a) and math.isnan(b):
        return True
    if a == b:
        return True
    abs_sum, diff = abs(a) + abs(b), abs(a - b)
    if a == 0 or b == 0 or abs_sum < _MIN_NORMAL:
        return diff < 1e-6 * _MIN_NORMAL
    return diff / min(abs_sum, 1.7976931348623157e308) < 1e-6


_NO_AT_CHECK = re.compile(
    r"\b(time|timestamp|predict_linear|start|end|range|step|hour|minute|month|year|day_of_\w+|days_in_month)\s*\("
)
_CMD = re.compile(r"(?i)(load|load_with_nhcb|clear|eval|eval_fail|eval_warn|eval_info|eval_ordered)(\s|$)")
_NO_RANGE_CHECK = re.compile(r"\b(start|end|range|step)\s*\(")


class _Script:
    def __init__(self, path: Path):
        self.path = path
        self.lines = path.read_text().splitlines()
        self.source = MemorySeriesSource()
        self.engine = Engine(self.source)
        self.hist_names: set[str] = set()
        self.hist_series: list[dict[str, str]] = []
        self.classic: list[tuple[dict[str, str], list, int]] = []
        self.report = FileReport(path.name)

    def run(self) -> FileReport:
        i = 0
        n = len(self.lines)
        while i < n:
            line = self.lines[i].strip()
            if not line or line.startswith("#"):
                i += 1
                continue
            body_start = i + 1
            j = body_start
            word = line.split()[0].lower()
            while (
                word != "clear"
                and j < n
                and self.lines[j].strip()
                and not self.lines[j].strip().startswith("#")
            ):
                if _CMD.match(self.lines[j].strip()):
                    break
                j += 1
            body = [self.lines[k].strip() for k in range(body_start, j)]
            if word in ("load", "load_with_nhcb"):
                self._load(line, body, nhcb=word == "load_with_nhcb")
            elif word == "clear":
                self.source.clear()
                self.hist_names.clear()
                self.hist_series.clear()
            elif word.startswith("eval"):
                self.report.cases.append(self._eval(i + 1, line, body))
            else:
                raise ValueError(f"{self.path}:{i + 1}: unknown command {line!r}")
            i = j
        return self.report

    def _load(self, header: str, body: list[str], nhcb: bool) -> None:
        step = parse_duration_ms(header.split()[1])
        for line in body:
            desc, rest = _split_series(line)
            if desc.endswith("@st") or rest.startswith("@st"):
                desc = desc.removesuffix("@st")
                rest = rest.removeprefix("@st").strip()
                labels = parse_labels(desc)
                for k, off in enumerate(parse_offsets(rest.split())):
                    if off is not None:
                        self.source.add_start_timestamp(labels, k * step, k * step + off)
                continue
            labels = parse_labels(desc)
            vals = parse_values(value_tokens(rest))
            name = labels.get("__name__", "")
            if any(isinstance(v, FloatHistogram) for v in vals):
                self.hist_names.add(name)
                self.hist_series.append(labels)
            if nhcb:
                for suf in ("_bucket", "_count", "_sum"):
                    if name.endswith(suf):
                        self.hist_names.add(name[: -len(suf)])
                        self.classic.append((labels, vals, step))
            prev = None
            for k, v in enumerate(vals):
                if isinstance(v, FloatHistogram):
                    v = v.copy()
                    _stored_hint(v, prev)
                    self.source.add_histogram(labels, k * step, v)
                    prev = v
                elif v is not None:
                    self.source.add(labels, k * step, v)
                    if not is_stale(np.array([v]))[0]:
                        prev = None
        if nhcb:
            for labels, hists in _classic_to_nhcb(self.classic).items():
                prev = None
                for t, h in sorted(hists.items()):
                    _stored_hint(h, prev)
                    self.source.add_histogram(dict(labels), t, h)
                    prev = h
            self.classic.clear()

    def _touches_hist(self, query: str, body: list[str]) -> bool:
        if any("{{" in b for b in body):
            return True
        words = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", query))
        if words & self.hist_names:
            return True
        if not self.hist_series:
            return False
        try:
            expr = pp.parse(query)
        except Exception:  # noqa: BLE001 - unparsable queries are judged by the name check only
            return False
        ev = Evaluator(self.engine, 0, 0, 0)
        for vs in _selectors(expr):
            ms = ev.matchers(vs)
            if any(all(m.matches(h.get(m.name, "")) for m in ms) for h in self.hist_series):
                return True
        return False

    def _eval(self, lineno: int, header: str, body: list[str]) -> CaseResult:
        parts = header.split()
        cmd = parts[0].lower()
        fail = cmd == "eval_fail"
        ordered = cmd == "eval_ordered"
        if parts[1] == "instant":
            t = parse_duration_ms(parts[3])
            query = header.split(None, 4)[4]
            rng = None
        else:
            start, end, step = (parse_duration_ms(parts[k]) for k in (3, 5, 7))
            query = header.split(None, 8)[8]
            rng = (start, end, step)
        case = CaseResult(lineno, query, "passed", native=self._touches_hist(query, body))
        try:
            self._check(
                query,
                t if rng is None else None,
                rng,
                body,
                fail,
                ordered,
                cmd[5:] if cmd.startswith("eval_") else "",
            )
        except AssertionError as exc:
            case.status, case.reason = "failed", str(exc)[:300]
        except Exception as exc:  # an engine bug is a failed case, not a crashed run
            case.status, case.reason = "failed", f"{type(exc).__name__}: {exc}"[:300]
        return case

    def _check(self, query, t, rng, body, fail, ordered, deprecated="") -> None:
        fail_msg = fail_rx = None
        expect_range = None
        expect_string = None
        scalar = None
        series: list[tuple[dict, list]] = []
        annos: dict[str, list[tuple[str, str]]] = {"warn": [], "info": []}
        forbid: set[str] = set()
        if deprecated in ("warn", "info"):  # eval_warn / eval_info headers
            annos[deprecated].append(("any", ""))
        for line in body:
            low = line.lower()
            if low.startswith("expected_fail_message"):
                fail_msg = line.split(None, 1)[1] if " " in line else ""
                continue
            if low.startswith("expected_fail_regexp"):
                fail_rx = line.split(None, 1)[1]
                continue
            if low.startswith("expect "):
                rest = line[7:].strip()
                if rest.startswith("range vector"):
                    p = rest.split()
                    expect_range = (parse_duration_ms(p[3]), parse_duration_ms(p[5]), parse_duration_ms(p[7]))
                elif rest.startswith("string"):
                    expect_string = rest[6:].strip()[1:-1]
                else:
                    kind = rest.split()[0]
                    tail = rest[len(kind) :].strip()
                    if kind == "fail":
                        fail = True
                        if tail.startswith("msg:"):
                            fail_msg = tail[4:].strip()
                        elif tail.startswith("regex:"):
                            fail_rx = tail[6:].strip()
                    elif kind == "ordered":
                        ordered = True
                    elif kind in ("warn", "info"):
                        mode = (
                            "msg"
                            if tail.startswith("msg:")
                            else "regex"
                            if tail.startswith("regex:")
                            else "any"
                        )
                        annos[kind].append((mode, tail.split(":", 1)[1].strip() if mode != "any" else ""))
                    elif kind in ("no_warn", "no_info"):
                        forbid.add(kind[3:])
                continue
            if (
                series == []
                and scalar is None
                and re.fullmatch(r"[-+]?(0x[0-9a-fA-F]+|[0-9.eE+\-]+|NaN|Inf|nan|inf)", line)
            ):
                try:
                    scalar = float(int(line, 0))
                except ValueError:
                    scalar = _parse_float(line)
                break
            desc, rest = _split_series(line)
            series.append((parse_labels(desc), parse_values(value_tokens(rest))))

        def run(q, tt):
            return self.engine.instant(q, tt) if rng is None else self.engine.range(q, *rng)

        if fail:
            try:
                run(query, t)
            except PromQLError as exc:
                msg = exc.message
                if (
                    msg.startswith("parse error: ")
                    and fail_msg is not None
                    and not fail_msg.startswith("parse error")
                ):
                    msg = msg[len("parse error: ") :]
                if fail_msg is not None:
                    assert msg == fail_msg, f"error {msg!r} != expected {fail_msg!r}"
                if fail_rx is not None:
                    assert re.search(fail_rx, msg), f"error {msg!r} !~ {fail_rx!r}"
                return
            raise AssertionError("expected failure, query succeeded")
        res = run(query, t)
        _check_annotations("warn", res.warnings, annos["warn"], "warn" in forbid)
        _check_annotations("info", res.infos, annos["info"], "info" in forbid)
        if rng is not None:
            _compare_matrix(res.value, series, rng)
            return
        at_check = not _NO_AT_CHECK.search(query)
        times = [t]
        if at_check:
            times = [-10 * t, 0, t // 5, t, 10 * t] if t else [-1000, 0, 1000]
        for tt in times:
            val = res.value if tt == t else self.engine.instant(query, tt, pin_at_ms=t).value
            where = "" if tt == t else f"@-check at {tt}ms: "
            if expect_string is not None:
                assert isinstance(val, String), f"{where}expected string, got {val.type}"
                assert val.value == expect_string, f"{where}string {val.value!r} != {expect_string!r}"
            elif expect_range is not None:
                _compare_matrix(val, series, expect_range, raw=True)
            else:
                _compare_instant(val, scalar, series, ordered, where)
        if expect_string is not None or expect_range is not None:
            return
        if not ordered and not _NO_RANGE_CHECK.search(query):
            r2 = self.engine.range(query, t - 60_000, t + 60_000, 60_000)
            _compare_instant(
                _middle(r2.value, t, isinstance(res.value, Scalar)), scalar, series, False, "range-mode: "
            )


def _selectors(node):
    kind = type(node).__name__
    if kind == "VectorSelector":
        yield node
    elif kind == "MatrixSelector":
        yield node.vector_selector
    for attr in ("expr", "lhs", "rhs", "param"):
        child = getattr(node, attr, None)
        if child is not None and not isinstance(child, (str, float, int)):
            yield from _selectors(child)
    for a in getattr(node, "args", None) or []:
        yield from _selectors(a)


def _check_annotations(kind: str, got: list[str], want: list[tuple[str, str]], forbidden: bool) -> None:
    if forbidden:
        assert not got, f"unexpected {kind} annotations: {got}"
    if not want:
        return
    assert got, f"expected a {kind} annotation"

    def match(text: str, rule: tuple[str, str]) -> bool:
        mode, pat = rule
        return mode == "any" or (text == pat if mode == "msg" else re.search(pat, text) is not None)

    for text in got:
        assert any(match(text, r) for r in want), f"{kind} annotation {text!r} not expected"
    for r in want:
        assert any(match(text, r) for text in got), f"expected {kind} annotation {r[1]!r}, got {got}"


def _middle(m: Matrix, t: int, scalar: bool):
    if scalar:
        for s in m.series:
            idx = np.nonzero(s.t == t)[0]
            if len(idx):
                return Scalar(t, float(s.v[idx[0]]))
        return Vector([])
    from kms.metrics.promql.values import Sample

    out = []
    for s in m.series:
        idx = np.nonzero(s.t == t)[0]
        if len(idx):
            out.append(Sample(s.labels, t, float(s.v[idx[0]])))
        out += [Sample(s.labels, t, math.nan, h) for ht, h in s.histograms if ht == t]
    return Vector(out)


def _same(got, want) -> bool:
    """A float or native histogram result equals the expected one."""
    if isinstance(want, FloatHistogram) or isinstance(got, FloatHistogram):
        return (
            isinstance(want, FloatHistogram)
            and isinstance(got, FloatHistogram)
            and want.same_as(got, _almost_equal)
        )
    return _almost_equal(got, want)


def _show(v) -> str:
    return v.test_expression() if isinstance(v, FloatHistogram) else str(v)


def _compare_instant(val, scalar, series, ordered, prefix="") -> None:
    if scalar is not None:
        assert isinstance(val, Scalar), f"{prefix}expected scalar, got {val.type}"
        assert _almost_equal(val.value, scalar), f"{prefix}scalar {val.value} != {scalar}"
        return
    assert isinstance(val, Vector), f"{prefix}expected vector, got {val.type}"
    exp = {}
    for labels, vals in series:
        assert len(vals) == 1, f"{prefix}instant result line needs exactly one value"
        exp[label_key(labels)] = vals[0]
    got = {label_key(s.labels): s.value if s.histogram is None else s.histogram for s in val.samples}
    missing = [k for k in exp if k not in got]
    extra = [k for k in got if k not in exp]
    assert not missing and not extra, f"{prefix}missing {missing[:3]} extra {extra[:3]}"
    for k, v in exp.items():
        assert _same(got[k], v), f"{prefix}{dict(k)}: got {_show(got[k])} want {_show(v)}"
    if ordered:
        order = [label_key(s.labels) for s in val.samples]
        assert order == [label_key(lab) for lab, _ in series], f"{prefix}order differs"


def _compare_matrix(val, series, rng, raw: bool = False) -> None:
    assert isinstance(val, Matrix), f"expected matrix, got {val.type}"
    start, end, step = rng
    exp = {}
    for labels, vals in series:
        pts = [(start + i * step, v) for i, v in enumerate(vals) if v is not None]
        if pts:
            exp[label_key(labels)] = pts
    got = {
        label_key(s.labels): sorted(
            list(zip(s.t.tolist(), s.v.tolist(), strict=True)) + list(s.histograms), key=lambda p: p[0]
        )
        for s in val.series
    }
    missing = [k for k in exp if k not in got]
    extra = [k for k in got if k not in exp]
    assert not missing and not extra, f"missing {missing[:3]} extra {extra[:3]}"
    for k, pts in exp.items():
        g = got[k]
        assert len(g) == len(pts), f"{dict(k)}: {len(g)} points, want {len(pts)}: {g[:5]} vs {pts[:5]}"
        for (gt, gv), (et, ev) in zip(g, pts, strict=True):
            assert gt == et and _same(gv, ev), f"{dict(k)}: got ({gt}, {_show(gv)}) want ({et}, {_show(ev)})"


def run_file(path: str | Path) -> FileReport:
    return _Script(Path(path)).run()


if __name__ == "__main__":  # pragma: no cover
    import sys

    for p in sys.argv[1:]:
        rep = run_file(p)
        for c in rep.cases:
            if c.status == "failed":
                print(f"{rep.path}:{c.line}: {c.query}\n    {c.reason}")
        native = [c for c in rep.cases if c.native]
        print(
            f"{rep.path}: passed={rep.count('passed')} failed={rep.count('failed')}"
            f" (native-histogram cases {sum(c.status == 'passed' for c in native)}/{len(native)})"
        )
