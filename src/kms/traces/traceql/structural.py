"""Structural spanset operators (``>``, ``<``, ``>>``, ``<<``, ``~`` and ``!``/``&`` forms).

Inputs are (origin, row) pairs of the left and right spansets, where ``origin`` numbers the
input spanset both sides were computed from (one trace); relations only hold within one
origin. As in Tempo, only spans reachable from a root span take part in a relation
(its nested-set model skips the rest), roots are siblings of each other, a span is never
its own sibling, and the result is the right-hand spans for which the relation holds
(``!``: does not hold; ``&``: plus the left-hand spans that take part).
"""

from __future__ import annotations

import numpy as np

from .context import SpanContext
from .statics import Op

__all__ = ["relate"]


def _member(keys: np.ndarray, sorted_keys: np.ndarray) -> np.ndarray:
    if not len(sorted_keys) or not len(keys):
        return np.zeros(len(keys), bool)
    pos = np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)
    return sorted_keys[pos] == keys


class _Side:
    """One side's pairs, with the keys the relations look up."""

    def __init__(self, ctx: SpanContext, origin: np.ndarray, rows: np.ndarray, tree: tuple[np.ndarray, np.ndarray]):
        self.origin, self.rows, self.n = origin, rows, ctx.n
        self.parent = tree[0][rows]
        self.valid = tree[1][rows]

    def key(self, origin: np.ndarray, rows: np.ndarray) -> np.ndarray:
        return origin * self.n + rows

    def own_keys(self) -> np.ndarray:
        return np.unique(self.key(self.origin[self.valid], self.rows[self.valid]))

    def parent_keys(self) -> np.ndarray:
        ok = self.valid & (self.parent >= 0)
        return np.unique(self.key(self.origin[ok], self.parent[ok]))

    def ancestor_keys(self, parent: np.ndarray) -> np.ndarray:
        out = []
        o, a = self.origin[self.valid], self.parent[self.valid]
        while len(a):
            ok = a >= 0
            o, a = o[ok], a[ok]
            out.append(self.key(o, a))
            a = parent[a]
        return np.unique(np.concatenate(out)) if out else np.zeros(0, np.int64)

    def sibling_groups(self) -> tuple[np.ndarray, np.ndarray]:
        g = self.origin[self.valid] * (self.n + 1) + self.parent[self.valid] + 1
        return np.unique(g, return_counts=True)


def _has_parent_in(x: _Side, y: _Side) -> np.ndarray:
    ok = x.valid & (x.parent >= 0)
    return ok & _member(x.key(x.origin, np.maximum(x.parent, 0)), y.own_keys())


def _has_child_in(x: _Side, y: _Side) -> np.ndarray:
    return x.valid & _member(x.key(x.origin, x.rows), y.parent_keys())


def _has_ancestor_in(x: _Side, y: _Side, parent: np.ndarray) -> np.ndarray:
    res = np.zeros(len(x.rows), bool)
    targets = y.own_keys()
    idx = np.flatnonzero(x.valid)
    a = x.parent[idx]
    while len(idx):
        ok = a >= 0
        idx, a = idx[ok], a[ok]
        hit = _member(x.key(x.origin[idx], a), targets)
        res[idx[hit]] = True
        idx, a = idx[~hit], parent[a[~hit]]
    return res


def _has_descendant_in(x: _Side, y: _Side, parent: np.ndarray) -> np.ndarray:
    return x.valid & _member(x.key(x.origin, x.rows), y.ancestor_keys(parent))


def _has_sibling_in(x: _Side, y: _Side) -> np.ndarray:
    groups, counts = y.sibling_groups()
    g = x.origin * (x.n + 1) + x.parent + 1
    pos = np.minimum(np.searchsorted(groups, g), max(len(groups) - 1, 0))
    found = (groups[pos] == g) if len(groups) else np.zeros(len(g), bool)
    cnt = np.where(found, counts[pos] if len(counts) else 0, 0)
    self_in = _member(x.key(x.origin, x.rows), y.own_keys())
    return x.valid & (cnt - self_in > 0)


def relate(ctx: SpanContext, op: Op, lo: np.ndarray, lr: np.ndarray, ro: np.ndarray,
           rr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The (origin, row) pairs a structural operator returns, sorted, without duplicates."""
    tree = ctx.tree(np.unique(ctx.tix[np.concatenate([lr, rr])]))
    L, R = _Side(ctx, lo, lr, tree), _Side(ctx, ro, rr, tree)
    parent = tree[0]
    if op in (Op.SS_CHILD, Op.SS_NOT_CHILD, Op.SS_U_CHILD):
        r_hit = _has_parent_in(R, L)
        l_hit = _has_child_in(L, R) if op is Op.SS_U_CHILD else None
    elif op in (Op.SS_PARENT, Op.SS_NOT_PARENT, Op.SS_U_PARENT):
        r_hit = _has_child_in(R, L)
        l_hit = _has_parent_in(L, R) if op is Op.SS_U_PARENT else None
    elif op in (Op.SS_DESC, Op.SS_NOT_DESC, Op.SS_U_DESC):
        r_hit = _has_ancestor_in(R, L, parent)
        l_hit = _has_descendant_in(L, R, parent) if op is Op.SS_U_DESC else None
    elif op in (Op.SS_ANCE, Op.SS_NOT_ANCE, Op.SS_U_ANCE):
        r_hit = _has_descendant_in(R, L, parent)
        l_hit = _has_ancestor_in(L, R, parent) if op is Op.SS_U_ANCE else None
    elif op in (Op.SS_SIBL, Op.SS_NOT_SIBL, Op.SS_U_SIBL):
        r_hit = _has_sibling_in(R, L)
        l_hit = _has_sibling_in(L, R) if op is Op.SS_U_SIBL else None
    else:
        raise RuntimeError(f"BUG: not a structural operator: {op}")
    if op in (Op.SS_NOT_CHILD, Op.SS_NOT_PARENT, Op.SS_NOT_DESC, Op.SS_NOT_ANCE, Op.SS_NOT_SIBL):
        r_hit = ~r_hit
    origins, rows = ro[r_hit], rr[r_hit]
    if l_hit is not None:
        origins, rows = np.concatenate([origins, lo[l_hit]]), np.concatenate([rows, lr[l_hit]])
    keys = np.unique(origins * ctx.n + rows)
    return keys // max(ctx.n, 1), keys % max(ctx.n, 1)
