"""Native histograms as PromQL sees them: float bucket counts keyed by bucket index.

A histogram is exponential (``schema`` -4..8: bucket ``i`` covers ``(2^((i-1)·2^-schema),
2^(i·2^-schema)]``, mirrored for negative observations, plus a zero bucket ``[-zt, zt]``) or has
custom bounds (``schema`` -53, ``custom_values`` are the upper bounds, the last bucket ends at
+Inf). Buckets are kept as ``{index: count}`` dicts: the span layout of the wire formats is an
encoding detail (the query API shows non-empty buckets only), and the dicts make addition across
schemas and zero thresholds plain arithmetic. Semantics follow Prometheus's FloatHistogram.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

__all__ = [
    "CUSTOM_SCHEMA",
    "Bucket",
    "FloatHistogram",
    "IncompatibleSchema",
]

CUSTOM_SCHEMA = -53
_MAX_FLOAT = 1.7976931348623157e308
HINTS = ("unknown", "reset", "not_reset", "gauge")


class IncompatibleSchema(ValueError):
    """Exponential and custom-bucket histograms were combined."""


@dataclass(frozen=True)
class Bucket:
    lower: float
    upper: float
    count: float


def exp_upper(idx: int, schema: int) -> float:
    """Upper bound of exponential bucket ``idx`` (``2^(idx·2^-schema)``, exact for powers of two)."""
    if schema <= 0:
        e = idx << -schema
        frac = 1.0
    else:
        e = idx >> schema
        frac = 2.0 ** ((idx & ((1 << schema) - 1)) / (1 << schema))
    if e == 1024 and frac == 1.0:
        return _MAX_FLOAT  # the last finite bucket; the next one counts ±Inf observations
    if e > 1024:
        return math.inf
    if e < -1100:
        return 0.0
    return math.ldexp(frac, e)


def reduce_buckets(buckets: dict[int, float], from_schema: int, to_schema: int) -> dict[int, float]:
    if from_schema == to_schema:
        return dict(buckets)
    shift = from_schema - to_schema
    out: dict[int, float] = {}
    for i, c in buckets.items():
        j = ((i - 1) >> shift) + 1
        out[j] = out.get(j, 0.0) + c
    return out


def _add_into(dst: dict[int, float], src: dict[int, float], sign: float) -> None:
    for i, c in src.items():
        dst[i] = dst.get(i, 0.0) + sign * c


def _map_custom(buckets: dict[int, float], bounds: tuple[float, ...], to: tuple[float, ...]):
    """Counts of custom-bound buckets moved into the coarser bounds ``to`` (a subset of ``bounds``)."""
    out: dict[int, float] = {}
    for i, c in buckets.items():
        upper = bounds[i] if i < len(bounds) else math.inf
        j = next((k for k, b in enumerate(to) if b >= upper), len(to))
        out[j] = out.get(j, 0.0) + c
    return out


@dataclass
class FloatHistogram:
    schema: int = 0
    zero_threshold: float = 0.0
    zero_count: float = 0.0
    count: float = 0.0
    sum: float = 0.0
    pos: dict[int, float] = field(default_factory=dict)
    neg: dict[int, float] = field(default_factory=dict)
    custom_values: tuple[float, ...] = ()
    hint: str = "unknown"  # one of HINTS

    # -- basics --
    @property
    def custom(self) -> bool:
        return self.schema == CUSTOM_SCHEMA

    def copy(self) -> FloatHistogram:
        return FloatHistogram(
            self.schema,
            self.zero_threshold,
            self.zero_count,
            self.count,
            self.sum,
            dict(self.pos),
            dict(self.neg),
            self.custom_values,
            self.hint,
        )

    def upper(self, idx: int) -> float:
        if self.custom:
            return self.custom_values[idx] if idx < len(self.custom_values) else math.inf
        return exp_upper(idx, self.schema)

    def lower(self, idx: int) -> float:
        if self.custom:
            return self.custom_values[idx - 1] if idx > 0 else -math.inf
        return exp_upper(idx - 1, self.schema)

    def buckets(self) -> Iterator[Bucket]:
        """All non-empty buckets from the lowest to the highest, the zero bucket between."""
        zt = self.zero_threshold
        for i in sorted(self.neg, reverse=True):
            c = self.neg[i]
            if c == 0:
                continue
            lo, up = -self.upper(i), -self.lower(i)
            if -zt < up < 0:
                up = -zt
            yield Bucket(lo, up, c)
        if self.zero_count > 0:
            yield Bucket(-zt, zt, self.zero_count)
        for i in sorted(self.pos):
            c = self.pos[i]
            if c == 0:
                continue
            lo, up = self.lower(i), self.upper(i)
            if 0 < lo < zt:
                lo = zt
            yield Bucket(lo, up, c)

    def has_pos(self) -> bool:
        return any(c != 0 for c in self.pos.values())

    def has_neg(self) -> bool:
        return any(c != 0 for c in self.neg.values())

    # -- arithmetic (in place, returning self) --
    def scale(self, f: float) -> FloatHistogram:
        self.zero_count *= f
        self.count *= f
        self.sum *= f
        self.pos = {i: c * f for i, c in self.pos.items()}
        self.neg = {i: c * f for i, c in self.neg.items()}
        if f < 0:
            self.hint = "gauge"
        return self

    def div(self, d: float) -> FloatHistogram:
        self.zero_count = _div(self.zero_count, d)
        self.count = _div(self.count, d)
        self.sum = _div(self.sum, d)
        if d == 0:  # Prometheus drops the buckets rather than making every one NaN/Inf
            self.pos, self.neg = {}, {}
        else:
            self.pos = {i: c / d for i, c in self.pos.items()}
            self.neg = {i: c / d for i, c in self.neg.items()}
        if d < 0:
            self.hint = "gauge"
        return self

    def to_schema(self, schema: int) -> FloatHistogram:
        h = self.copy()
        if not h.custom and schema < h.schema:
            h.pos = reduce_buckets(h.pos, h.schema, schema)
            h.neg = reduce_buckets(h.neg, h.schema, schema)
            h.schema = schema
        return h

    def _adjust_hint(self, other: FloatHistogram) -> bool:
        a, b = self.hint, other.hint
        if a == b or a == "gauge":
            return False
        if b == "gauge":
            self.hint = "gauge"
        elif a == "unknown":
            pass
        elif b == "unknown":
            self.hint = "unknown"
        else:  # reset meets not_reset
            self.hint = "unknown"
            return True
        return False

    def zero_count_for(self, threshold: float) -> tuple[float, float]:
        """(zero count, threshold) once every bucket reaching below ``threshold`` is merged into
        the zero bucket; the threshold grows to a merged bucket's upper bound when it cuts one."""
        if threshold <= self.zero_threshold:
            return self.zero_count, self.zero_threshold
        while True:
            zc, new = self.zero_count, threshold
            for i in sorted(self.pos):
                if self.lower(i) >= threshold:
                    break
                zc += self.pos[i]
                if self.upper(i) > threshold:
                    if self.pos[i] != 0:
                        new = self.upper(i)
                    break
            for i in sorted(self.neg):
                if self.lower(i) >= threshold:
                    break
                zc += self.neg[i]
                if self.upper(i) > threshold:
                    if self.neg[i] != 0:
                        new = max(new, self.upper(i))
                    break
            if new == threshold:
                return zc, threshold
            threshold = new

    def _widen_zero(self, threshold: float) -> None:
        zc, t = self.zero_count_for(threshold)
        self.zero_count, self.zero_threshold = zc, t
        self.pos = {i: c for i, c in self.pos.items() if self.lower(i) >= t}
        self.neg = {i: c for i, c in self.neg.items() if self.lower(i) >= t}

    def _combine(self, other: FloatHistogram, sign: float) -> tuple[bool, bool]:
        """``self += sign * other``; returns (counter-reset hints collided, custom bounds reconciled)."""
        if self.custom != other.custom:
            raise IncompatibleSchema("histograms with exponential and custom bucket schemas")
        collision = self._adjust_hint(other)
        reconciled = False
        self.count += sign * other.count
        self.sum += sign * other.sum
        if self.custom:
            if self.custom_values == other.custom_values:
                _add_into(self.pos, other.pos, sign)
            else:
                reconciled = True
                common = tuple(sorted(set(self.custom_values) & set(other.custom_values)))
                mine = _map_custom(self.pos, self.custom_values, common)
                _add_into(mine, _map_custom(other.pos, other.custom_values, common), sign)
                self.pos, self.custom_values = mine, common
            return collision, reconciled
        if other.zero_threshold > self.zero_threshold:
            self._widen_zero(other.zero_threshold)
        ozc, ot = other.zero_count_for(self.zero_threshold)
        while ot > self.zero_threshold:  # the other's buckets pushed the threshold further
            self._widen_zero(ot)
            ozc, ot = other.zero_count_for(self.zero_threshold)
        self.zero_count += sign * ozc
        if other.zero_threshold == self.zero_threshold:  # nothing of the other moved into zero
            opos, oneg = other.pos, other.neg
        else:
            opos = {i: c for i, c in other.pos.items() if other.lower(i) >= self.zero_threshold}
            oneg = {i: c for i, c in other.neg.items() if other.lower(i) >= self.zero_threshold}
        schema = min(self.schema, other.schema)
        self.pos = reduce_buckets(self.pos, self.schema, schema)
        self.neg = reduce_buckets(self.neg, self.schema, schema)
        _add_into(self.pos, reduce_buckets(opos, other.schema, schema), sign)
        _add_into(self.neg, reduce_buckets(oneg, other.schema, schema), sign)
        self.schema = schema
        return collision, reconciled

    def add(self, other: FloatHistogram) -> tuple[bool, bool]:
        return self._combine(other, 1.0)

    def sub(self, other: FloatHistogram) -> tuple[bool, bool]:
        return self._combine(other, -1.0)

    def compact(self) -> FloatHistogram:
        self.pos = {i: c for i, c in self.pos.items() if c != 0}
        self.neg = {i: c for i, c in self.neg.items() if c != 0}
        return self

    # -- counters --
    def detect_reset(self, prev: FloatHistogram) -> bool:
        """True if this histogram, following ``prev``, starts a new counter (Prometheus's rules)."""
        if self.hint == "reset":
            return True
        if self.hint == "not_reset":
            return False
        if self.count < prev.count:
            return True
        if self.custom or prev.custom:
            if self.custom != prev.custom:
                return True
            if self.custom_values != prev.custom_values:
                common = tuple(sorted(set(self.custom_values) & set(prev.custom_values)))
                a = _map_custom(self.pos, self.custom_values, common)
                b = _map_custom(prev.pos, prev.custom_values, common)
                return any(a.get(i, 0.0) < c for i, c in b.items())
            return any(self.pos.get(i, 0.0) < c for i, c in prev.pos.items())
        if self.schema > prev.schema or self.zero_threshold < prev.zero_threshold:
            return True
        pzc, t = prev.zero_count_for(self.zero_threshold)
        if t != self.zero_threshold or self.zero_count < pzc:
            return True
        same_layout = prev.zero_threshold == self.zero_threshold and prev.schema == self.schema
        for mine, theirs in ((self.pos, prev.pos), (self.neg, prev.neg)):
            if not same_layout:  # the common case (one layout for a whole series) skips this
                kept = {i: c for i, c in theirs.items() if prev.lower(i) >= self.zero_threshold}
                theirs = reduce_buckets(kept, prev.schema, self.schema)
            get = mine.get
            if any(get(i, 0.0) < c for i, c in theirs.items()):
                return True
        return False

    # -- equality for tests --
    def same_as(self, other: FloatHistogram, close) -> bool:
        """Equal as the query API shows them: schema, count, sum, zero bucket, custom bounds and
        every non-empty bucket (``close(a, b)`` compares floats)."""
        if self.schema != other.schema or not close(self.count, other.count):
            return False
        if not close(self.sum, other.sum):
            return False
        if self.custom and tuple(self.custom_values) != tuple(other.custom_values):
            return False
        if self.zero_threshold != other.zero_threshold or not close(self.zero_count, other.zero_count):
            return False
        for a, b in ((self.pos, other.pos), (self.neg, other.neg)):
            keys = {i for i, c in a.items() if c != 0} | {i for i, c in b.items() if c != 0}
            if any(not close(a.get(i, 0.0), b.get(i, 0.0)) for i in keys):
                return False
        return True

    def __str__(self) -> str:
        """Prometheus's ``FloatHistogram.String()`` (count_values uses it as a label value)."""
        parts = [f"{{count:{_g(self.count)}, sum:{_g(self.sum)}"]
        for i in sorted(self.neg, reverse=True):
            if self.neg[i]:
                parts.append(f"[{_g(-self.upper(i))},{_g(-self.lower(i))}):{_g(self.neg[i])}")
        if self.zero_count:
            zt = self.zero_threshold
            parts.append(f"[{_g(-zt)},{_g(zt)}]:{_g(self.zero_count)}")
        for i in sorted(self.pos):
            if self.pos[i]:
                parts.append(f"({_g(self.lower(i))},{_g(self.upper(i))}]:{_g(self.pos[i])}")
        return ", ".join(parts) + "}"

    def test_expression(self) -> str:
        """The ``{{...}}`` notation of Prometheus's test scripts."""
        parts = []
        if self.schema != 0:
            parts.append(f"schema:{self.schema}")
        if self.count != 0:
            parts.append(f"count:{_g(self.count)}")
        if self.sum != 0:
            parts.append(f"sum:{_g(self.sum)}")
        if self.zero_count != 0:
            parts.append(f"z_bucket:{_g(self.zero_count)}")
        if self.zero_threshold != 0:
            parts.append(f"z_bucket_w:{_g(self.zero_threshold)}")
        if self.custom:
            parts.append("custom_values:[" + " ".join(_g(v) for v in self.custom_values) + "]")
        for name, off, b in (("buckets", "offset", self.pos), ("n_buckets", "n_offset", self.neg)):
            keys = [i for i, c in b.items() if c != 0]
            if keys:
                lo, hi = min(keys), max(keys)
                if lo != 0:
                    parts.append(f"{off}:{lo}")
                parts.append(f"{name}:[" + " ".join(_g(b.get(i, 0.0)) for i in range(lo, hi + 1)) + "]")
        if self.hint != "unknown":
            parts.append(f"counter_reset_hint:{self.hint}")
        return "{{" + " ".join(parts) + "}}"


def _div(a: float, b: float) -> float:
    try:
        return a / b
    except ZeroDivisionError:
        if a == 0 or math.isnan(a):
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1.0, b)


def _g(f: float) -> str:
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    if f == int(f) and abs(f) < 1e21:
        return str(int(f)) if f or math.copysign(1.0, f) > 0 else "-0"
    return repr(f)


def _exact_sum(xs: list[float], n: int) -> float:
    """Correctly rounded sum (Prometheus compensates with Kahan summation); the mean when ``n``
    > 1, divided first if the sum overflows (Prometheus's incremental mean)."""
    try:
        total = math.fsum(xs)
    except (OverflowError, ValueError):
        total = sum(xs)
    if n <= 1:
        return total
    if math.isinf(total) and all(math.isfinite(x) for x in xs):
        return math.fsum(x / n for x in xs)
    return total / n


def sum_histograms(hs: list[FloatHistogram], mean: bool = False) -> tuple[FloatHistogram, bool]:
    """The sum (or mean) of histograms, every field summed exactly; returns (result, custom
    bounds were reconciled). Raises ``IncompatibleSchema`` for exponential mixed with custom."""
    first = hs[0]
    if len(hs) > 1 and all(
        h.schema == first.schema and h.zero_threshold == first.zero_threshold and h.custom_values == first.custom_values
        for h in hs
    ):  # one layout (the usual case): the fields add up as they are
        acc, reconciled, aligned = first.copy(), False, hs
        for h in hs[1:]:
            acc._adjust_hint(h)
    else:
        acc = first.copy()
        reconciled = False
        for h in hs[1:]:
            reconciled |= acc.add(h)[1]
        if len(hs) == 1:
            return acc, reconciled
        aligned = []
        for h in hs:  # each histogram laid out on the result's schema, zero bucket and bounds
            z = FloatHistogram(acc.schema, acc.zero_threshold, custom_values=acc.custom_values)
            z.add(h)
            aligned.append(z)
    n = len(hs) if mean else 1
    acc.count = _exact_sum([z.count for z in aligned], n)
    acc.sum = _exact_sum([z.sum for z in aligned], n)
    acc.zero_count = _exact_sum([z.zero_count for z in aligned], n)
    for attr in ("pos", "neg"):
        keys = sorted(set().union(*(getattr(z, attr) for z in aligned)))
        setattr(acc, attr, {i: _exact_sum([getattr(z, attr).get(i, 0.0) for z in aligned], n) for i in keys})
    return acc, reconciled
