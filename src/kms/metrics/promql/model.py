"""Data model shared by the PromQL engine and its storage: series, matchers, the source protocol.

Times are int64 milliseconds since the Unix epoch; values are float64. A staleness marker is the
float with Prometheus's StaleNaN bit pattern ``0x7ff0000000000002``; compare bits with
``is_stale``, never with ``==`` (it is a NaN).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

__all__ = [
    "STALE_NAN",
    "STALE_NAN_BITS",
    "is_stale",
    "Matcher",
    "Series",
    "SeriesSource",
    "MemorySeriesSource",
]

STALE_NAN_BITS = 0x7FF0000000000002
STALE_NAN: float = float(np.array([STALE_NAN_BITS], dtype=np.uint64).view(np.float64)[0])


def is_stale(v: np.ndarray) -> np.ndarray:
    """Boolean mask of staleness markers in a float64 array (bitwise comparison)."""
    return np.asarray(v, dtype=np.float64).view(np.uint64) == np.uint64(STALE_NAN_BITS)


def _scope_inline_flags(rx: str) -> str:
    """RE2 allows ``(?i)`` mid-pattern (applies to the rest of the group); Python needs ``(?i:...)``."""
    out: list[str] = []
    closers: list[int] = []  # per open group: how many scoped flag groups to close at its end
    i, n, in_class = 0, len(rx), False
    opened = 0
    while i < n:
        c = rx[i]
        if c == "\\":
            out.append(rx[i : i + 2])
            i += 2
            continue
        if in_class:
            in_class = c != "]"
            out.append(c)
        elif c == "[":
            in_class = True
            out.append(c)
            if i + 1 < n and rx[i + 1] == "]":
                out.append("]")
                i += 1
        elif c == "(":
            m = re.match(r"\(\?([a-zA-Z]+)\)", rx[i:])
            if m and (out or closers):
                out.append(f"(?{m.group(1)}:")
                if closers:
                    closers[-1] += 1
                else:
                    opened += 1
                i += m.end()
                continue
            closers.append(0)
            out.append(c)
        elif c == ")":
            k = closers.pop() if closers else 0
            out.append(")" * k + ")")
        else:
            out.append(c)
        i += 1
    return "".join(out) + ")" * opened


def compile_go_regex(rx: str) -> re.Pattern:
    return re.compile(_scope_inline_flags(rx), re.DOTALL)


@dataclass(frozen=True)
class Matcher:
    """A label matcher; ``op`` is one of ``=``, ``!=``, ``=~``, ``!~``. Regexes are fully anchored."""

    name: str
    op: str
    value: str
    _rx: re.Pattern | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.op in ("=~", "!~"):
            object.__setattr__(self, "_rx", compile_go_regex(self.value))
        elif self.op not in ("=", "!="):
            raise ValueError(f"unknown matcher op {self.op!r}")

    def matches(self, value: str) -> bool:
        if self.op == "=":
            return value == self.value
        if self.op == "!=":
            return value != self.value
        hit = self._rx.fullmatch(value) is not None  # type: ignore[union-attr]
        return hit if self.op == "=~" else not hit


@dataclass
class Series:
    """One series: ``labels`` (incl. ``__name__``), ``t`` int64 ms and ``v`` float64, sorted by ``t``.

    ``h`` is None for a float-only series; otherwise an object array aligned with ``t`` holding a
    native histogram (``nativehist.FloatHistogram``) where the sample is one (its ``v`` is NaN)
    and None where it is a float. ``st`` is None or the samples' start (created) timestamps in
    ms aligned with ``t``, 0 where unknown.
    """

    labels: dict[str, str]
    t: np.ndarray
    v: np.ndarray
    h: np.ndarray | None = None
    st: np.ndarray | None = None


class SeriesSource(Protocol):
    def select(self, matchers: list[Matcher], start_ms: int, end_ms: int) -> list[Series]:
        """Series matching all matchers, with samples in ``[start_ms, end_ms]`` (both inclusive).

        A missing label matches as the empty string. Series with no samples in range may be omitted.
        """
        ...


class MemorySeriesSource:
    """In-memory ``SeriesSource`` for tests, the conformance runner and benchmarks. Samples are
    appended per series and sorted on first read; a later write at the same timestamp wins.
    Not thread-safe."""

    def __init__(self) -> None:
        # key -> (labels, [t chunks], [v chunks]); single samples are buffered as 1-element lists.
        self._series: dict[tuple, tuple[dict[str, str], list, list]] = {}
        self._frozen: dict[tuple, Series] = {}
        self._hists: dict[tuple, dict[int, object]] = {}  # key -> {t: histogram}
        self._starts: dict[tuple, dict[int, int]] = {}  # key -> {t: start timestamp}

    def _entry(self, labels: dict[str, str]):
        key = tuple(sorted(labels.items()))
        entry = self._series.get(key)
        if entry is None:
            entry = self._series[key] = (dict(labels), [], [])
        self._frozen.pop(key, None)
        return entry

    def add(self, labels: dict[str, str], t_ms: int, value: float) -> None:
        _, ts, vs = self._entry(labels)
        ts.append([int(t_ms)])
        vs.append([float(value)])

    def add_histogram(self, labels: dict[str, str], t_ms: int, h) -> None:
        """A native-histogram sample (a later write at the same timestamp wins)."""
        _, ts, vs = self._entry(labels)
        ts.append([int(t_ms)])
        vs.append([math.nan])
        self._hists.setdefault(tuple(sorted(labels.items())), {})[int(t_ms)] = h

    def add_start_timestamp(self, labels: dict[str, str], t_ms: int, st_ms: int) -> None:
        """The start (created) timestamp of the sample at ``t_ms``."""
        key = tuple(sorted(labels.items()))
        self._starts.setdefault(key, {})[int(t_ms)] = int(st_ms)
        self._frozen.pop(key, None)

    def add_series(self, labels: dict[str, str], t_ms, values) -> None:
        """Bulk append: ``t_ms`` int64 ms and ``values`` float64, equal length."""
        t = np.asarray(t_ms, dtype=np.int64)
        v = np.asarray(values, dtype=np.float64)
        if t.shape != v.shape:
            raise ValueError("t_ms and values differ in length")
        _, ts, vs = self._entry(labels)
        ts.append(t)
        vs.append(v)

    def clear(self) -> None:
        self._series.clear()
        self._frozen.clear()
        self._hists.clear()
        self._starts.clear()

    def _get(self, key: tuple) -> Series:
        s = self._frozen.get(key)
        if s is None:
            labels, ts, vs = self._series[key]
            t = np.concatenate([np.asarray(x, dtype=np.int64) for x in ts])
            v = np.concatenate([np.asarray(x, dtype=np.float64) for x in vs])
            if len(t) > 1 and np.any(t[1:] <= t[:-1]):
                order = np.argsort(t, kind="stable")
                t, v = t[order], v[order]
                keep = np.ones(len(t), dtype=bool)
                keep[:-1] = t[1:] != t[:-1]
                t, v = t[keep], v[keep]
            h = None
            hists = self._hists.get(key)
            if hists:
                h = np.empty(len(t), dtype=object)
                h[:] = [hists.get(x) for x in t.tolist()]
                # a float written after a histogram at the same time replaces it
                h[~np.isnan(v)] = None
            starts = self._starts.get(key)
            st = np.array([starts.get(x, 0) for x in t.tolist()], dtype=np.int64) if starts else None
            s = self._frozen[key] = Series(labels, t, v, h, st)
        return s

    def select(self, matchers: list[Matcher], start_ms: int, end_ms: int) -> list[Series]:
        out = []
        for key, (labels, _, _) in self._series.items():
            if all(m.matches(labels.get(m.name, "")) for m in matchers):
                s = self._get(key)
                lo = np.searchsorted(s.t, start_ms, "left")
                hi = np.searchsorted(s.t, end_ms, "right")
                if hi > lo:
                    h = s.h[lo:hi] if s.h is not None else None
                    st = s.st[lo:hi] if s.st is not None else None
                    out.append(Series(s.labels, s.t[lo:hi], s.v[lo:hi], h, st))
        out.sort(key=lambda s: sorted(s.labels.items()))
        return out
