"""``Strings.take`` gives what Arrow's ``take`` gives, over chunks, slices, empty and
multi-byte values; ``Strings.lines`` the same values each followed by a newline."""

from __future__ import annotations

import random

import numpy as np
import pyarrow as pa
import pytest

from kms.logs.bytecopy import Strings


def _values(rnd: random.Random, n: int) -> list[str]:
    return [rnd.choice(["", "x", "é" * rnd.randrange(1, 50), "line " * rnd.randrange(1, 40)]) + str(i) * rnd.randrange(2)
            for i in range(n)]


@pytest.mark.parametrize("seed", range(3))
def test_take_matches_arrow(seed):
    rnd = random.Random(seed)
    chunks = [pa.array(_values(rnd, rnd.randrange(0, 300)), pa.string()) for _ in range(7)]
    chunks[2] = chunks[2].slice(5, max(0, len(chunks[2]) - 20))  # a chunk with an offset
    col = pa.chunked_array(chunks, pa.string())
    order = np.random.default_rng(seed).permutation(len(col))
    got = Strings(col).take(order)
    assert got.equals(col.take(pa.array(order)).combine_chunks())
    got.validate(full=True)
    part = order[: len(order) // 3]  # a selection
    assert Strings(col).take(part).equals(col.take(pa.array(part)).combine_chunks())


def test_binary_single_array_and_empty():
    arr = pa.array([b"\x00\x01", b"", b"abc"], pa.binary())
    assert Strings(arr).take(np.array([2, 0, 1])).to_pylist() == [b"abc", b"\x00\x01", b""]
    assert Strings(pa.chunked_array([], pa.string())).take(np.zeros(0, np.int64)).to_pylist() == []


def test_nulls_are_refused():
    with pytest.raises(ValueError):
        Strings(pa.chunked_array([pa.array(["a", None]), pa.array(["c"])]))


@pytest.mark.parametrize("large", [False, True])
def test_lines_end_each_value_with_a_newline(large):
    rnd = random.Random(7)
    typ = pa.large_string() if large else pa.string()
    chunks = [pa.array(_values(rnd, rnd.randrange(0, 200)), typ) for _ in range(5)]
    chunks[1] = chunks[1].slice(3)
    col = pa.chunked_array(chunks, typ)
    order = np.random.default_rng(7).permutation(len(col))[: len(col) - 9]
    source = Strings(col)
    offsets, data = source.lines(order)
    want = [v.encode() + b"\n" for v in col.take(pa.array(order)).to_pylist()]
    assert data.tobytes() == b"".join(want)
    assert offsets.tolist() == np.concatenate([[0], np.cumsum([len(w) for w in want])]).tolist()
    assert source.take(order).to_pylist() == col.take(pa.array(order)).to_pylist()  # the same values, located once
    with pytest.raises(ValueError):
        Strings(pa.array(["a", None]))
