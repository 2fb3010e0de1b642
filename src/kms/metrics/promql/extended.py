"""The experimental ``anchored`` and ``smoothed`` selector modifiers.

promql_parser 0.12 does not know them, so ``mark_modifiers`` rewrites ``x[5m] anchored`` into
``x{__kms_mod__="anchored"}[5m]`` before parsing; the evaluator strips that matcher again and
reads the mode with ``selector_mode``. Semantics follow Prometheus: an anchored window also
takes the last sample up to one lookback before its start, a smoothed one interpolates
linearly at both window ends (and a smoothed instant selector interpolates at the step time).
"""

from __future__ import annotations

import re

import numpy as np

from kms.metrics.promql.values import PromQLError, RangeVec, VSeries

__all__ = [
    "mark_modifiers",
    "selector_mode",
    "check_function",
    "eval_extended",
    "smooth_instant",
    "MOD_LABEL",
]

MOD_LABEL = "__kms_mod__"
ANCHORED_SAFE = ("changes", "delta", "increase", "rate", "resets")
SMOOTHED_SAFE = ("delta", "increase", "rate")

_WORD = re.compile(r"(?<![\w.])(anchored|smoothed)(?![\w])")


def _skip_back_ws(q: str, i: int) -> int:
    while i > 0 and q[i - 1] in " \t\n":
        i -= 1
    return i


def _match_back(q: str, i: int, open_c: str, close_c: str) -> int:
    """``q[i-1]`` is ``close_c``: the index of its matching ``open_c``."""
    depth = 0
    j = i - 1
    while j >= 0:
        if q[j] == close_c:
            depth += 1
        elif q[j] == open_c:
            depth -= 1
            if depth == 0:
                return j
        j -= 1
    raise ValueError("unbalanced")


def _selector_end(q: str, i: int) -> int:
    """From just before a modifier keyword, step back over ``offset``/``@`` clauses and ``[...]``;
    returns the index just past the selector's name or closing brace."""
    for _ in range(3):
        i = _skip_back_ws(q, i)
        if i > 0 and q[i - 1] == "]":
            i = _match_back(q, i, "[", "]")
            continue
        j = i
        if j > 0 and q[j - 1] == ")":
            j = _match_back(q, j, "(", ")")
        while j > 0 and (q[j - 1].isalnum() or q[j - 1] in "._+-"):
            j -= 1
        k = _skip_back_ws(q, j)
        if k >= 6 and q[k - 6 : k].lower() == "offset":
            i = k - 6
            continue
        if k >= 1 and q[k - 1] == "@":
            i = k - 1
            continue
        return i
    return _skip_back_ws(q, i)


def mark_modifiers(q: str) -> str:
    out = q
    for m in reversed(list(_WORD.finditer(q))):
        end = _selector_end(out, m.start())
        mod = m.group(1)
        if end > 0 and out[end - 1] == "}":
            start = _match_back(out, end, "{", "}")
            new = out[: start + 1] + f'{MOD_LABEL}="{mod}", ' + out[start + 1 :]
        else:
            new = out[:end] + f'{{{MOD_LABEL}="{mod}"}}' + out[end:]
        shift = len(new) - len(out)
        out = new[: m.start() + shift] + new[m.end() + shift :]
    return out


def selector_mode(vs) -> str | None:
    for m in vs.matchers.matchers:
        if m.name == MOD_LABEL:
            return m.value
    return None


def check_function(name: str, mode: str | None) -> None:
    if mode == "anchored" and name not in ANCHORED_SAFE:
        raise PromQLError(
            f"anchored modifier can only be used with: {', '.join(ANCHORED_SAFE)} - not with {name}"
        )
    if mode == "smoothed" and name not in SMOOTHED_SAFE:
        raise PromQLError(
            f"smoothed modifier can only be used with: {', '.join(SMOOTHED_SAFE)} - not with {name}"
        )


def _interp(t1, v1, t2, v2, t, is_counter: bool) -> float:
    if is_counter and v2 < v1:
        v1 = 0.0
    return v1 + (v2 - v1) * (t - t1) / (t2 - t1)


def _extended_rate(t, v, start, end, smoothed, is_counter, is_rate, range_s):
    """Prometheus's extendedRate on the samples fetched for one step (already widened)."""
    last = len(t) - 1
    first = max(0, int(np.searchsorted(t[:last], start, "right")) - 1)
    if smoothed:
        last = int(np.searchsorted(t[:last], end, "left"))
    if t[last] <= start:
        return None
    if smoothed and t[first] > end:
        return None
    left = (
        _interp(t[first], v[first], t[first + 1], v[first + 1], start, is_counter)
        if smoothed and t[first] < start
        else v[first]
    )
    right = (
        _interp(t[last - 1], v[last - 1], t[last], v[last], end, is_counter)
        if smoothed and last > 0 and t[last] > end
        else v[last]
    )
    result = right - left
    if is_counter:
        if t[first] <= start:
            first += 1
        if t[last] >= end:
            last -= 1
        prev = left
        for x in v[first : last + 1]:
            if x < prev:
                result += prev
            prev = x
        if right < prev:
            result += prev
    if is_rate:
        result /= range_s
    return float(result)


def _extend_points(t, v, start, end):
    """extendFloats for anchored windows: synthetic points at both window ends."""
    last = len(t) - 1
    first = max(0, int(np.searchsorted(t[:last], start, "right")) - 1)
    if t[last] <= start:
        return None
    left, right = v[first], v[last]
    if t[first] <= start:
        first += 1
    if t[last] >= end:
        last -= 1
    return np.concatenate([[left], v[first : last + 1], [right]])


def eval_extended(name: str, rv: RangeVec) -> list[VSeries]:
    """rate/increase/delta/changes/resets over an anchored or smoothed range vector."""
    smoothed = rv.mode == "smoothed"
    out = []
    n = len(rv.wend)
    for s in rv.series:
        r = np.zeros(n)
        ok = np.zeros(n, dtype=bool)
        for j in range(n):
            lo, hi = s.lo[j], s.hi[j]
            if hi <= lo:
                continue
            t, v = s.t[lo:hi], s.v[lo:hi]
            start, end = int(rv.wstart[j]), int(rv.wend[j])
            if name in ("rate", "increase", "delta"):
                val = _extended_rate(
                    t, v, start, end, smoothed, name != "delta", name == "rate", rv.range_ms / 1000.0
                )
            else:
                pts = _extend_points(t, v, start, end)
                if pts is None:
                    continue
                if name == "resets":
                    val = float(np.sum(pts[1:] < pts[:-1]))
                else:
                    a, b = pts[1:], pts[:-1]
                    val = float(np.sum(~((a == b) | (np.isnan(a) & np.isnan(b)))))
            if val is not None:
                r[j], ok[j] = val, True
        if ok.any():
            out.append(VSeries(s.labels, r, ok, True))
    return out


def smooth_instant(t: np.ndarray, v: np.ndarray, eff: np.ndarray, lb: int):
    """Value of a smoothed instant selector at each time in ``eff``: the exact sample, else linear
    interpolation between neighbours within one lookback each side, else the previous sample."""
    i = np.searchsorted(t, eff, "left")
    n = len(t)
    out = np.zeros(len(eff))
    ok = np.zeros(len(eff), dtype=bool)
    for j, d in enumerate(eff.tolist()):
        lo = int(np.searchsorted(t, d - lb, "right"))
        hi = int(np.searchsorted(t, d + lb, "right"))
        k = int(i[j])
        if hi <= lo:
            continue
        if k < n and k < hi and t[k] == d:
            out[j], ok[j] = v[k], True
        elif lo < k < hi:
            out[j], ok[j] = _interp(t[k - 1], v[k - 1], t[k], v[k], d, False), True
        elif k > lo:
            out[j], ok[j] = v[k - 1], True
    return out, ok
