"""Write admission: per-tenant ingestion rate and a process memory limiter (like the Collector's)."""

from __future__ import annotations

import threading
import time

import psutil

from kms.errors import BadInput, LimitExceeded

__all__ = ["RateLimiter", "MemoryLimiter", "SeriesLimits"]


class RateLimiter:
    """A token bucket per key (tenant, or tenant + stream for Loki's per-stream rate), in bytes.
    Thread-safe.

    A bucket idle long enough to have refilled completely is the same as no bucket, so at most
    every ``sweep_interval_s`` the full ones are dropped: keys that come and go (log streams)
    do not grow the map without bound."""

    def __init__(self, rate_bytes: float, burst_bytes: float, sweep_interval_s: float = 60.0,
                 clock=time.monotonic):
        self.rate = float(rate_bytes)
        self.burst = float(max(burst_bytes, rate_bytes))
        self.sweep_interval_s = sweep_interval_s
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last refill monotonic s)
        self._swept = clock()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._buckets)

    def _sweep(self, now: float) -> None:
        """Drops the buckets that are full by now. Call with the lock held."""
        self._swept = now
        full = [k for k, (tokens, last) in self._buckets.items() if tokens + (now - last) * self.rate >= self.burst]
        for k in full:
            del self._buckets[k]

    def take(self, tenant: str, n: int) -> None:
        if self.rate <= 0:
            return
        with self._lock:
            now = self._clock()
            if now - self._swept >= self.sweep_interval_s:
                self._sweep(now)
            tokens, last = self._buckets.get(tenant, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if n > tokens:
                self._buckets[tenant] = (tokens, now)
                wait = (n - tokens) / self.rate
                raise LimitExceeded(
                    f"tenant {tenant!r} exceeds its ingestion rate limit of {int(self.rate)} bytes/s "
                    f"(burst {int(self.burst)}); retry later or raise limits.ingestion_rate_bytes",
                    reason="rate_limited",
                    retry_after_s=max(1.0, wait),
                )
            self._buckets[tenant] = (tokens - n, now)


class MemoryLimiter:
    """Refuses writes while the process's resident memory is above the limit.

    RSS is sampled at most every ``interval_s`` (reading it costs ~20 µs), so a burst can
    overshoot by what arrives within one interval.
    """

    def __init__(self, limit_bytes: int, interval_s: float = 0.5):
        self.limit = limit_bytes
        self.interval = interval_s
        self._proc = psutil.Process()
        self._checked = 0.0
        self._rss = 0

    @classmethod
    def from_mib(cls, mib: int) -> MemoryLimiter:
        limit = mib * 1024 * 1024 if mib > 0 else int(psutil.virtual_memory().total * 0.8)
        return cls(limit)

    def rss(self) -> int:
        now = time.monotonic()
        if now - self._checked >= self.interval:
            self._rss = self._proc.memory_info().rss
            self._checked = now
        return self._rss

    def check(self) -> None:
        rss = self.rss()
        if rss > self.limit:
            raise LimitExceeded(
                f"memory limit reached ({rss // 2**20} MiB resident > {self.limit // 2**20} MiB); retry later",
                reason="memory_limit",
                retry_after_s=5.0,
            )


class SeriesLimits:
    """Per-series validation of metric writes, with Mimir's defaults and wording. A request
    with one offending series is refused whole (400, never retried): nothing of it is stored.
    The metric write path calls ``check`` only for label sets not yet passed under ``key``."""

    def __init__(self, max_label_names: int = 30, max_name_length: int = 1024, max_value_length: int = 2048):
        self.max_label_names = max_label_names
        self.max_name_length = max_name_length
        self.max_value_length = max_value_length

    @property
    def key(self) -> tuple[int, int, int]:
        """The limits as one value: writers remember which label sets passed under which key
        (``SampleAdmission``), so a change of any limit has every series checked again."""
        return self.max_label_names, self.max_name_length, self.max_value_length

    @staticmethod
    def _fmt(labels) -> str:
        text = "{" + ", ".join(f'{k}="{v}"' for k, v in labels) + "}"
        return text if len(text) <= 200 else text[:200] + "…"

    def check(self, series) -> None:
        """``series``: label sets, each a sequence of (name, value) pairs."""
        for labels in series:
            if len(labels) > self.max_label_names:
                raise BadInput(
                    f"received a series whose number of labels exceeds the limit (actual: {len(labels)}, "
                    f"limit: {self.max_label_names}) series: '{self._fmt(labels)}' "
                    "(err-mimir-max-label-names-per-series; raise limits.max_label_names_per_series)",
                    reason="max_label_names_per_series",
                )
            for name, value in labels:
                if len(name) > self.max_name_length:
                    raise BadInput(
                        f"received a series whose label name length exceeds the limit (limit: "
                        f"{self.max_name_length}), label: '{name[:200]}' series: '{self._fmt(labels)}' "
                        "(err-mimir-label-name-too-long)",
                        reason="label_name_too_long",
                    )
                if len(value) > self.max_value_length:
                    raise BadInput(
                        f"received a series whose label value length exceeds the limit (limit: "
                        f"{self.max_value_length}), value: '{value[:200]}' (truncated) series: "
                        f"'{self._fmt(labels)}' (err-mimir-label-value-too-long)",
                        reason="label_value_too_long",
                    )
