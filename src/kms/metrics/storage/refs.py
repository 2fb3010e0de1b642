"""``TenantSeries``: one tenant's write-side series table, the counterpart of Prometheus's series refs.

Scrapes and remote-write clients send the same label sets in every request. Each label set gets
a dense ref (int) once, and everything derived from it is kept per ref, so a repeated series
costs one dict lookup a write and the rest is numpy over the batch's refs:

- ``texts`` / ``names``: the canonical label text (``series`` column) and ``__name__`` (``metric``
  column), also as Arrow arrays, so the columns of a samples table are two ``take``s by ref;
- ``last_t`` / ``last_v``: the newest stored sample (ms, value bits), for the append rules;
- ``valid``: the label set passed ``SeriesLimits`` with the limits in ``valid_key``; when the
  limits change, every flag is cleared and each series is checked again when next written.

Refs are handed out in first-seen order and never reused or dropped while the process runs (the
per-tenant series limit counts them), so nothing cached by ref can go stale. Rebuilt from nothing
at start, like the admission state it serves.

Locking: ``lock`` is held by the writer while it looks up, checks, registers and commits; the
lists are append-only (a ref, once read, always names the same series), so ``texts`` and
``names`` may be read without it; their Arrow copies are replaced whole under ``_cols_lock``.
"""

from __future__ import annotations

import itertools
import threading

import numpy as np
import pyarrow as pa

from kms.metrics.samples import Labels, SeriesRefs
from kms.metrics.storage.labels import labels_text

__all__ = ["TenantSeries", "NO_REF", "NO_TIME"]

NO_REF = -1  # a label set without a ref (not seen, or only with exemplars)
NO_TIME = np.iinfo(np.int64).min  # ``last_t`` of a series without a stored sample


class TenantSeries:
    def __init__(self, capacity: int = 1024) -> None:
        self.lock = threading.Lock()
        self.ids: dict[Labels, int] = {}
        self._objs: list[Labels] = []  # per ref: the tuple known by identity
        self._by_obj: dict[int, int] = {}  # id() of a tuple in ``_objs`` -> its ref
        self.texts: list[str] = []
        self.names: list[str] = []
        self.last_t = np.full(capacity, NO_TIME, np.int64)
        self.last_v = np.zeros(capacity, np.uint64)  # value bits
        self.valid = np.zeros(capacity, bool)
        self.valid_key: tuple | None = None
        self._cols_lock = threading.Lock()
        _empty = pa.array([], pa.string())
        self._cols: tuple[int, pa.Array, pa.Array] = (0, _empty, _empty)  # see ``_arrays``

    def __len__(self) -> int:
        return len(self.texts)

    def refs(self, series: list[Labels], memo: SeriesRefs | None = None) -> np.ndarray:
        """The ref of each label set (int64; ``NO_REF`` where it has none). Call with ``lock`` held.

        ``memo``: the producer's memo of this list; filled here before (:meth:`remember`), it
        gives the refs at once (a scrape's 2,000 series: ~0.25 µs a series less, bench_scrape).

        Producers keep their label tuples (the scrape series cache, remote write's label cache),
        so a label set is looked up by the identity of its tuple first (78 ns against 270 ns
        for hashing a 7-label tuple, measured on bench_scrape.py's series), then by value; a
        tuple found by value becomes the one known by identity."""
        if memo is not None and memo.owner is self and memo.refs is not None:
            return memo.refs.copy()
        n = len(series)
        by_obj = self._by_obj
        out = np.fromiter(map(by_obj.get, map(id, series), itertools.repeat(NO_REF)), np.int64, n)
        miss = np.flatnonzero(out < 0)
        if len(miss):
            ids = self.ids
            for i in miss.tolist():
                labels = series[i]
                ref = ids.get(labels)
                if ref is not None:
                    out[i] = ref
                    self._pin(ref, labels)
        return out

    def _pin(self, ref: int, labels: Labels) -> None:
        """Know ``ref`` by the identity of ``labels`` from now on. ``_objs`` holds the tuple, so
        its id cannot be reused by another object while ``_by_obj`` maps it."""
        old = self._objs[ref]
        if self._by_obj.get(id(old)) == ref:
            del self._by_obj[id(old)]
        self._objs[ref] = labels
        self._by_obj[id(labels)] = ref

    def add(self, labels: Labels, valid: bool) -> int:
        """The ref of ``labels``, registered now if new. Call with ``lock`` held."""
        ref = self.ids.get(labels)
        if ref is not None:
            return ref
        ref = len(self.texts)
        self._grow(ref + 1)
        self._objs.append(labels)
        self._by_obj[id(labels)] = ref
        self.texts.append(labels_text(labels))
        self.names.append(next((v for k, v in labels if k == "__name__"), ""))
        self.valid[ref] = valid
        self.ids[labels] = ref  # last: a lookup without the lock finds only complete entries
        return ref

    def remember(self, memo: SeriesRefs | None, refs: np.ndarray) -> None:
        """Keep ``refs`` in the producer's ``memo`` when every series has one. Call with ``lock`` held."""
        if memo is not None and not (memo.owner is self and memo.refs is not None) and bool((refs >= 0).all()):
            memo.found(self, refs.copy())

    def unchecked(self, refs: np.ndarray, key: tuple) -> np.ndarray:
        """Positions in ``refs`` whose label sets have not passed the limits ``key`` (every
        position without a ref among them). Call with ``lock`` held."""
        if key != self.valid_key:
            self.valid[:] = False
            self.valid_key = key
        known = refs >= 0
        ok = np.zeros(len(refs), bool)
        ok[known] = self.valid[refs[known]]
        return np.flatnonzero(~ok)

    def mark_valid(self, refs: np.ndarray) -> None:
        """These refs (``NO_REF`` ignored) passed the limits in ``valid_key``. Call with ``lock`` held."""
        self.valid[refs[refs >= 0]] = True

    def columns(self, refs: np.ndarray, series: list[Labels], memo: SeriesRefs | None = None
                ) -> tuple[pa.Array, pa.Array]:
        """``(texts, names)`` of ``series`` (whose refs are ``refs``) as Arrow string arrays:
        taken from the per-ref arrays when every series has a ref held there, else built.
        ``memo`` (filled by :meth:`refs`): they are kept there, or joined from its parts'."""
        mine = memo is not None and memo.owner is self and memo.refs is not None and len(memo.refs) == len(refs)
        if mine and memo.columns is not None:
            return memo.columns
        if mine and memo.parts and sum(hi - lo for _, lo, hi in memo.parts) == len(refs) and all(
                m.owner is self and m.columns is not None for m, _, _ in memo.parts):
            memo.columns = tuple(pa.concat_arrays([m.columns[i] for m, _, _ in memo.parts]) for i in range(2))
            return memo.columns
        cols = self._columns(refs, series)
        if mine:
            memo.found(self, memo.refs, cols)
        return cols

    def _columns(self, refs: np.ndarray, series: list[Labels]) -> tuple[pa.Array, pa.Array]:
        if len(refs) and int(refs.min()) >= 0:
            built, texts, names = self._arrays(int(refs.max()))
            if int(refs.max()) < built:
                at = pa.array(refs, pa.int64())
                return texts.take(at), names.take(at)
        out_t, out_n = [], []
        for r, labels in zip(refs.tolist(), series, strict=True):
            if r >= 0:
                out_t.append(self.texts[r])
                out_n.append(self.names[r])
            else:
                out_t.append(labels_text(labels))
                out_n.append(next((v for k, v in labels if k == "__name__"), ""))
        return pa.array(out_t, pa.string()), pa.array(out_n, pa.string())

    def _arrays(self, wanted: int) -> tuple[int, pa.Array, pa.Array]:
        """``(n, texts, names)``: Arrow arrays of the first ``n`` refs' texts and names. They are
        extended when ``wanted`` is past them and the refs not yet in them are at least an
        eighth of those that are, so the copying costs O(1) a series however a tenant grows; a
        batch with a series not in them builds its columns from the lists (as every write
        did before these arrays: ~150 ns a series more than a ``take``, on bench_scrape.py's series)."""
        got = self._cols
        if wanted < got[0]:
            return got
        with self._cols_lock:
            got = self._cols
            n = len(self.texts)
            if wanted < got[0] or 8 * (n - got[0]) < got[0]:
                return got
            try:
                got = (n, pa.concat_arrays([got[1], pa.array(self.texts[got[0]:n], pa.string())]),
                       pa.concat_arrays([got[2], pa.array(self.names[got[0]:n], pa.string())]))
            except pa.ArrowException:  # over 2 GiB of label text: the lists serve
                return got
            self._cols = got
            return got

    def _grow(self, n: int) -> None:
        if n <= len(self.last_t):
            return
        size = max(n, 2 * len(self.last_t))
        extra = size - len(self.last_t)
        self.last_t = np.concatenate([self.last_t, np.full(extra, NO_TIME, np.int64)])
        self.last_v = np.concatenate([self.last_v, np.zeros(extra, np.uint64)])
        self.valid = np.concatenate([self.valid, np.zeros(extra, bool)])
