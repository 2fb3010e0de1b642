"""Attribute values of a span table as label strings, vectorised (``kms.traces.attributes``).

A lookup answers, for every row asked for, an int code into a list of strings (-1: absent).
Values are stringified as Tempo does for labels: strings as they are, ints in decimal, floats
shortest, booleans ``true``/``false``, anything else as its ``repr``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kms.traces.attributes import SpanAttributes, TypedColumn

__all__ = ["Coded", "Sparse", "attribute_codes", "resource_then_span", "decode"]

Coded = tuple[np.ndarray, list[str]]  # (code per row, -1 when absent; distinct-ish strings)


def _float_text(v: float) -> str:
    return np.format_float_positional(v, trim="-") if np.isfinite(v) else repr(v)


def attribute_codes(col: TypedColumn) -> Coded:
    """Codes and strings of one typed column."""
    codes = np.full(col.n, -1, np.int64)
    values: list[str] = []
    if col.strings is not None:
        mask, c, dictionary = col.strings
        codes[mask] = c[mask].astype(np.int64)
        values = dictionary.to_pylist() if isinstance(dictionary, pa.Array) else list(dictionary)
    for part, fmt in ((col.ints, str), (col.floats, _float_text), (col.bools, lambda b: "true" if b else "false")):
        if part is None or not part[0].any():
            continue
        mask, vals = part
        uniq, inv = np.unique(vals[mask], return_inverse=True)
        codes[mask] = inv + len(values)
        values += [fmt(x) for x in uniq.tolist()]
    for pos, v in col.other.items():
        codes[pos] = len(values)
        values.append(repr(v))
    return codes, values


def resource_then_span(table: pa.Table, key: str, rows: np.ndarray | None = None) -> Coded:
    """``key`` looked up in the resource first, then in the span (Tempo's order)."""
    sa = SpanAttributes.for_table(table)
    rc, rv = attribute_codes(sa.resource(key, rows))
    if (rc >= 0).all():
        return rc, rv
    sc, sv = attribute_codes(sa.span(key, rows))
    return np.where(rc >= 0, rc, np.where(sc >= 0, sc + len(rv), -1)), rv + sv


def decode(coded: Coded) -> list[str]:
    """One string per row ("" when absent): for the few rows a Python loop must see."""
    codes, values = coded
    table = values + [""]
    return [table[c] for c in codes.tolist()]


class Sparse:
    """Span attributes most rows lack, for several keys at once: one regular-expression pass over
    the raw ``attrs`` finds the rows that may hold any of the keys, and only those rows are
    decoded (vectorised). Values come back as string arrays ("" where absent)."""

    def __init__(self, table: pa.Table, keys: Sequence[str], rows: np.ndarray | None = None):
        """Values for ``rows`` of ``table`` (all rows when None), in that order."""
        self.table = table
        self.of_rows = rows
        self.n = table.num_rows if rows is None else len(rows)
        pattern = "|".join(re.escape(k) for k in sorted(set(keys)))
        hit = pc.match_substring_regex(table.column("attrs"), pattern).to_numpy(zero_copy_only=False)
        if rows is not None:
            hit = hit[rows]
        self.rows = np.flatnonzero(hit)  # positions (among the rows asked for) that may hold a key
        picked = self.rows if rows is None else rows[self.rows]
        self._sub = table.select(["resource", "attrs"]).take(pa.array(picked)) if len(picked) else None
        self._cache: dict[str, pa.Array] = {}

    def span(self, key: str) -> pa.Array:
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        if self._sub is None:
            out = pa.array([""], pa.string()).take(pa.array(np.zeros(self.n, np.int64)))
        else:
            codes, values = attribute_codes(SpanAttributes.for_table(self._sub).span(key))
            full = np.full(self.n, len(values), np.int64)
            full[self.rows] = np.where(codes >= 0, codes, len(values))
            out = pa.array(values + [""], pa.string()).take(pa.array(full))
        self._cache[key] = out
        return out

    def resource_then_span(self, key: str) -> pa.Array:
        sa = SpanAttributes.for_table(self.table)
        _, entries = sa.resource_entries()
        if not any(key in e for e in entries):  # the usual case: no resource has it
            return self.span(key)
        res = pa.array(decode(attribute_codes(sa.resource(key, self.of_rows))), pa.string())
        return pc.if_else(pc.equal(res, ""), self.span(key), res)
