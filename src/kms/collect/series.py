"""One target's scraped series: raw line text -> final label set, and staleness between scrapes.

Each scrape of a target exposes (almost) the same series lines, so the work of turning a raw series
text into its final labels (unescaping, target labels, ``honor_labels``, ``metric_relabel_configs``,
name and limit checks) is done once per distinct text and cached by it, as Prometheus's scrape
cache does. A scrape then costs a dict lookup per line and numpy work per batch.

Refs index :attr:`SeriesCache.labels`; :data:`DROPPED` marks a text that metric relabeling drops.
Not thread-safe: one cache per scrape loop.
"""

from __future__ import annotations

import itertools
import re
import sys

import numpy as np

from kms.collect.config import ScrapeJob
from kms.collect.exposition import NO_TS, Parsed, ParseError, parse_series
from kms.collect.relabel import relabel
from kms.metrics.samples import STALE_NAN, Exemplar, Labels, Metadata, SampleBatch

__all__ = ["DROPPED", "ScrapeError", "SeriesCache", "Appended"]

DROPPED = -1
_MISS = -2
_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")


class ScrapeError(Exception):
    """The scrape fails as a whole (limit exceeded, invalid series): ``up`` is 0 and nothing is stored."""


class Appended:
    """What one scrape produced: the batch to store and the figures for the report series."""

    __slots__ = ("batch", "scraped", "post_relabel", "added")

    def __init__(self, batch: SampleBatch, scraped: int, post_relabel: int, added: int):
        self.batch, self.scraped, self.post_relabel, self.added = batch, scraped, post_relabel, added


class SeriesCache:
    def __init__(self, job: ScrapeJob, target_labels: Labels):
        self.job = job
        self.target_labels = dict(target_labels)
        self.refs: dict[bytes, int] = {}
        self.labels: list[Labels] = []
        self._ref_of: dict[Labels, int] = {}
        self.prev = np.empty(0, np.int64)  # refs of the previous scrape (for staleness)
        self.ever = np.zeros(0, bool)  # by ref: ever stored (scrape_series_added counts new ones)
        self._local: dict[int, int] = {}  # ref -> series index in the last batch built

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
        labels = tuple(sorted(lb.items()))
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
    def lookup(self, series: list[bytes]) -> np.ndarray:
        """Refs of the raw series texts (one dict lookup each; misses resolved and cached)."""
        refs = np.fromiter(map(self.refs.get, series, itertools.repeat(_MISS)), np.int64, len(series))
        miss = np.flatnonzero(refs == _MISS)
        for i in miss.tolist():
            raw = series[i]
            ref = self.refs.get(raw)
            if ref is None:
                ref = self.refs[raw] = self._resolve(raw)
            refs[i] = ref
        return refs

    def append(self, parsed: Parsed, ts_ms: int, report: list[tuple[str, float]]) -> Appended:
        """The batch of one successful scrape at ``ts_ms``: samples, staleness markers for series
        gone since the previous scrape, and the report series (``report``: name, value)."""
        refs = self.lookup(parsed.series)
        keep = refs >= 0
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
            pos = np.cumsum(keep) - 1  # line index -> row in the kept samples
            local = self._local
            for ex in parsed.exemplars:
                if keep[ex.sample]:
                    ref = int(refs_k[pos[ex.sample]])
                    batch.exemplars.append(Exemplar(local[ref], ex.labels, ex.value,
                                                    ex.ts_ms if ex.ts_ms != NO_TS else int(ts[pos[ex.sample]])))
        batch.metadata = [Metadata(fam, md["type"], md["help"], md["unit"]) for fam, md in parsed.metadata.items()]
        self._prune(parsed.series)
        return Appended(batch, len(parsed), post, added)

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
        self._local = dict(zip(used.tolist(), range(len(used)), strict=True))
        return SampleBatch(series=[labels[r] for r in used.tolist()], series_idx=local.astype(np.int32),
                           ts_ms=ts.astype(np.int64, copy=False), values=vals.astype(np.float64, copy=False))

    def _prune(self, series: list[bytes]) -> None:
        """Forget raw texts not exposed in this scrape once the cache is much larger than a
        scrape (a target whose series churn must not grow it without bound)."""
        if len(self.refs) > 2 * len(series) + 1000:
            self.refs = {raw: self.refs[raw] for raw in series}
