"""``SeriesIndex``: one tenant's series, each with a dense id, its labels and postings.

Ids are handed out in first-seen order and never reused, so every postings list (the ids of the
series with one label value) is sorted by construction. Selecting series works like
Prometheus's index: an equality matcher reads one postings list; other matchers are evaluated
once per distinct value of their label, not once per series. Sets of ids are boolean masks
over all ids (10k series: 10 kB a mask), combined with numpy.

Locking: ``ids_of`` (which may add series) and ``match`` take the index's lock; the lists are
append-only, so a reader never sees a half-added series.
"""

from __future__ import annotations

import threading

import numpy as np

from kms.metrics.promql.model import Matcher
from kms.metrics.storage.labels import parse_labels_text

__all__ = ["SeriesIndex"]


class SeriesIndex:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids: dict[str, int] = {}
        self.labels: list[dict[str, str]] = []
        self._postings: dict[str, dict[str, list[int]]] = {}
        self._frozen: dict[tuple[str, str], np.ndarray] = {}  # postings as arrays, rebuilt when grown

    def __len__(self) -> int:
        return len(self.labels)

    def ids_of(self, texts: list[str]) -> np.ndarray:
        """Ids (int64) of the series with these label texts, adding the ones not seen yet."""
        ids = self._ids
        out = [ids.get(t, -1) for t in texts]
        if -1 in out:
            with self._lock:
                for i, t in enumerate(texts):
                    if out[i] < 0:
                        out[i] = self._add(t)
        return np.asarray(out, dtype=np.int64)

    def _add(self, text: str) -> int:
        sid = self._ids.get(text)
        if sid is not None:
            return sid
        labels = parse_labels_text(text)
        sid = len(self.labels)
        self.labels.append(labels)
        for k, v in labels.items():
            self._postings.setdefault(k, {}).setdefault(v, []).append(sid)
        self._ids[text] = sid  # last: a concurrent lookup finds only fully added series
        return sid

    def _posting(self, name: str, value: str) -> np.ndarray:
        ids = self._postings.get(name, {}).get(value)
        if not ids:
            return np.empty(0, dtype=np.int64)
        got = self._frozen.get((name, value))
        if got is None or len(got) != len(ids):
            got = self._frozen[(name, value)] = np.asarray(ids, dtype=np.int64)
        return got

    def match(self, matchers: list[Matcher]) -> np.ndarray:
        """Boolean mask over all ids: the series every matcher accepts (an absent label is "")."""
        with self._lock:
            n = len(self.labels)
            mask = np.ones(n, dtype=bool)
            for m in matchers:
                values = self._postings.get(m.name, {})
                if not m.matches(""):  # the series must carry a value the matcher accepts
                    keep = np.zeros(n, dtype=bool)
                    good = [m.value] if m.op == "=" else [v for v in values if m.matches(v)]
                    for v in good:
                        keep[self._posting(m.name, v)] = True
                    mask &= keep
                else:  # drop the series whose value the matcher refuses
                    bad = [v for v in values if v != m.value] if m.op == "=" else [
                        v for v in values if not m.matches(v)
                    ]
                    for v in bad:
                        mask[self._posting(m.name, v)] = False
                if not mask.any():
                    break
            return mask
