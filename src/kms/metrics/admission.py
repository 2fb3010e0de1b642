"""Prometheus's append rules for samples, per tenant, applied before anything is stored.

- **Label limits** (``kms.limits.SeriesLimits``, passed to ``admit``): a request with a label set
  they refuse is refused whole, before the other rules. A label set is checked once per limits
  (its series table entry remembers it passed), not once per write.
- **Series limit** (Mimir's ``max_global_series_per_user``): a request that would add series
  past ``max_series`` is refused whole (400, never retried; the message names the limit).
- **Samples per request**: a request over ``max_samples`` is refused whole the same way.
- **Out of order**: a sample older than its series' newest sample by more than
  ``ooo_window_ms`` is refused (``out of order sample``); within the window it is stored and
  queries merge it by time. A window of 0 is Prometheus's and Mimir's default: in order only.
- **Duplicates**: a sample at its series' newest timestamp with different value bits is refused
  (``duplicate sample for timestamp``); the same value again (a retried request) is accepted.

Refused samples are dropped from the batch and counted in ``batch.rejected``; the rest is stored
and the push answers 400 naming them, as Prometheus's remote-write handler does.

The newest timestamp and value per series live in memory in the tenant's ``TenantSeries`` (its
series refs, ``storage/refs.py``), rebuilt from nothing at start: after a restart the first
sample of each series is taken as it comes. They advance only when the
receiver commits a stored batch, so a batch the store refuses (429) is judged afresh when the
client retries it. Locking: one lock per tenant, held while a batch is checked and while its
newest samples are committed (numpy, no per-sample Python); two batches of one series checked
before either commits are both admitted (queries merge them by time).
"""

from __future__ import annotations

import functools
import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import numpy as np
import pyarrow as pa

from kms.errors import BadInput
from kms.metrics.samples import Labels, SampleBatch
from kms.metrics.storage.histograms import encode
from kms.metrics.storage.refs import NO_TIME as _NO_TIME
from kms.metrics.storage.refs import TenantSeries

__all__ = ["SampleAdmission", "Admitted", "LabelLimits"]


def _nothing() -> None:
    pass


class LabelLimits(Protocol):
    """Validation of label sets (``kms.limits.SeriesLimits``): ``check`` raises BadInput for the
    first offending one; ``key`` changes whenever the outcome of ``check`` could."""

    @property
    def key(self) -> tuple: ...

    def check(self, series: list[Labels]) -> None: ...


@dataclass(frozen=True, slots=True)
class Admitted:
    batch: SampleBatch  # what may be stored
    commit: Callable[[], None]  # call once it is stored
    refs: np.ndarray  # the tenant's ref of each of ``batch.series`` (NO_REF: exemplars only)
    series: TenantSeries  # the tenant's series table the refs point into

    def columns(self) -> tuple[pa.Array, pa.Array]:
        """``(texts, names)`` of ``batch.series``: the ``series`` and ``metric`` column values."""
        return self.series.columns(self.refs, self.batch.series, self.batch.series_refs)


def _run_all(fns: list) -> None:
    for fn in fns:
        fn()


def _histogram_rows(batch: SampleBatch) -> SampleBatch:
    """A batch's native histograms as rows the sample rules judge: a digest of each histogram's
    encoding stands in for the value bits (equal histograms, equal bits), sharing the batch's
    refusal counts."""
    hs = batch.histograms
    digests = [int.from_bytes(hashlib.blake2b(encode(h), digest_size=8).digest(), "little") for _, _, h in hs]
    return SampleBatch(
        series=batch.series,
        series_idx=np.fromiter((i for i, _, _ in hs), dtype=np.int32, count=len(hs)),
        ts_ms=np.fromiter((t for _, t, _ in hs), dtype=np.int64, count=len(hs)),
        values=np.array(digests, dtype=np.uint64).view(np.float64),
        rejected=batch.rejected,
        errors=batch.errors,
    )


def _fmt(labels: Labels) -> str:
    text = "{" + ", ".join(f'{k}="{v}"' for k, v in labels) + "}"
    return text if len(text) <= 200 else text[:200] + "…"


def _when(ms: int) -> str:
    try:
        return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    except (ValueError, OverflowError, OSError):
        return f"{ms} ms"


class SampleAdmission:
    def __init__(self, ooo_window_ms: int = 0, max_series: int = 0, max_samples: int = 0):
        self.ooo_window_ms = ooo_window_ms
        self.max_series = max_series  # 0 = no limit
        self.max_samples = max_samples  # 0 = no limit
        self._lock = threading.Lock()
        self._tenants: dict[str, TenantSeries] = {}

    def _tenant(self, tenant: str) -> TenantSeries:
        with self._lock:
            st = self._tenants.get(tenant)
            if st is None:
                st = self._tenants[tenant] = TenantSeries()
            return st

    def series_count(self, tenant: str) -> int:
        return len(self._tenant(tenant))

    def admit(self, tenant: str, batch: SampleBatch, limits: LabelLimits | None = None) -> Admitted:
        """``batch`` without the samples the rules refuse (counted in its ``rejected``), and the
        advance of the series' newest samples to ``commit()`` once the batch is stored (a batch
        that fails to store, e.g. 429 on a full head, leaves no trace: its retry is judged
        afresh). Raises BadInput (nothing admitted) for a label set ``limits`` refuses (checked
        first, and only for label sets not yet passed under the same limits), then over the
        samples or series limit."""
        st = self._tenant(tenant)
        series = batch.series
        with st.lock:
            refs = st.refs(series, batch.series_refs)
            if limits is not None:
                todo = st.unchecked(refs, limits.key)
                if len(todo):
                    limits.check([series[i] for i in todo.tolist()])
                    st.mark_valid(refs[todo])
            if self.max_samples and len(batch) > self.max_samples:
                raise BadInput(
                    f"the request has {len(batch)} samples, more than the limit of {self.max_samples} a request "
                    "(limits.max_samples_per_request); send smaller batches",
                    reason="max_samples_per_request",
                )
            used = np.zeros(len(refs), dtype=bool)
            used[batch.series_idx] = True  # series with only exemplars do not count
            if batch.histograms:
                used[[i for i, _, _ in batch.histograms]] = True
            new = np.flatnonzero((refs < 0) & used)
            if self.max_series and len(new) and len(st) + len(new) > self.max_series:
                raise BadInput(
                    f"per-user series limit of {self.max_series} exceeded: the tenant has {len(st)} series "
                    f"and the request adds {len(new)} (err-mimir-max-series-per-user; raise "
                    f"limits.max_series_per_tenant); first new series: {_fmt(series[new[0]])}",
                    reason="max_series_per_tenant",
                )
            for i in new.tolist():
                refs[i] = st.add(series[i], valid=limits is not None)
            st.remember(batch.series_refs, refs)
            keep, newest = self._check(st, refs, batch) if len(batch) else (None, None)
            hkeep, hnewest = self._check(st, refs, _histogram_rows(batch)) if batch.histograms else (None, None)
        advances = [functools.partial(self._advance, st, *x) for x in (newest, hnewest) if x is not None]
        commit = functools.partial(_run_all, advances) if advances else _nothing
        if keep is None and hkeep is None:
            return Admitted(batch, commit, refs, st)
        out = SampleBatch(
            series=batch.series, series_idx=batch.series_idx[keep] if keep is not None else batch.series_idx,
            ts_ms=batch.ts_ms[keep] if keep is not None else batch.ts_ms,
            values=batch.values[keep] if keep is not None else batch.values, exemplars=batch.exemplars,
            metadata=batch.metadata, rejected=batch.rejected, errors=batch.errors,
            histograms=batch.histograms if hkeep is None else [h for h, k in zip(batch.histograms, hkeep, strict=True) if k],
        )  # fmt: skip
        return Admitted(out, commit, refs, st)

    @staticmethod
    def _advance(st: TenantSeries, ids: np.ndarray, t: np.ndarray, bits: np.ndarray) -> None:
        """Make these the newest samples of their series where they are newer (another batch
        may have been stored in between)."""
        with st.lock:
            newer = t >= st.last_t[ids]
            st.last_t[ids[newer]] = t[newer]
            st.last_v[ids[newer]] = bits[newer]

    def _check(self, st: TenantSeries, sid: np.ndarray, batch: SampleBatch) -> tuple[np.ndarray | None, tuple | None]:
        """Mask of the samples to keep (None: all) and the newest admitted sample per series
        ``(ids, t, value bits)`` (None: none admitted)."""
        s = sid[batch.series_idx]
        t = batch.ts_ms
        bits = batch.values.view(np.uint64)
        n = len(t)
        newest = self._in_order(st, s, t, bits)
        if newest is not None:
            return None, newest
        order = np.lexsort((np.arange(n), s))  # by series, then request order
        so, to, bo = s[order], t[order], bits[order]
        first = np.ones(n, dtype=bool)
        first[1:] = so[1:] != so[:-1]
        # the newest time before each sample: the stored newest, then the running max in the request
        prev = self._running_max_before(so, to, first, st.last_t[so])
        if prev is None:  # timestamps too far apart for the vectorised running max (centuries)
            ooo = self._check_slow(so, to, st.last_t, self.ooo_window_ms)
        else:
            seen = prev != _NO_TIME
            ooo = seen & (to < np.where(seen, prev, 0) - self.ooo_window_ms)
        # a duplicate: the stored newest time again with other value bits, or twice in the request
        dup = (to == st.last_t[so]) & (bo != st.last_v[so])
        o2 = np.lexsort((np.arange(n), to, so))
        same = np.zeros(n, dtype=bool)
        same[o2[1:]] = (so[o2[1:]] == so[o2[:-1]]) & (to[o2[1:]] == to[o2[:-1]]) & (bo[o2[1:]] != bo[o2[:-1]])
        dup |= same
        bad = ooo | dup
        ok = ~bad
        newest = None
        if ok.any():  # the newest admitted sample of each series (the last of equal times)
            ks, kt, kb = so[ok], to[ok], bo[ok]
            last_of = np.lexsort((np.arange(len(ks)), kt, ks))
            end = np.ones(len(ks), dtype=bool)
            end[:-1] = ks[last_of][1:] != ks[last_of][:-1]
            pick = last_of[end]
            newest = (ks[pick], kt[pick], kb[pick])
        if not bad.any():
            return None, newest
        self._reject(batch, order, ooo & ~dup, "sample_out_of_order", (
            "the sample has been rejected because another sample with a more recent timestamp has already been "
            f"ingested and out-of-order samples are not allowed{self._window_text()} (err-mimir-sample-out-of-order)"
        ))  # fmt: skip
        self._reject(batch, order, dup, "sample_duplicate_timestamp", (
            "the sample has been rejected because another sample with the same timestamp, but a different value, "
            "has already been ingested (err-mimir-sample-duplicate-timestamp)"
        ))  # fmt: skip
        keep = np.ones(n, dtype=bool)
        keep[order[bad]] = False
        return keep, newest

    @staticmethod
    def _in_order(st: TenantSeries, s: np.ndarray, t: np.ndarray, bits: np.ndarray) -> tuple | None:
        """The common case, checked without sorting the samples: each series one run of strictly
        increasing times, all after its stored newest. Then every sample is admitted and the run ends are
        the newest samples ``(ids, t, bits)``; None when the batch is not that case."""
        brk = np.flatnonzero(s[1:] != s[:-1]) + 1
        firsts = np.concatenate(([0], brk))
        runs = s[firsts]
        if len(runs) > 1:  # a series in two runs: the general path orders them
            srt = np.sort(runs)  # (not a bincount: that costs the tenant's series count a batch)
            if bool((srt[1:] == srt[:-1]).any()):
                return None
        inside = np.ones(len(s), dtype=bool)
        inside[firsts] = False
        if bool((t[1:][inside[1:]] <= t[:-1][inside[1:]]).any()):
            return None
        if bool((t[firsts] <= st.last_t[runs]).any()):
            return None
        lasts = np.concatenate((brk - 1, [len(s) - 1]))
        return runs, t[lasts], bits[lasts]

    def _window_text(self) -> str:
        return f" beyond the out-of-order window of {self.ooo_window_ms} ms" if self.ooo_window_ms else ""

    @staticmethod
    def _reject(batch: SampleBatch, order: np.ndarray, mask: np.ndarray, reason: str, text: str) -> None:
        count = int(mask.sum())
        if not count:
            return
        i = int(order[np.flatnonzero(mask)[0]])
        batch.rejected[reason] = batch.rejected.get(reason, 0) + count
        batch.errors.append(
            f"{text}. The affected sample has timestamp {_when(int(batch.ts_ms[i]))} and is from series "
            f"{_fmt(batch.series[int(batch.series_idx[i])])} ({count} such samples in the request)"
        )

    @staticmethod
    def _running_max_before(
        so: np.ndarray, to: np.ndarray, first: np.ndarray, stored: np.ndarray
    ) -> np.ndarray | None:
        """For each sample (grouped by series), the max of its series' stored newest time and the
        earlier samples' times; None when the one-array trick would overflow int64."""
        has = stored != _NO_TIME
        lo = min(int(to.min()), int(stored[has].min()) if has.any() else int(to.min()))
        hi = max(int(to.max()), int(stored[has].max()) if has.any() else int(to.max()))
        width = hi - lo + 2  # 0 stands for "no time yet"
        group = np.cumsum(first) - 1
        if (int(group[-1]) + 1) * width >= 2**62:
            return None
        base = group * width
        # element 2i: the stored time (first of the group) or the previous sample; running max
        before = np.where(first, np.where(has, stored - lo + 1, 0), np.roll(to - lo + 1, 1))
        run = np.maximum.accumulate(base + before) - base
        return np.where(run == 0, _NO_TIME, run + lo - 1)

    @staticmethod
    def _check_slow(so: np.ndarray, to: np.ndarray, last_t: np.ndarray, window: int) -> np.ndarray:
        ooo = np.zeros(len(so), dtype=bool)
        newest: dict[int, int] = {}
        for i, (s, t) in enumerate(zip(so.tolist(), to.tolist(), strict=True)):
            prev = newest.get(s, int(last_t[s]))
            ooo[i] = prev != _NO_TIME and t < prev - window
            newest[s] = max(prev, t)
        return ooo
