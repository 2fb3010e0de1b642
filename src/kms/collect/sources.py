"""Every target source of one job: ``static_configs``, ``file_sd_configs`` and
``kubernetes_sd_configs``, behind the one ``poll()``/``sets()`` shape the scrape manager reads.

Kubernetes discoveries come from the manager's :class:`~kms.kube.DiscoveryFactory` (jobs with the
same credentials share watches). They are made at construction, so missing credentials fail there
(:class:`~kms.errors.BadInput`), and started by :meth:`JobSources.start`, which waits (bounded)
until each has listed: a job's first targets are then the cluster's, not an empty set that would
fill in one poll later.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from kms.collect.config import ScrapeJob
from kms.collect.discovery import FileDiscovery, discovered_sets
from kms.kube import DiscoveryFactory, KubernetesDiscovery

__all__ = ["JobSources", "in_parallel"]

log = logging.getLogger("kms.collect")


def in_parallel(fns: list[Callable[[], None]]) -> None:
    """Run blocking calls (stopping watches) at once, each in its own thread, and wait for all."""
    threads = [threading.Thread(target=fn, daemon=True) for fn in fns]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


class JobSources:
    def __init__(self, job: ScrapeJob, kube: DiscoveryFactory, on_change: Callable[[], None] | None = None):
        self.job = job
        self.files = [FileDiscovery(sd) for sd in job.file_sd_configs]
        self.kube: list[KubernetesDiscovery] = [kube.discovery(sd, on_change=on_change)
                                                for sd in job.kubernetes_sd_configs]

    def start(self, deadline: float) -> None:
        """Start the Kubernetes watches and wait until each has listed or ``deadline``
        (``time.monotonic()``) passes; one that has not is logged and fills in when it lists."""
        for d in self.kube:
            d.start()
        for i, d in enumerate(self.kube):
            if not d.wait_synced(max(0.0, deadline - time.monotonic())):
                log.warning("job %s: kubernetes_sd_configs[%d] (role %s) has not listed yet: %s", self.job.job_name,
                            i, d.sd.role, "; ".join(d.errors) or "no answer")

    def stop(self) -> None:
        in_parallel([d.stop for d in self.kube])

    def poll(self) -> bool:
        """True if any source changed since the previous poll."""
        changed = False
        for f in self.files:
            changed |= f.poll()
        for d in self.kube:
            changed |= d.poll()
        return changed

    def sets(self) -> list[dict[str, str]]:
        """Every discovered label set: static groups, file SD, then Kubernetes SD."""
        out = discovered_sets(self.job, self.files)
        for d in self.kube:
            out += d.sets()
        return out
