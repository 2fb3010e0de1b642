"""glibc's malloc tuning (``mallopt``) for the two process shapes: the stack keeps freed memory
for reuse, the agent gives it back. Elsewhere than glibc nothing changes."""

from __future__ import annotations

import ctypes

__all__ = ["keep_freed_memory", "release_large_buffers"]

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def _set(param: int, value: int) -> None:
    try:
        ctypes.CDLL(None).mallopt(param, value)
    except (OSError, AttributeError):
        pass


def keep_freed_memory() -> None:
    """Serve blocks under 32 MiB from the heap and give its top back only past 64 MiB free. By
    default glibc maps large blocks on their own and unmaps them when freed, and pages touched for
    the first time cost ~10 µs each on this kind of VM: the stack faulted in every request's and
    every block cut's buffers anew (bench_logs_ingest --otlp: 19.4 MB/s of lines per core,
    37-39 with this). Blocks of 32 MiB and more are still mapped alone and returned when freed."""
    _set(_M_MMAP_THRESHOLD, 32 << 20)
    _set(_M_TRIM_THRESHOLD, 64 << 20)


def release_large_buffers() -> None:
    """Map every allocation of 64 KiB or more on its own, so it goes back to the system when
    freed. By default the threshold follows the largest block freed (up to 32 MiB), after which
    scrape bodies and their numpy temporaries come from the heap, which keeps the freed space
    (bench_agent, 100 scraped targets: a peak of 131-132 MiB in five runs, 132-142 without)."""
    _set(_M_MMAP_THRESHOLD, 64 << 10)
