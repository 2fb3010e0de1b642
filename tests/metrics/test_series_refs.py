"""The write path's per-tenant series refs: a repeated label set skips validation and string work,
and every refusal and limit behaves as when each write checked everything again."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from kms.errors import BadInput
from kms.limits import MemoryLimiter, RateLimiter, SeriesLimits
from kms.metrics.admission import SampleAdmission
from kms.metrics.samples import Exemplar, SampleBatch
from kms.metrics.storage.labels import labels_text
from kms.metrics.storage.refs import NO_REF, TenantSeries
from kms.metrics.store import EXEMPLARS, SAMPLES, samples_table
from kms.receive import Receiver
from kms.storage import LocalObjectStore, ScanRequest, Store, StoreConfig
from kms.telemetry import Telemetry

T0 = 1_700_000_000_000


def ls(name: str, **kw: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted({"__name__": name, **kw}.items()))


def batch(series: list, rows: list[tuple[int, int, float]], exemplars: list[Exemplar] | None = None) -> SampleBatch:
    return SampleBatch(series=list(series), series_idx=np.array([r[0] for r in rows], np.int32),
                       ts_ms=np.array([r[1] for r in rows], np.int64), values=np.array([r[2] for r in rows], np.float64),
                       exemplars=exemplars or [])


class CountingLimits(SeriesLimits):
    """Real limits that record which label sets they were asked about."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.seen: list = []

    def check(self, series) -> None:
        self.seen.extend(series)
        super().check(series)


@pytest.fixture
def store(tmp_path):
    s = Store(StoreConfig(data_dir=tmp_path / "data"), LocalObjectStore(tmp_path / "blocks"), [SAMPLES, EXEMPLARS])
    s.open()
    yield s
    s.close()


def receiver(store, limits: SeriesLimits, admission: SampleAdmission | None = None) -> Receiver:
    r = Receiver(store, RateLimiter(0, 0), MemoryLimiter(1 << 40), Telemetry(), series_limits=limits,
                 admission=admission)
    r.ready = True
    return r


def rows(table: pa.Table) -> list[tuple]:
    return sorted(tuple(r.values()) for r in table.to_pylist())


def stored_rows(store, tenant: str) -> int:
    return sum(t.num_rows for t in store.scan(ScanRequest(tenant, "samples")))


# -- TenantSeries --
def test_refs_by_identity_then_by_value():
    st = TenantSeries()
    a = ls("up", job="a")
    with st.lock:
        assert st.refs([a]).tolist() == [NO_REF]
        ref = st.add(a, valid=True)
        twin = tuple(list(a))  # equal, another object
        assert twin is not a
        assert st.refs([a, twin, ls("up", job="b")]).tolist() == [ref, ref, NO_REF]
        assert st.refs([twin]).tolist() == [ref]  # now known by the twin's identity
        assert st.add(twin, valid=True) == ref and len(st) == 1


def test_identity_never_confuses_a_recycled_object():
    """A tuple known by identity is held, so its id cannot come back as another label set."""
    st = TenantSeries()
    with st.lock:
        for i in range(200):
            st.add(ls("m", i=str(i)), valid=False)
        for i in range(200):  # fresh tuples, created and dropped: ids are recycled by CPython
            assert st.refs([ls("m", i=str(i))]).tolist() == [i]
            assert st.refs([ls("other", i=str(i))]).tolist() == [NO_REF]


def test_columns_are_the_texts_and_names_of_the_series():
    st = TenantSeries()
    series = [ls(f"m{i % 3}", i=str(i), q='a"b\n') for i in range(50)]
    with st.lock:
        refs = np.array([st.add(s, valid=False) for s in series])
    for pick in (refs, refs[::-1].copy(), np.array([*refs[:3], NO_REF]), np.array([7])):
        subset = [series[r] if r >= 0 else ls("only_exemplars", x="1") for r in pick]
        texts, names = st.columns(pick, subset)
        assert texts.to_pylist() == [labels_text(s) for s in subset]
        assert names.to_pylist() == [dict(s)["__name__"] for s in subset]
    with st.lock:  # a few more series than the Arrow copies hold: the lists serve, then the copies grow
        more = [st.add(ls("late", i=str(i)), valid=False) for i in range(60)]
    for pick in (np.array(more[:1]), np.array(more)):
        texts, _ = st.columns(pick, [ls("late", i=str(r - 50)) for r in pick])
        assert texts.to_pylist() == [labels_text(ls("late", i=str(r - 50))) for r in pick]


# -- admission with label limits --
def test_a_label_set_is_checked_once_per_limits():
    lim = CountingLimits(max_label_names=3)
    adm = SampleAdmission()
    a, b = ls("up", job="a"), ls("up", job="b")
    adm.admit("t", batch([a, b], [(0, T0, 1.0), (1, T0, 1.0)]), lim).commit()
    adm.admit("t", batch([b, a], [(0, T0 + 1, 1.0), (1, T0 + 1, 1.0)]), lim).commit()
    assert lim.seen == [a, b]
    lim.max_label_names = 1  # the limit changes: every series is checked again when next written
    with pytest.raises(BadInput, match=r"number of labels exceeds the limit \(actual: 2, limit: 1\)") as e:
        adm.admit("t", batch([a], [(0, T0 + 2, 1.0)]), lim)
    assert e.value.reason == "max_label_names_per_series" and lim.seen[2:] == [a]
    lim.max_label_names = 30
    adm.admit("t", batch([a], [(0, T0 + 3, 1.0)]), lim)
    assert lim.seen[3:] == [a]


def test_limits_are_per_tenant_and_refused_series_leave_nothing():
    lim = CountingLimits(max_value_length=3)
    adm = SampleAdmission(max_series=2)
    ok, bad = ls("up", job="abc"), ls("up", job="abcd")
    adm.admit("a", batch([ok], [(0, T0, 1.0)]), lim).commit()
    with pytest.raises(BadInput, match="label value length exceeds the limit") as e:
        adm.admit("a", batch([ok, bad], [(0, T0 + 1, 1.0), (1, T0 + 1, 1.0)]), lim)
    assert e.value.reason == "label_value_too_long"
    assert adm.series_count("a") == 1  # nothing of the refused request was registered
    adm.admit("b", batch([ok], [(0, T0, 1.0)]), lim)  # another tenant checks its own series
    assert lim.seen == [ok, bad, ok]  # ok was not checked again in tenant a
    with pytest.raises(BadInput, match="label value length exceeds the limit"):
        adm.admit("a", batch([bad], [(0, T0 + 2, 1.0)]), lim)  # refused again: never marked valid
    # the series limit still counts only series with samples, per tenant
    adm.admit("a", batch([ls("x", i="1"), ls("x", i="2")], [(0, T0, 1.0)]), lim)
    with pytest.raises(BadInput, match="per-user series limit of 2"):
        adm.admit("a", batch([ls("x", i="3")], [(0, T0, 1.0)]), lim)
    assert adm.series_count("a") == 2 and adm.series_count("b") == 1


def test_label_errors_come_before_the_request_limits():
    lim = SeriesLimits(max_label_names=1)
    adm = SampleAdmission(max_samples=1)
    with pytest.raises(BadInput) as e:
        adm.admit("t", batch([ls("up", job="a")], [(0, T0, 1.0), (0, T0 + 1, 1.0)]), lim)
    assert e.value.reason == "max_label_names_per_series"


# -- through the receiver, into a real store --
def test_cached_columns_give_the_same_tables_and_refusals_store_nothing(store):
    lim = SeriesLimits(max_label_names=4)
    r = receiver(store, lim)
    series = [ls(f"m{i % 4}", i=str(i)) for i in range(30)]
    expect = []
    for k in range(5):  # the same series every write, as a scrape does
        b = batch(series, [(i, T0 + 1000 * k, float(i + k)) for i in range(30)],
                  exemplars=[Exemplar(0, (("trace_id", "ab"),), 1.0, T0 + 1000 * k)])
        expect.append(samples_table(b))
        assert r.store_samples("t", b).accepted == 30
    got = pa.concat_tables(t for t in store.scan(ScanRequest("t", "samples")))
    assert rows(got) == rows(pa.concat_tables(expect))
    # a request with one series over the limit: refused whole, with Mimir's words, nothing stored
    wide = tuple(sorted({"__name__": "w", "a": "1", "b": "2", "c": "3", "d": "4"}.items()))
    before = stored_rows(store, "t")
    with pytest.raises(BadInput, match="err-mimir-max-label-names-per-series"):
        r.export_samples("t", batch([*series, wide], [(0, T0 + 9000, 1.0), (30, T0 + 9000, 1.0)]))
    assert stored_rows(store, "t") == before
    assert r.admission.series_count("t") == 30


def test_a_series_only_with_exemplars_is_validated_and_named():
    lim = SeriesLimits(max_label_names=2)
    r_series = [ls("up", job="a"), ls("rare", job="b", x="c")]  # the second only has an exemplar
    adm = SampleAdmission()
    b = batch(r_series, [(0, T0, 1.0)], exemplars=[Exemplar(1, (("trace_id", "ab"),), 1.0, T0)])
    with pytest.raises(BadInput, match="rare"):
        adm.admit("t", b, lim)
    got = adm.admit("t", batch(r_series[:1] + [ls("rare", job="b")], [(0, T0, 1.0)]), lim)
    assert got.refs.tolist()[1] == NO_REF
    texts, names = got.columns()
    assert texts.to_pylist() == [labels_text(ls("up", job="a")), labels_text(ls("rare", job="b"))]
    assert names.to_pylist() == ["up", "rare"]
