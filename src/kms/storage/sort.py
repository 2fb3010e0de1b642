"""``sort_table``: the rows of a block in ``sort_by`` order, the first step of every block write.

Arrow sorts neither dictionary columns nor, quickly, strings: a cut of 500k samples spent most
of its time casting the ``series`` dictionary to strings and comparing them row by row. Here
each key column becomes int64 codes that order like its values (a dictionary's entries, or a
string column's distinct values, are sorted once and numbered densely, so equal values get
equal codes), and the rows are ordered by the codes with a stable numpy ``lexsort``: the same
order as Arrow's stable ``sort_indices`` on the values (strings compare as UTF-8 bytes in both).
Columns of other types (floats, nested) or with nulls take Arrow's sort.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["sort_table", "dense_ranks"]


def sort_table(table: pa.Table, sort_by: tuple[str, ...]) -> pa.Table:
    """``table`` with its chunks (and dictionaries) combined, rows sorted by ``sort_by`` (stably)."""
    table = table.combine_chunks()
    if not sort_by or table.num_rows < 2:
        return table
    codes = [_codes(table.column(name)) for name in sort_by]
    if any(c is None for c in codes):
        return table.take(_arrow_order(table, sort_by))
    return table.take(pa.array(np.lexsort(codes[::-1])))


def _arrow_order(table: pa.Table, sort_by: tuple[str, ...]) -> pa.Array:
    keys = {}
    for name in sort_by:  # Arrow cannot sort by dictionary columns: sort by their values
        col = table.column(name)
        keys[name] = col.cast(col.type.value_type) if pa.types.is_dictionary(col.type) else col
    return pc.sort_indices(pa.table(keys), sort_keys=[(n, "ascending") for n in sort_by])


def _codes(col: pa.ChunkedArray) -> np.ndarray | None:
    """int64 per row ordering like the column's values, or None where Arrow must sort."""
    if col.null_count or col.num_chunks != 1:
        return None
    arr = col.chunk(0)
    t = arr.type
    if (pa.types.is_integer(t) and not pa.types.is_uint64(t)) or pa.types.is_timestamp(t):
        return arr.to_numpy().astype(np.int64, copy=False)
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t) or pa.types.is_large_binary(t) \
            or pa.types.is_fixed_size_binary(t):
        arr = pc.dictionary_encode(arr)
    elif not pa.types.is_dictionary(arr.type) or arr.dictionary.null_count:
        return None
    dictionary = arr.dictionary
    if not (pa.types.is_string(dictionary.type) or pa.types.is_large_string(dictionary.type)
            or pa.types.is_binary(dictionary.type) or pa.types.is_large_binary(dictionary.type)
            or pa.types.is_fixed_size_binary(dictionary.type)):
        return None
    return dense_ranks(dictionary)[arr.indices.to_numpy(zero_copy_only=False)]


def dense_ranks(values: pa.Array) -> np.ndarray:
    """Per value, its rank among the distinct values (0 = smallest; equal values, equal ranks)."""
    n = len(values)
    if n == 0:
        return np.zeros(0, np.int64)
    order = pc.sort_indices(values)
    ordered = values.take(order)
    step = np.zeros(n, np.int64)
    if n > 1:
        step[1:] = pc.not_equal(ordered.slice(1), ordered.slice(0, n - 1)).to_numpy(zero_copy_only=False)
    ranks = np.empty(n, np.int64)
    ranks[order.to_numpy()] = np.cumsum(step)
    return ranks
