"""A bounded load generator, like siege: ``concurrency`` workers share a request rate for a duration
(or a request count), and the run ends with a summary of status codes and latency percentiles."""

from __future__ import annotations

import random
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

__all__ = ["LoadSettings", "LoadStats", "run_load"]


@dataclass
class LoadSettings:
    url: str  # a base URL; each request picks one of ``paths``
    paths: list[str]
    concurrency: int = 4
    rate: float = 5.0  # requests per second across all workers; 0 = as fast as the workers go
    duration_s: float = 600.0  # 0 = until ``requests`` are done (or stopped)
    requests: int = 0  # 0 = no count bound
    timeout_s: float = 15.0


@dataclass
class LoadStats:
    statuses: Counter = field(default_factory=Counter)
    latencies_s: list[float] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.statuses.values())

    def summary(self) -> str:
        lat = np.array(self.latencies_s or [0.0]) * 1000
        p50, p90, p99 = np.percentile(lat, [50, 90, 99])
        codes = ", ".join(f"{code}: {n}" for code, n in sorted(self.statuses.items(), key=lambda kv: str(kv[0])))
        rate = self.total / self.elapsed_s if self.elapsed_s else 0.0
        return (f"{self.total} requests in {self.elapsed_s:.1f}s ({rate:.1f}/s); status {codes}; "
                f"latency p50 {p50:.0f} ms, p90 {p90:.0f} ms, p99 {p99:.0f} ms, max {lat.max():.0f} ms")


def run_load(s: LoadSettings, stop: threading.Event | None = None) -> LoadStats:
    """Drive ``s.url`` until the duration or request count is reached or ``stop`` is set."""
    stop = stop or threading.Event()
    stats = LoadStats()
    lock = threading.Lock()
    issued = 0
    t0 = time.monotonic()
    interval = 1.0 / s.rate if s.rate > 0 else 0.0

    def next_slot() -> float | None:
        """The start time of the next request (a shared schedule keeps the total rate), None when done."""
        nonlocal issued
        with lock:
            if (s.requests and issued >= s.requests) or stop.is_set():
                return None
            slot = t0 + issued * interval
            if s.duration_s and slot - t0 >= s.duration_s:
                return None
            issued += 1
            return slot

    def worker() -> None:
        while (slot := next_slot()) is not None:
            if (wait := slot - time.monotonic()) > 0 and stop.wait(wait):
                return
            url = s.url.rstrip("/") + random.choice(s.paths)
            start = time.monotonic()
            try:
                with urllib.request.urlopen(url, timeout=s.timeout_s) as resp:
                    resp.read()
                    status: int | str = resp.status
            except urllib.error.HTTPError as e:
                status = e.code
            except (urllib.error.URLError, OSError) as e:
                status = type(getattr(e, "reason", e)).__name__
            with lock:
                stats.statuses[status] += 1
                stats.latencies_s.append(time.monotonic() - start)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(max(1, s.concurrency))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stats.elapsed_s = time.monotonic() - t0
    return stats
