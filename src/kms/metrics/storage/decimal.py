"""Sample values as scaled integers where that is exact: ``v == n / 10**k`` bit for bit.

Exporters print values in decimal (``node_cpu_seconds_total 1234.56``, byte and request counts
as whole numbers), so most samples are such numbers; as float64 their mantissas look random to
a compressor, as integers a series is a run of small deltas (DELTA_BINARY_PACKED then zstd).
``k`` is one per series in a request (the largest any of its values needs), so a series keeps
one scale across its run of rows. A value is kept as float64 when no ``k <= 9`` gives it back
exactly (and for NaN, the staleness marker, infinities and -0.0).

Exact: ``n`` and ``10**k`` are exact doubles (``|n| < 2**53``, ``k <= 22``) and IEEE division is
correctly rounded, so ``n / 10**k`` is the double nearest the rational n/10^k; every ``n`` is
checked by dividing back and comparing bits before it is used.
"""

from __future__ import annotations

import numpy as np

__all__ = ["to_decimal", "from_decimal", "MAX_SCALE"]

MAX_SCALE = 9
_POW = 10.0 ** np.arange(MAX_SCALE + 1)
_LIMIT = float(2**53)


def _exact(v: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(ok, n)``: where ``n = round(v * 10**k)`` gives ``v`` back bit for bit."""
    p = _POW[k]
    with np.errstate(invalid="ignore", over="ignore"):
        n = np.round(v * p)
        ok = np.isfinite(n) & (np.abs(n) < _LIMIT)
        n = np.where(ok, n, 0.0).astype(np.int64)  # as stored: -0.0 becomes 0 and fails below
        ok &= (n / p).view(np.uint64) == v.view(np.uint64)
    return ok, n


def to_decimal(values: np.ndarray, group: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(is_int, ints, scale)`` per value: ``values[i] == ints[i] / 10**scale[i]`` exactly where
    ``is_int[i]``; ``scale`` is shared by the values of one ``group`` (a series)."""
    v = np.asarray(values, dtype=np.float64)
    need = np.full(len(v), -1, np.int8)  # smallest scale per value, -1: none
    ints = np.zeros(len(v), np.int64)  # v * 10**need, where need >= 0
    todo = np.arange(len(v))
    for k in range(MAX_SCALE + 1):
        if not len(todo):
            break
        ok, n = _exact(v[todo], np.full(len(todo), k))
        need[todo[ok]] = k
        ints[todo[ok]] = n[ok]
        todo = todo[~ok]
    per_group = np.zeros(n_groups, np.int8)
    np.maximum.at(per_group, group, need)
    scale = per_group[group]
    ok = need >= 0
    # only values whose series needs a larger scale than they do are scaled (and checked) again;
    # one sample a series (a scrape) never is
    redo = np.flatnonzero(ok & (scale != need))
    if len(redo):
        ok2, n2 = _exact(v[redo], scale[redo])
        ok[redo] = ok2
        ints[redo] = n2
    return ok, np.where(ok, ints, 0), np.where(ok, scale, 0).astype(np.int8)


def from_decimal(is_int: np.ndarray, ints: np.ndarray, scale: np.ndarray, floats: np.ndarray) -> np.ndarray:
    """The float64 values back: ``ints / 10**scale`` where ``is_int``, else ``floats`` (bits kept)."""
    out = np.array(floats, dtype=np.float64, copy=True)
    if is_int.any():
        out[is_int] = ints[is_int] / _POW[scale[is_int]]
    return out
