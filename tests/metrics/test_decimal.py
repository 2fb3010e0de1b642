"""Scaled-integer sample values give every float back bit for bit."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from kms.metrics.storage.decimal import from_decimal, to_decimal

_DECIMALS = st.builds(lambda n, k: float(f"{n}e-{k}"), st.integers(-(10**12), 10**12), st.integers(0, 9))
_ANY = st.floats(allow_nan=True, allow_infinity=True)
_SPECIAL = st.sampled_from([-0.0, 0.0, float("nan"), float("inf"), 2.0**60, 1e300, 5e-324])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.one_of(_DECIMALS, _ANY, _SPECIAL)), max_size=30))
def test_round_trip_is_bit_exact(rows):
    group = np.array([g for g, _ in rows], np.int64)
    values = np.array([v for _, v in rows], np.float64)
    is_int, ints, scale = to_decimal(values, group, 4)
    back = from_decimal(is_int, ints, scale, np.where(is_int, 0.0, values))
    assert back.view(np.uint64).tolist() == values.view(np.uint64).tolist()
    for g in range(4):  # one scale per group
        assert len(set(scale[is_int & (group == g)].tolist())) <= 1


def test_exporter_values_become_integers_and_specials_stay_floats():
    values = np.array([1234.56, 1234.6, 0.0, 12.0, -0.0, float("nan"), 0.1 + 0.2, 1e20])
    is_int, ints, scale = to_decimal(values, np.array([0, 0, 1, 1, 2, 2, 3, 4]), 5)
    assert is_int.tolist() == [True, True, True, True, False, False, False, False]
    assert ints[:4].tolist() == [123456, 123460, 0, 12] and scale[:4].tolist() == [2, 2, 0, 0]
