"""Out-of-order window, duplicate timestamps, series and sample limits (``SampleAdmission``)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kms.errors import BadInput
from kms.metrics.admission import SampleAdmission
from kms.metrics.samples import SampleBatch

SERIES = [(("__name__", "m"), ("i", str(i))) for i in range(3)]


def batch(rows: list[tuple[int, int, float]]) -> SampleBatch:
    return SampleBatch(
        series=list(SERIES),
        series_idx=np.array([r[0] for r in rows], np.int32),
        ts_ms=np.array([r[1] for r in rows], np.int64),
        values=np.array([r[2] for r in rows], np.float64),
    )


def admit(adm: SampleAdmission, tenant: str, b: SampleBatch) -> SampleBatch:
    """Admit and commit, as the receiver does once the batch is stored."""
    got = adm.admit(tenant, b)
    got.commit()
    return got.batch


def bits(v: float) -> int:
    return int(np.float64(v).view(np.uint64))


def reference(batches: list[list[tuple[int, int, float]]], window: int) -> list[list[bool]]:
    """The rules sample by sample, in request order."""
    last: dict[int, tuple[int, int]] = {}
    out = []
    for rows in batches:
        running = {s: t for s, (t, _) in last.items()}
        before: dict[tuple[int, int], int] = {}
        keep = []
        for s, t, v in rows:
            b = bits(v)
            p = running.get(s)
            ooo = p is not None and t < p - window
            dup = (s in last and t == last[s][0] and b != last[s][1]) or before.get((s, t), b) != b
            before[(s, t)] = b
            running[s] = t if p is None else max(p, t)
            keep.append(not (ooo or dup))
        for s in {r[0] for r in rows}:
            kept = [(t, i, bits(v)) for i, ((s2, t, v), k) in enumerate(zip(rows, keep, strict=True)) if k and s2 == s]
            if kept:
                t, _, b = max(kept)
                if s not in last or t >= last[s][0]:
                    last[s] = (t, b)
        out.append(keep)
    return out


ROWS = st.lists(st.tuples(st.integers(0, 2), st.integers(0, 12), st.sampled_from([1.0, 2.0, float("nan")])), max_size=12)


@settings(max_examples=300, deadline=None)
@given(st.lists(ROWS, min_size=1, max_size=4), st.sampled_from([0, 3]))
def test_admission_matches_the_rules_sample_by_sample(batches, window):
    adm = SampleAdmission(ooo_window_ms=window)
    want = reference(batches, window)
    for rows, keep in zip(batches, want, strict=True):
        got = admit(adm, "t", batch(rows))
        kept = [r for r, k in zip(rows, keep, strict=True) if k]
        assert got.ts_ms.tolist() == [r[1] for r in kept]
        assert got.series_idx.tolist() == [r[0] for r in kept]
        assert sum(got.rejected.values()) == len(rows) - len(kept)


def test_out_of_order_and_duplicates_name_the_rule_and_keep_the_rest():
    adm = SampleAdmission()
    admit(adm, "t", batch([(0, 1000, 1.0), (1, 1000, 1.0)]))
    got = admit(adm, "t", batch([(0, 500, 1.0), (1, 1000, 9.0), (0, 1000, 1.0), (0, 2000, 3.0)]))
    assert got.ts_ms.tolist() == [1000, 2000]  # the retried sample and the new one
    assert got.rejected == {"sample_out_of_order": 1, "sample_duplicate_timestamp": 1}
    assert any("err-mimir-sample-out-of-order" in e and 'i="0"' in e for e in got.errors)
    assert any("err-mimir-sample-duplicate-timestamp" in e for e in got.errors)
    windowed = SampleAdmission(ooo_window_ms=600)
    admit(windowed, "t", batch([(0, 1000, 1.0)]))
    assert admit(windowed, "t", batch([(0, 500, 1.0), (0, 300, 1.0)])).ts_ms.tolist() == [500]


def test_series_and_sample_limits_refuse_the_whole_request():
    adm = SampleAdmission(max_series=2, max_samples=3)
    admit(adm, "a", batch([(0, 1, 1.0), (1, 1, 1.0)]))
    with pytest.raises(BadInput, match="per-user series limit of 2") as e:
        admit(adm, "a", batch([(2, 2, 1.0)]))
    assert e.value.reason == "max_series_per_tenant"
    assert adm.series_count("a") == 2
    assert len(admit(adm, "a", batch([(0, 2, 1.0), (1, 2, 1.0)]))) == 2  # known series still flow
    assert len(admit(adm, "b", batch([(2, 2, 1.0)]))) == 1  # per tenant
    with pytest.raises(BadInput, match="limit of 3") as e:
        admit(adm, "b", batch([(0, k, 1.0) for k in range(4)]))
    assert e.value.reason == "max_samples_per_request"


def test_a_batch_not_committed_leaves_no_trace_so_its_retry_is_admitted():
    adm = SampleAdmission()
    rows = [(0, 1000, 1.0), (0, 2000, 2.0), (0, 3000, 3.0)]
    adm.admit("t", batch(rows))  # the store refused it (e.g. 429): no commit
    assert admit(adm, "t", batch(rows)).ts_ms.tolist() == [1000, 2000, 3000]
    assert admit(adm, "t", batch(rows)).ts_ms.tolist() == [3000]  # now stored: the older two are out of order


def test_timestamps_centuries_apart_use_the_slow_path():
    adm = SampleAdmission()
    far = 2**61
    got = admit(adm, "t", batch([(0, far, 1.0), (0, -far, 1.0), (1, -far, 1.0), (1, far, 1.0)]))
    assert got.ts_ms.tolist() == [far, -far, far]
