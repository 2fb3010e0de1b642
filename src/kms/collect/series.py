"""One target's scraped series: raw line text -> final label set, and staleness between scrapes.

Each scrape of a target exposes (almost) the same series lines, so the work of turning a raw series
text into its final labels (unescaping, target labels, ``honor_labels``, ``metric_relabel_configs``,
name and limit checks) is done once per distinct text and cached by it, as Prometheus's scrape
cache does. A scrape then costs a dict lookup per line and numpy work per batch.

Most targets expose the same lines in the same order every time, only the values change: then
(:meth:`SeriesCache.scrape`) the body is split by numpy (:func:`~kms.collect.exposition.split_layout`)
and, when it is the last scrape's but for the values, the last batch's series, indexes and
metadata are reused as they are: no work per line but converting the values.

Such bodies' texts are looked up among the last such body's lines rather than kept in
:attr:`SeriesCache.refs` (an agent scraping 100k series holds ~150 bytes less a series).

Refs index :attr:`SeriesCache.labels`; :data:`DROPPED` marks a text that metric relabeling drops.
Not thread-safe: one cache per scrape loop.
"""

from __future__ import annotations

import itertools
import re
import sys
import zlib

import numpy as np
import xxhash

from kms.collect.config import ScrapeJob
from kms.collect.exposition import (
    NO_TS,
    Layout,
    Parsed,
    ParseError,
    is_openmetrics,
    parse,
    parse_series,
    split_layout,
)
from kms.collect.relabel import relabel
from kms.metrics.samples import STALE_NAN, Exemplar, Labels, Metadata, SampleBatch, SeriesRefs

__all__ = ["DROPPED", "ScrapeError", "SeriesCache", "Appended"]

DROPPED = -1
_MISS = -2
_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
# (name, value) pairs shared by every label set that has them (job, instance, method, code, ...
# of every series of every target): a pair tuple costs 64 bytes, one per label of each cached
# series otherwise. Cleared when large, which only ends the sharing of the pairs seen so far.
_PAIRS: dict[tuple[str, str], tuple[str, str]] = {}
_MAX_PAIRS = 1 << 20


def _shared(pair: tuple[str, str]) -> tuple[str, str]:
    got = _PAIRS.get(pair)
    if got is None:
        if len(_PAIRS) >= _MAX_PAIRS:
            _PAIRS.clear()
        got = _PAIRS.setdefault(pair, pair)
    return got


class ScrapeError(Exception):
    """The scrape fails as a whole (limit exceeded, invalid series): ``up`` is 0 and nothing is stored."""


class Appended:
    """What one scrape produced: the batch to store, the figures for the report series and the
    body's metadata (family -> type, help, unit)."""

    __slots__ = ("batch", "scraped", "post_relabel", "added", "metadata")

    def __init__(self, batch: SampleBatch, scraped: int, post_relabel: int, added: int,
                 metadata: dict[str, dict[str, str]] | None = None):
        self.batch, self.scraped, self.post_relabel, self.added = batch, scraped, post_relabel, added
        self.metadata = metadata if metadata is not None else {}


class _Lines:
    """The series lines of the last stored body that had a :class:`Layout`: its skeleton
    (compressed: ~10x), where each series text is in it and its ref. The next body's texts are
    looked up here (in a dict made then) instead of in a dict of raw texts kept between scrapes
    (~150 bytes a series; bench_agent's 100k scraped series)."""

    __slots__ = ("skeleton", "starts", "stops", "refs")

    def __init__(self, layout: Layout, refs: np.ndarray):
        self.skeleton = zlib.compress(layout.skeleton, 1)
        self.starts = (layout.starts - layout.shift).astype(np.int32)
        self.stops = (layout.stops - layout.shift).astype(np.int32)
        self.refs = refs.astype(np.int32)

    def known(self) -> dict[bytes, int]:
        sk = zlib.decompress(self.skeleton)
        texts = map(sk.__getitem__, map(slice, self.starts.tolist(), self.stops.tolist()))
        return dict(zip(texts, self.refs.tolist(), strict=True))


def _digest(skeleton: bytes) -> bytes:
    """What a skeleton is known by (128 bits, ~7 µs for 2,000 lines, instead of keeping it: ~85
    bytes a series). Only a body crafted to collide could pass for the last one, and what it
    could then do is give its values to its own target's series, as any body can."""
    return xxhash.xxh3_128_digest(skeleton) + len(skeleton).to_bytes(8, "little")


class _Repeat:
    """A scrape whose body had a :class:`Layout`, kept to store the next body with the same
    skeleton without looking at its series: the samples kept, the staleness state after it, and
    the batch's series (and the store's memo of them), indexes (its samples first, then the
    report series) and metadata."""

    __slots__ = ("digest", "keep", "post", "now", "report", "series", "series_refs", "series_idx", "metadata",
                 "appended_md")

    def __init__(self, digest: bytes, keep: np.ndarray | None, post: int, now: np.ndarray,
                 report: tuple[str, ...], batch: SampleBatch, metadata: dict[str, dict[str, str]]):
        self.digest, self.keep, self.post, self.now, self.report = digest, keep, post, now, report
        self.series, self.series_refs, self.series_idx = batch.series, batch.series_refs, batch.series_idx
        self.metadata = batch.metadata
        self.appended_md = metadata


class SeriesCache:
    def __init__(self, job: ScrapeJob, target_labels: Labels):
        self.job = job
        self.target_labels = dict(target_labels)
        self.refs: dict[bytes, int] = {}
        self.labels: list[Labels] = []
        self._ref_of: dict[Labels, int] = {}
        self.prev = np.empty(0, np.int64)  # refs of the previous scrape (for staleness)
        self.ever = np.zeros(0, bool)  # by ref: ever stored (scrape_series_added counts new ones)
        self._repeat: _Repeat | None = None
        self._lines: _Lines | None = None
        self._keep = np.ones(0, bool)  # the samples the last append kept (refs not DROPPED)

    # -- cache misses --
    def _resolve(self, raw: bytes) -> int:
        try:
            name, pairs = parse_series(raw)
        except (ParseError, UnicodeDecodeError) as e:
            raise ScrapeError(f"invalid series {raw[:120]!r}: {e}") from None
        # interned: names and repeated values (methods, codes, metric names) are shared by every
        # series of every target instead of held once per series (~40% of a cached series)
        lb = {"__name__": sys.intern(name)}
        for k, v in pairs:
            if v:
                lb[sys.intern(k)] = sys.intern(v)
        self._merge_target(lb)
        if self.job.metric_relabel_configs:
            lb = relabel(lb, self.job.metric_relabel_configs)
            if lb is None:
                return DROPPED
        lb = {k: v for k, v in lb.items() if v}
        name = lb.get("__name__", "")
        if not name:
            return DROPPED
        if not _METRIC_NAME.match(name):
            raise ScrapeError(f"invalid metric name {name!r}")
        for k in lb:
            if not _LABEL_NAME.match(k) and k != "__name__":
                raise ScrapeError(f"invalid label name {k!r} of {name}")
        self._check_limits(lb, name)
        labels = tuple(map(_shared, sorted(lb.items())))
        ref = self._ref_of.get(labels)
        if ref is None:
            ref = self._ref_of[labels] = len(self.labels)
            self.labels.append(labels)
        return ref

    def _merge_target(self, lb: dict[str, str]) -> None:
        """Target labels over exposed ones: ``honor_labels`` keeps the exposed value; otherwise
        the exposed one moves to ``exported_<name>`` (Prometheus's ``mutateSampleLabels``)."""
        for k, v in self.target_labels.items():
            if k in lb and lb[k] != "" and not self.job.honor_labels:
                name = "exported_" + k
                while name in lb:
                    name = "exported_" + name
                lb[name] = lb[k]
                lb[k] = v
            elif k not in lb or not self.job.honor_labels:
                lb[k] = v

    def _check_limits(self, lb: dict[str, str], name: str) -> None:
        j = self.job
        if j.label_limit and len(lb) > j.label_limit:
            raise ScrapeError(f"label_limit exceeded (metric: {name}, number of labels: {len(lb)}, limit: {j.label_limit})")
        for k, v in lb.items():
            if j.label_name_length_limit and len(k) > j.label_name_length_limit:
                raise ScrapeError(f"label_name_length_limit exceeded (metric: {name}, label name: {k}, "
                                  f"length: {len(k)}, limit: {j.label_name_length_limit})")
            if j.label_value_length_limit and len(v) > j.label_value_length_limit:
                raise ScrapeError(f"label_value_length_limit exceeded (metric: {name}, label name: {k}, "
                                  f"value: {v[:100]!r}, length: {len(v)}, limit: {j.label_value_length_limit})")

    def ref_of(self, labels: Labels) -> int:
        ref = self._ref_of.get(labels)
        if ref is None:
            ref = self._ref_of[labels] = len(self.labels)
            self.labels.append(labels)
        return ref

    # -- one scrape --
    def lookup(self, series: list[bytes], known: dict[bytes, int] | None = None) -> np.ndarray:
        """Refs of the raw series texts (one dict lookup each; misses resolved and cached).
        ``known``: the dict to look in and cache in instead of :attr:`refs` (which is still
        looked in before resolving)."""
        cached = self.refs if known is None else known
        refs = np.fromiter(map(cached.get, series, itertools.repeat(_MISS)), np.int64, len(series))
        miss = np.flatnonzero(refs == _MISS)
        for i in miss.tolist():
            raw = series[i]
            ref = cached.get(raw)
            if ref is None:
                ref = self.refs.get(raw) if known is not None else None
                if ref is None:
                    ref = self._resolve(raw)
                cached[raw] = ref
            refs[i] = ref
        return refs

    def scrape(self, body: bytes, content_type: str, ts_ms: int, report: list[tuple[str, float]]) -> Appended:
        """Parse a scraped body (:class:`ParseError`) and :meth:`append` it; a text-format body
        with the last one's layout reuses that scrape's work."""
        layout = None if is_openmetrics(content_type) else split_layout(body)
        rep = self._repeat
        self._repeat = None  # until this scrape has succeeded
        if layout is not None and rep is not None and _digest(layout.skeleton) == rep.digest:
            out = self._append_repeat(rep, layout, ts_ms, report)
            if out is not None:
                self._repeat = rep
                return out
        parsed = parse(body, content_type, layout)
        if layout is None:
            return self.append(parsed, ts_ms, report)
        # texts known from the last layout's lines; those met first here are not kept in ``refs``
        known = self._lines.known() if self._lines is not None else {}
        refs = self.lookup(parsed.series, known)
        out = self.append(parsed, ts_ms, report, refs)
        self._lines = _Lines(layout, refs)
        self._repeat = self._remember(layout, out, report)
        return out

    def _append_repeat(self, rep: _Repeat, layout: Layout, ts_ms: int, report: list[tuple[str, float]]) -> Appended | None:
        """The batch of a body with ``rep``'s skeleton (the same series in the same order); None
        when the staleness state differs from the one after ``rep`` (the full path handles it)."""
        if tuple(n for n, _ in report) != rep.report[:len(report)] or len(report) + 3 != len(rep.report):
            return None
        if self.prev is not rep.now and len(np.setdiff1d(self.prev, rep.now, assume_unique=True)):
            return None  # series would go stale: the full path writes their markers
        n = len(layout)
        vals = layout.values if rep.keep is None else layout.values[rep.keep]
        extra = [v for _, v in report] + [float(n), float(rep.post), 0.0]
        values = np.concatenate([vals, np.array(extra, np.float64)])
        self.prev = rep.now
        batch = SampleBatch(series=rep.series, series_idx=rep.series_idx, ts_ms=np.full(len(values), ts_ms, np.int64),
                            values=values, metadata=rep.metadata, series_refs=rep.series_refs)
        return Appended(batch, n, rep.post, 0, rep.appended_md)

    def _remember(self, layout: Layout, out: Appended, report: list[tuple[str, float]]) -> _Repeat | None:
        """What the next scrape with this layout can reuse; None when this one wrote staleness
        markers (its batch holds series the next one will not)."""
        batch = out.batch
        n_rep = len(report) + 3
        if len(batch) != out.post_relabel + n_rep or batch.exemplars:
            return None
        keep = None if out.post_relabel == len(layout) else self._keep
        names = tuple(n for n, _ in report) + ("scrape_samples_scraped", "scrape_samples_post_metric_relabeling",
                                               "scrape_series_added")
        return _Repeat(_digest(layout.skeleton), keep, out.post_relabel, self.prev, names, batch, out.metadata)

    def append(self, parsed: Parsed, ts_ms: int, report: list[tuple[str, float]],
               refs: np.ndarray | None = None) -> Appended:
        """The batch of one successful scrape at ``ts_ms``: samples, staleness markers for series
        gone since the previous scrape, and the report series (``report``: name, value).
        ``refs``: those of ``parsed.series`` when the caller looked them up."""
        own = refs is None
        if refs is None:
            refs = self.lookup(parsed.series)
        keep = self._keep = refs >= 0
        post = int(keep.sum())
        if self.job.sample_limit and post > self.job.sample_limit:
            raise ScrapeError(f"sample limit exceeded (limit {self.job.sample_limit}, got {post})")
        refs_k = refs[keep]
        ts = parsed.ts_ms[keep]
        vals = parsed.values[keep]
        explicit = ts != NO_TS
        if self.job.honor_timestamps and explicit.any():
            ts = np.where(explicit, ts, ts_ms)
            tracked = refs_k[~explicit]  # series with their own timestamps get no staleness markers
        else:
            ts = np.full(len(refs_k), ts_ms, np.int64)
            tracked = refs_k
        added = self._count_added(refs_k)
        report = [*report, ("scrape_samples_scraped", float(len(parsed))),
                  ("scrape_samples_post_metric_relabeling", float(post)), ("scrape_series_added", float(added))]
        rep_refs, rep_vals = self._report_rows(report)
        # staleness: series in the previous scrape and not in this one
        now = np.union1d(tracked, rep_refs)
        gone = np.setdiff1d(self.prev, now, assume_unique=True)
        self.prev = now
        idx = np.concatenate([refs_k, rep_refs, gone])
        batch = self._batch(idx,
                            np.concatenate([ts, np.full(len(rep_refs) + len(gone), ts_ms, np.int64)]),
                            np.concatenate([vals, rep_vals, np.full(len(gone), STALE_NAN)]))
        if parsed.exemplars:
            pos = np.cumsum(keep) - 1  # line index -> row in the kept samples (the batch's first rows)
            local = batch.series_idx
            for ex in parsed.exemplars:
                if keep[ex.sample]:
                    batch.exemplars.append(Exemplar(int(local[pos[ex.sample]]), ex.labels, ex.value,
                                                    ex.ts_ms if ex.ts_ms != NO_TS else int(ts[pos[ex.sample]])))
        batch.metadata = [Metadata(fam, md["type"], md["help"], md["unit"]) for fam, md in parsed.metadata.items()]
        if own:
            self._prune(parsed.series)
        return Appended(batch, len(parsed), post, added, parsed.metadata)

    def failed(self, ts_ms: int, report: list[tuple[str, float]]) -> SampleBatch:
        """A failed scrape: report series only, and every series of the previous scrape goes stale."""
        rep_refs, rep_vals = self._report_rows(report)
        gone = np.setdiff1d(self.prev, rep_refs, assume_unique=True)
        self.prev = np.unique(rep_refs)
        idx = np.concatenate([rep_refs, gone])
        return self._batch(idx, np.full(len(idx), ts_ms, np.int64),
                           np.concatenate([rep_vals, np.full(len(gone), STALE_NAN)]))

    def stale_all(self, ts_ms: int) -> SampleBatch:
        """Staleness markers for every series of the last scrape (the target went away)."""
        gone, self.prev = self.prev, np.empty(0, np.int64)
        return self._batch(gone, np.full(len(gone), ts_ms, np.int64), np.full(len(gone), STALE_NAN))

    def carry_over(self, old: SeriesCache) -> None:
        """Continue the staleness tracking of ``old``, the same target's cache under its job's
        previous settings: series of its last scrape that the next scrape here does not produce
        go stale then (Prometheus keeps the scrape cache across a reload likewise)."""
        self.prev = np.unique(np.array([self.ref_of(old.labels[r]) for r in old.prev.tolist()], np.int64))

    # -- helpers --
    def _report_rows(self, report: list[tuple[str, float]]) -> tuple[np.ndarray, np.ndarray]:
        base = tuple(sorted(self.target_labels.items()))
        refs, vals = [], []
        for name, value in report:
            refs.append(self.ref_of(tuple(sorted(base + (("__name__", name),)))))
            vals.append(value)
        return np.array(refs, np.int64), np.array(vals, np.float64)

    def _count_added(self, refs: np.ndarray) -> int:
        if len(self.ever) < len(self.labels):
            self.ever = np.concatenate([self.ever, np.zeros(2 * len(self.labels) - len(self.ever) + 64, bool)])
        new = np.unique(refs[~self.ever[refs]])
        self.ever[new] = True
        return len(new)

    def _batch(self, idx: np.ndarray, ts: np.ndarray, vals: np.ndarray) -> SampleBatch:
        """A batch naming only the series it uses (the store's per-series work stays per batch)."""
        used, local = np.unique(idx, return_inverse=True)
        labels = self.labels
        return SampleBatch(series=[labels[r] for r in used.tolist()], series_idx=local.astype(np.int32),
                           ts_ms=ts.astype(np.int64, copy=False), values=vals.astype(np.float64, copy=False),
                           series_refs=SeriesRefs())

    def _prune(self, series: list[bytes]) -> None:
        """Forget raw texts not exposed in this scrape once the cache is much larger than a
        scrape (a target whose series churn must not grow it without bound)."""
        if len(self.refs) > 2 * len(series) + 1000:
            self.refs = {raw: self.refs[raw] for raw in series}
