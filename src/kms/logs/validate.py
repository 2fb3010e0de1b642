"""Loki's push validation (``pkg/validation``), with its defaults and its wording.

A request is refused whole (400, nothing stored) when any entry is invalid: the messages name
the stream and the numbers involved, as Loki's do. ``Validator`` keeps, per tenant and stream,
the newest accepted timestamp for the out-of-order window (in memory: after a restart the window
starts afresh, accepting what the WAL would have). Thread-safe.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from kms.errors import BadInput
from kms.logs.batch import LogBatch

__all__ = ["LogLimits", "Validator", "LogRejected", "MAX_TRACKED_STREAMS"]

_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
#: Streams tracked for the out-of-order window before quiet ones are pruned (~100 B each).
MAX_TRACKED_STREAMS = 100_000


class LogRejected(BadInput):
    """An invalid entry; ``reason`` is Loki's discarded-samples reason."""


@dataclass
class LogLimits:
    """Loki's ``limits_config`` defaults. Durations in seconds; 0 disables a time check."""

    max_line_size: int = 256 * 1024
    max_label_names_per_series: int = 15
    max_label_name_length: int = 1024
    max_label_value_length: int = 2048
    max_structured_metadata_size: int = 64 * 1024
    max_structured_metadata_entries: int = 128
    reject_old_samples_max_age_s: float = 7 * 86400.0
    creation_grace_period_s: float = 600.0
    out_of_order_window_s: float = 3600.0  # Loki: max_chunk_age / 2


def _ts(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Validator:
    def __init__(self, limits: LogLimits | None = None):
        self.limits = limits or LogLimits()
        self._newest: dict[tuple[str, str], int] = {}  # (tenant, stream text) -> newest accepted ns
        self._lock = threading.Lock()

    def check(self, tenant: str, batch: LogBatch, now_ns: int) -> None:
        """Raise LogRejected for the first invalid stream or entry."""
        lim = self.limits
        too_old = now_ns - int(lim.reject_old_samples_max_age_s * 1e9) if lim.reject_old_samples_max_age_s else None
        too_new = now_ns + int(lim.creation_grace_period_s * 1e9) if lim.creation_grace_period_s else None
        window = int(lim.out_of_order_window_s * 1e9)
        for s in batch.streams:
            text = s.text
            self._check_labels(s.labels, text)
            if not s.times:
                continue
            lo, hi = min(s.times), max(s.times)
            if too_old is not None and lo < too_old:
                raise LogRejected(
                    f"entry for stream '{text}' has timestamp too old: {_ts(lo)}, oldest acceptable "
                    f"timestamp is: {_ts(too_old)}", reason="greater_than_max_sample_age")
            if too_new is not None and hi > too_new:
                raise LogRejected(f"entry for stream '{text}' has timestamp too new: {_ts(hi)}",
                                  reason="too_far_in_future")
            if window:
                with self._lock:
                    newest = self._newest.get((tenant, text))
                if newest is not None and lo < newest - window:
                    raise LogRejected(
                        f"entry too far behind, entry timestamp is: {_ts(lo)}, oldest acceptable timestamp is: "
                        f"{_ts(newest - window)}", reason="too_far_behind")
            if lim.max_line_size:
                sizes = s.line_bytes()
                over = np.flatnonzero(sizes > lim.max_line_size)
                if len(over):
                    raise LogRejected(
                        f"Max entry size '{lim.max_line_size}' bytes exceeded for stream '{text}' while adding "
                        f"an entry with length '{int(sizes[over[0]])}' bytes", reason="line_too_long")
            if s.meta_counts is not None:  # metadata already as texts: their counts and sizes
                bad = np.flatnonzero((s.meta_counts > (lim.max_structured_metadata_entries or 1 << 62))
                                     | (s.meta_sizes > (lim.max_structured_metadata_size or 1 << 62)))
                if len(bad):
                    self._check_metadata_size(int(s.meta_counts[bad[0]]), int(s.meta_sizes[bad[0]]), text)
            for md in s.metadata:
                if md:
                    self._check_metadata(md, text)

    def _check_labels(self, labels: dict[str, str], text: str) -> None:
        lim = self.limits
        if not labels:
            raise LogRejected("error at least one label pair is required per stream", reason="missing_labels")
        if lim.max_label_names_per_series and len(labels) > lim.max_label_names_per_series:
            raise LogRejected(
                f"entry for stream '{text}' has {len(labels)} label names; limit {lim.max_label_names_per_series}",
                reason="max_label_names_per_series")
        for k, v in labels.items():
            if not _NAME.match(k):
                raise LogRejected(f"error parsing labels '{text}' with error: invalid label name {k!r}",
                                  reason="invalid_labels")
            if lim.max_label_name_length and len(k) > lim.max_label_name_length:
                raise LogRejected(f"stream '{text}' has label name too long: '{k}'", reason="label_name_too_long")
            if lim.max_label_value_length and len(v) > lim.max_label_value_length:
                raise LogRejected(f"stream '{text}' has label value too long: '{v}'", reason="label_value_too_long")

    def _check_metadata(self, md: dict[str, str], text: str) -> None:
        self._check_metadata_size(len(md), sum(map(len, md)) + sum(map(len, md.values())), text)

    def _check_metadata_size(self, count: int, size: int, text: str) -> None:
        """Loki's limits on an entry's structured metadata: ``count`` pairs of ``size`` characters."""
        lim = self.limits
        if lim.max_structured_metadata_entries and count > lim.max_structured_metadata_entries:
            raise LogRejected(
                f"stream '{text}' has too many structured metadata labels: '{count}', limit: "
                f"'{lim.max_structured_metadata_entries}'. Please see `limits_config.max_structured_metadata_entries_count` "
                "or contact your Loki administrator to increase it.", reason="structured_metadata_too_many")
        if lim.max_structured_metadata_size and size > lim.max_structured_metadata_size:
            raise LogRejected(
                f"stream '{text}' has structured metadata too large: '{size}' bytes, limit: "
                f"'{lim.max_structured_metadata_size}'. Please see `limits_config.max_structured_metadata_size` "
                "or contact your Loki administrator to increase it.", reason="structured_metadata_too_large")

    def accepted(self, tenant: str, batch: LogBatch) -> None:
        """Record the newest times of a stored batch (after the append succeeded). Streams quiet
        for longer than the window are forgotten once many are tracked (their next entry is
        accepted whatever its time, as after a restart), so churning streams do not pile up."""
        if not self.limits.out_of_order_window_s:
            return
        with self._lock:
            for s in batch.streams:
                if s.times:
                    key = (tenant, s.text)
                    hi = max(s.times)
                    if hi > self._newest.get(key, -(2**63)):
                        self._newest[key] = hi
            if len(self._newest) > MAX_TRACKED_STREAMS:
                horizon = max(self._newest.values()) - int(2 * self.limits.out_of_order_window_s * 1e9)
                self._newest = {k: t for k, t in self._newest.items() if t >= horizon}
