"""``StoreSeriesSource``: PromQL's ``SeriesSource`` and the label/series/exemplar queries over the
metrics signals. The ``__name__`` equality matcher is pushed down as a store filter (row groups
are pruned by ``metric`` statistics); every other matcher is applied once per distinct series
text; samples are grouped by series with numpy."""

from __future__ import annotations

import struct
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kms.metrics.promql.model import STALE_NAN, Matcher, Series
from kms.metrics.storage.cache import BlockSamples, SampleCache
from kms.metrics.storage.histograms import HISTOGRAMS, decode
from kms.metrics.storage.labels import parse_labels_text
from kms.metrics.storage.tables import EXEMPLARS, NS_PER_MS, SAMPLES
from kms.storage import ScanRequest, Store

__all__ = ["StoreSeriesSource"]

_MIN_MS, _MAX_MS = -(2**63) // NS_PER_MS + 1, (2**63 - 1) // NS_PER_MS


def _ns(ms: int | None) -> int | None:
    """``ms`` in ns, clamped into int64 (callers pass huge bounds for "everything")."""
    return None if ms is None else min(max(int(ms), _MIN_MS), _MAX_MS) * NS_PER_MS


def _merge_same_labels(series: list[Series]) -> list[Series]:
    """One series per label set (tenants read together may each hold it): samples merged by
    time, the later tenant's sample winning a tie."""
    groups: dict[tuple, list[Series]] = {}
    for s in series:
        groups.setdefault(tuple(sorted(s.labels.items())), []).append(s)
    out = []
    for group in groups.values():
        if len(group) == 1:
            out.append(group[0])
            continue
        t = np.concatenate([s.t for s in group])
        v = np.concatenate([s.v for s in group])
        order = np.argsort(t, kind="stable")
        t, v = t[order], v[order]
        last = np.ones(len(t), dtype=bool)
        last[:-1] = t[1:] != t[:-1]
        out.append(Series(group[0].labels, t[last], v[last]))
    return out


def _is_stale_float(x: float) -> bool:
    return struct.pack("<d", x) == _STALE_BYTES


_STALE_BYTES = struct.pack("<d", STALE_NAN)


def _matches(labels: dict[str, str], matchers: list[Matcher]) -> bool:
    return all(m.matches(labels.get(m.name, "")) for m in matchers)


def _matches_any(labels: dict[str, str], matcher_sets: list[list[Matcher]]) -> bool:
    return not matcher_sets or any(_matches(labels, ms) for ms in matcher_sets)


def _name_filter(matcher_sets: list[list[Matcher]]) -> pc.Expression | None:
    """``metric`` filter when every set pins ``__name__`` with ``=`` (None: scan everything)."""
    names: set[str] = set()
    for ms in matcher_sets:
        pinned = [m.value for m in ms if m.name == "__name__" and m.op == "=" and m.value]
        if not pinned:
            return None
        names.add(pinned[0])
    if not names:
        return None
    if len(names) == 1:
        return pc.field("metric") == pa.scalar(next(iter(names)), pa.string())
    return pc.field("metric").isin(pa.array(sorted(names), pa.string()))


class _SeriesIds:
    """Maps series texts to dense ids across chunks, parsing and matching each text once."""

    def __init__(self, matcher_sets: list[list[Matcher]]):
        self.matcher_sets = matcher_sets
        self.ids: dict[str, int] = {}
        self.labels: list[dict[str, str]] = []
        self.keep: list[bool] = []

    def chunk_ids(self, col: pa.DictionaryArray) -> np.ndarray:
        """Dense ids of the rows of one dictionary chunk (-1 for series the matchers refuse)."""
        indices = col.indices.to_numpy(zero_copy_only=False)
        lut = np.full(len(col.dictionary), -1, dtype=np.int64)
        used = np.unique(indices)  # a filtered chunk keeps its whole dictionary: look only at used entries
        for i, text in zip(used.tolist(), col.dictionary.take(pa.array(used)).to_pylist(), strict=True):
            sid = self.ids.get(text)
            if sid is None:
                labels = parse_labels_text(text)
                sid = self.ids[text] = len(self.labels)
                self.labels.append(labels)
                self.keep.append(_matches_any(labels, self.matcher_sets))
            if self.keep[sid]:
                lut[i] = sid
        return lut[indices]


def _matching_rows(tables, ids: _SeriesIds, columns: tuple[str, ...]):
    """Per table chunk: the dense series ids, ``time_ns`` and ``columns`` of the rows whose
    series the matchers of ``ids`` accept."""
    for t in tables:
        parts = [t.column(c).chunks for c in ("series", "time_ns", *columns)]
        for sc, tc, *cols in zip(*parts, strict=True):
            sid = ids.chunk_ids(sc)
            hit = np.flatnonzero(sid >= 0)
            if not len(hit):
                continue
            rows = pa.array(hit)
            yield sid[hit], tc.take(rows), [c.take(rows) for c in cols]


class StoreSeriesSource:
    """A PromQL ``SeriesSource`` (plus the metadata queries of the HTTP API) over ``Store``'s
    ``samples`` and ``exemplars`` signals of ``tenants`` (read together, as one)."""

    def __init__(self, store: Store, tenants: list[str], cache: SampleCache | None = None):
        self.store = store
        self.tenants = list(tenants)
        self.cache = cache if cache is not None else SampleCache()

    def _scan(
        self,
        signal: str,
        matcher_sets: list[list[Matcher]],
        start_ms: int | None,
        end_ms: int | None,
        columns,
    ) -> Iterator[pa.Table]:
        flt = _name_filter(matcher_sets)
        for tenant in self.tenants:
            yield from self.store.scan(
                ScanRequest(
                    tenant,
                    signal,
                    _ns(start_ms),
                    _ns(end_ms),
                    filter=flt,
                    columns=columns,
                )
            )

    def select(self, matchers: list[Matcher], start_ms: int, end_ms: int) -> list[Series]:
        """Series matching all ``matchers`` with their samples in ``[start_ms, end_ms]``, sorted by
        time; of samples at the same timestamp the last written wins. Sorted by label set.
        Blocks are read through the ``SampleCache`` (postings + decoded runs), the head by a
        vectorised scan; ids are per tenant, so each tenant's series are gathered apart."""
        out: list[Series] = []
        for tenant in self.tenants:
            found = self._select_tenant(tenant, list(matchers), start_ms, end_ms)
            out += self._with_histograms(tenant, found, list(matchers), start_ms, end_ms)
        if len(self.tenants) > 1:
            out = _merge_same_labels(out)
        out.sort(key=lambda s: sorted(s.labels.items()))
        return out

    def _with_histograms(
        self, tenant: str, found: list[Series], matchers: list[Matcher], start_ms: int, end_ms: int
    ) -> list[Series]:
        """``found`` with the tenant's native-histogram samples merged in (by time; a histogram
        and a float at the same time: the histogram wins)."""
        if not self.store.holds(HISTOGRAMS.name):
            return found
        head, blocks = self.store.snapshot(tenant, HISTOGRAMS.name)
        if not head and not blocks:
            return found
        ids = _SeriesIds([matchers])
        per: dict[int, dict[int, bytes]] = {}
        req = ScanRequest(
            tenant, HISTOGRAMS.name, _ns(start_ms), _ns(end_ms), filter=_name_filter([matchers])
        )
        for sids, tc, (hc,) in _matching_rows(self.store.scan(req), ids, ("histogram",)):
            times = tc.to_numpy(zero_copy_only=False) // NS_PER_MS
            for s, ms, data in zip(sids.tolist(), times.tolist(), hc.to_pylist(), strict=True):
                per.setdefault(s, {})[ms] = data
        if not per:
            return found
        by_key = {tuple(sorted(s.labels.items())): s for s in found}
        for s, samples in per.items():
            labels = ids.labels[s]
            key = tuple(sorted(labels.items()))
            ht = np.array(sorted(samples), dtype=np.int64)
            hv = np.empty(len(ht), dtype=object)
            hv[:] = [decode(samples[x]) for x in ht.tolist()]
            # a stale histogram (the marker in its sum) reads back as the float staleness marker
            stale = np.fromiter((_is_stale_float(h.sum) for h in hv), dtype=bool, count=len(hv))
            hvals = np.where(stale, STALE_NAN, np.nan)
            hv[stale] = None
            old = by_key.get(key)
            if old is None:
                by_key[key] = Series(dict(labels), ht, hvals, hv)
                continue
            keep = ~np.isin(old.t, ht)
            t = np.concatenate([old.t[keep], ht])
            v = np.concatenate([old.v[keep], hvals])
            h = np.empty(len(t), dtype=object)
            h[: int(keep.sum())] = None
            h[int(keep.sum()) :] = hv
            order = np.argsort(t, kind="stable")
            by_key[key] = Series(old.labels, t[order], v[order], h[order])
        return list(by_key.values())

    def _select_tenant(
        self, tenant: str, matchers: list[Matcher], start_ms: int, end_ms: int
    ) -> list[Series]:
        index = self.cache.index(tenant)
        head, blocks = self.store.snapshot(tenant, SAMPLES.name)
        self.cache.forget(tenant, {b.id for b in blocks})
        lo_ns, hi_ns = _ns(start_ms), _ns(end_ms)
        parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        keep, ids = None, None
        for b in blocks:
            if not b.meta.overlaps(lo_ns, hi_ns):
                continue
            decoded = self.cache.block(tenant, b)
            if keep is None or len(keep) < len(index):
                keep = index.match(matchers)
                ids = np.flatnonzero(keep)
            if isinstance(decoded, BlockSamples):
                parts.append(decoded.select(keep, start_ms, end_ms, ids))
            else:
                parts.append(decoded.select(keep, start_ms, end_ms))
        if head:
            view = self.cache.head(tenant, head)
            if keep is None or len(keep) < len(index):
                keep = index.match(matchers)
            parts += view.select(keep, start_ms, end_ms)
        parts = [p for p in parts if len(p[0])]
        if not parts:
            return []
        labels = index.labels
        parts_id, parts_t, parts_v = zip(*parts, strict=True)
        sid = np.concatenate(parts_id)
        ts = np.concatenate(parts_t)
        vs = np.concatenate(parts_v)
        order = np.lexsort((ts, sid))  # stable: of equal (series, time) the later part stays later
        sid, ts, vs = sid[order], ts[order], vs[order]
        last = np.ones(len(ts), dtype=bool)  # keep the last of equal (series, time)
        last[:-1] = (sid[1:] != sid[:-1]) | (ts[1:] != ts[:-1])
        sid, ts, vs = sid[last], ts[last], vs[last]
        cuts = np.flatnonzero(sid[1:] != sid[:-1]) + 1
        starts = np.concatenate(([0], cuts))
        ends = np.concatenate((cuts, [len(sid)]))
        return [
            Series(dict(labels[sid[a]]), ts[a:b], vs[a:b])
            for a, b in zip(starts.tolist(), ends.tolist(), strict=True)
        ]

    def _matching_series(
        self, matcher_sets: list[list[Matcher]], start_ms: int | None, end_ms: int | None
    ) -> list[dict[str, str]]:
        sets = [list(ms) for ms in matcher_sets]
        seen: dict[str, dict[str, str] | None] = {}
        signals = [SAMPLES.name] + ([HISTOGRAMS.name] if self.store.holds(HISTOGRAMS.name) else [])
        tables = (t for signal in signals for t in self._scan(signal, sets, start_ms, end_ms, ("series",)))
        for t in tables:
            for chunk in t.column("series").chunks:
                if not len(chunk):
                    continue
                used = np.unique(chunk.indices.to_numpy(zero_copy_only=False))
                for text in chunk.dictionary.take(pa.array(used)).to_pylist():
                    if text not in seen:
                        labels = parse_labels_text(text)
                        seen[text] = labels if _matches_any(labels, sets) else None
        return [ls for ls in seen.values() if ls is not None]

    def series(
        self, matcher_sets: list[list[Matcher]], start_ms: int | None = None, end_ms: int | None = None
    ) -> list[dict[str, str]]:
        """Label sets of the series matching any of ``matcher_sets`` (empty = all) with samples
        in the range, sorted."""
        return sorted(self._matching_series(matcher_sets, start_ms, end_ms), key=lambda d: sorted(d.items()))

    def label_names(
        self, matcher_sets: list[list[Matcher]], start_ms: int | None = None, end_ms: int | None = None
    ) -> list[str]:
        return sorted({k for ls in self._matching_series(matcher_sets, start_ms, end_ms) for k in ls})

    def label_values(
        self,
        name: str,
        matcher_sets: list[list[Matcher]],
        start_ms: int | None = None,
        end_ms: int | None = None,
    ) -> list[str]:
        found = {ls.get(name, "") for ls in self._matching_series(matcher_sets, start_ms, end_ms)}
        found.discard("")
        return sorted(found)

    def exemplars(
        self, matcher_sets: list[list[Matcher]], start_ms: int | None = None, end_ms: int | None = None
    ) -> list[dict]:
        """Prometheus's ``query_exemplars`` data: ``[{"seriesLabels", "exemplars": [{"labels",
        "value" (float), "timestamp" (float seconds)}]}]``, exact duplicates dropped, sorted."""
        sets = [list(ms) for ms in matcher_sets]
        ids = _SeriesIds(sets)
        per: dict[int, dict[tuple, None]] = {}
        tables = self._scan(EXEMPLARS.name, sets, start_ms, end_ms, ("series", "labels", "value"))
        for sids, tc, (lc, vc) in _matching_rows(tables, ids, ("labels", "value")):
            vals = vc.to_numpy(zero_copy_only=False)
            for s, ns, lab, bits, v in zip(
                sids.tolist(),
                tc.to_pylist(),
                lc.to_pylist(),
                vals.view(np.uint64).tolist(),  # dedup by bits: NaN != NaN
                vals.tolist(),
                strict=True,
            ):
                per.setdefault(s, {})[(ns, lab, bits)] = v
        out = []
        for s, exs in per.items():
            out.append(
                {
                    "seriesLabels": dict(ids.labels[s]),
                    "exemplars": [
                        {
                            "labels": parse_labels_text(k[1]),
                            "value": exs[k],
                            "timestamp": (k[0] // NS_PER_MS) / 1000,
                        }
                        for k in sorted(exs)
                    ],
                }
            )
        out.sort(key=lambda e: sorted(e["seriesLabels"].items()))
        return out
