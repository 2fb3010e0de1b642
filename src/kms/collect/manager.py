"""The scrape manager: jobs -> discovered targets -> one scrape loop per target.

It runs its own event loop in one thread (fetches never wait behind the API's requests), parses
in ``workers`` threads (one by default: parsing holds the GIL, and a second worker only added
switching, bench_scrape) and stores through one :class:`~kms.collect.writer.BatchWriter`. Discovery is re-checked every ``poll_s``: a target that
appears gets a loop, one that disappears is stopped and its series marked stale, one that stays
keeps its loop (and its series cache). Shutting down marks nothing stale: a restart resumes the
same series, as Prometheus does.

Thread safety: the tables the targets page reads (``_loops``, ``_dropped``) are replaced whole,
never mutated, so readers in other threads need no lock.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from kms.collect.client import ScrapeClient
from kms.collect.config import ScrapeJob
from kms.collect.discovery import FileDiscovery, discovered_sets
from kms.collect.loop import ScrapeLoop
from kms.collect.targets import DroppedTarget, Target, populate
from kms.collect.writer import BatchWriter
from kms.errors import BadInput
from kms.metrics.samples import SampleBatch

__all__ = ["ScrapeManager"]

log = logging.getLogger("kms.collect")


class ScrapeManager:
    def __init__(self, jobs: list[ScrapeJob], sink: Callable[[SampleBatch], object], workers: int = 1,
                 poll_s: float = 1.0, seed: int = 0):
        self.jobs = {j.job_name: j for j in jobs}
        self.sink = sink
        self.poll_s = poll_s
        self.seed = seed  # Prometheus mixes a per-server seed into the offsets; 0 keeps them fixed
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kms-scrape")
        self.writer: BatchWriter | None = None
        self._files = {name: [FileDiscovery(sd) for sd in j.file_sd_configs] for name, j in self.jobs.items()}
        self._loops: dict[str, dict[int, ScrapeLoop]] = {name: {} for name in self.jobs}
        self._dropped: dict[str, list[DroppedTarget]] = {name: [] for name in self.jobs}
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()

    # -- lifecycle --
    def start(self) -> None:
        if not self.jobs:
            return
        self.writer = BatchWriter(self.sink)
        self._thread = threading.Thread(target=self._thread_main, name="kms-scrape-manager", daemon=True)
        self._thread.start()
        self._started.wait(10)

    def _thread_main(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            for name in self.jobs:
                try:
                    self._poll_files(name)
                    await self._sync(name)
                except Exception:  # noqa: BLE001 - logged; the other jobs still start
                    log.exception("job %s: target discovery", name)
        finally:
            self._started.set()
        while not self._stop.is_set():
            try:
                await asyncio.wait_for(self._stop.wait(), self.poll_s)
            except TimeoutError:
                pass
            for name in self.jobs:
                try:
                    if self._poll_files(name):
                        await self._sync(name)
                except Exception:  # noqa: BLE001 - a bug in one job's discovery must not stop the others
                    log.exception("job %s: target discovery", name)
        for loops in self._loops.values():
            await asyncio.gather(*(lp.stop(stale=False) for lp in loops.values()))
            await asyncio.gather(*(lp.client.close() for lp in loops.values()))

    def stop(self) -> None:
        if self._thread is None:
            return
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)
        self.executor.shutdown(wait=True)
        if self.writer is not None:
            self.writer.close()
        self._thread = None

    # -- discovery --
    def _poll_files(self, name: str) -> bool:
        changed = False
        for f in self._files[name]:
            changed |= f.poll()
        return changed

    async def _sync(self, name: str) -> None:
        job = self.jobs[name]
        targets: dict[int, Target] = {}
        dropped: list[DroppedTarget] = []
        for lb in discovered_sets(job, self._files[name]):
            try:
                t = populate(job, lb)
            except BadInput as e:
                log.warning("job %s: target %s dropped: %s", name, lb.get("__address__", ""), e.message)
                dropped.append(DroppedTarget(name, tuple(sorted(lb.items()))))
                continue
            if isinstance(t, DroppedTarget):
                dropped.append(t)
            else:
                targets.setdefault(t.key, t)
        old = self._loops[name]
        loops = {k: lp for k, lp in old.items() if k in targets}
        for k, t in targets.items():
            if k not in loops:
                lp = ScrapeLoop(job, t, ScrapeClient(job, max_connections=1), self.writer, self.executor, self.seed)
                lp.start()
                loops[k] = lp
        over = job.target_limit and len(loops) > job.target_limit
        for lp in loops.values():
            lp.forced_error = (f"target_limit exceeded (number of targets: {len(loops)}, limit: {job.target_limit})"
                               if over else "")
        self._loops = {**self._loops, name: loops}
        self._dropped = {**self._dropped, name: dropped}
        gone = [lp for k, lp in old.items() if k not in targets]
        await asyncio.gather(*(lp.stop(stale=True) for lp in gone))
        await asyncio.gather(*(lp.client.close() for lp in gone))
        if gone or len(loops) != len(old):
            log.info("job %s: %d targets (%d dropped by relabeling)", name, len(loops), len(dropped))

    # -- what the targets page reads --
    def loops(self, pool: str = "") -> list[ScrapeLoop]:
        return [lp for name, loops in self._loops.items() if not pool or name == pool for lp in loops.values()]

    def dropped(self, pool: str = "") -> list[DroppedTarget]:
        return [d for name, ds in self._dropped.items() if not pool or name == pool for d in ds]

    def pools(self) -> list[str]:
        return sorted(self.jobs)
