"""The scrape manager: jobs -> discovered targets -> one scrape loop per target.

It runs its own event loop in one thread (fetches never wait behind the API's requests), parses
in ``workers`` threads (one by default: parsing holds the GIL, and a second worker only added
switching, bench_scrape) and stores through one :class:`~kms.collect.writer.BatchWriter`. Discovery
is re-checked every ``poll_s``, and at once when a Kubernetes watch reports a change: a target that
appears gets a loop, one that disappears is stopped and its series marked stale, one that stays
keeps its loop (and its series cache). Shutting down marks nothing stale: a restart resumes the
same series, as Prometheus does.

Jobs come in groups (``"config"``: the configuration's; others, e.g. ``"monitors"``, replaced
whole by :meth:`ScrapeManager.set_jobs` while running): a job added starts, a job removed stops
with its series marked stale, a job changed keeps its targets' series going under the new settings.

Thread safety: the tables other threads read (``jobs``, ``_loops``, ``_dropped``) are replaced
whole, never mutated, so readers need no lock; every change to them happens on the manager's
event loop (or before it starts). ``set_jobs`` calls are serialized by ``_update``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from kms.collect.client import ScrapeClient
from kms.collect.config import ScrapeJob
from kms.collect.loop import ScrapeLoop
from kms.collect.sources import JobSources, in_parallel
from kms.collect.targets import DroppedTarget, Target, populate
from kms.collect.writer import BatchWriter
from kms.errors import BadInput
from kms.kube import DiscoveryFactory
from kms.metrics.samples import SampleBatch

__all__ = ["CONFIG_GROUP", "ScrapeManager"]

log = logging.getLogger("kms.collect")

CONFIG_GROUP = "config"


class ScrapeManager:
    """``jobs`` form the ``"config"`` group. Their Kubernetes credentials are read here: none is
    a :class:`~kms.errors.BadInput`. ``sync_timeout_s`` bounds the wait for Kubernetes
    discoveries' first lists before a job's first targets (Prometheus waits likewise)."""

    def __init__(self, jobs: list[ScrapeJob], sink: Callable[[SampleBatch], object], workers: int = 1,
                 poll_s: float = 1.0, seed: int = 0, sync_timeout_s: float = 10.0):
        self.sink = sink
        self.poll_s = poll_s
        self.seed = seed  # Prometheus mixes a per-server seed into the offsets; 0 keeps them fixed
        self.sync_timeout_s = sync_timeout_s
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kms-scrape")
        self.writer: BatchWriter | None = None
        self.kube = DiscoveryFactory()  # one per manager: its jobs share watches per credentials
        self.jobs: dict[str, ScrapeJob] = {j.job_name: j for j in jobs}
        self._group: dict[str, str] = dict.fromkeys(self.jobs, CONFIG_GROUP)
        self._sources: dict[str, JobSources] = {}
        try:
            for j in jobs:
                self._sources[j.job_name] = JobSources(j, self.kube, self._wake_up)
        except BadInput as e:
            raise BadInput(f"scrape job {j.job_name!r}: {e.message}") from None
        self._loops: dict[str, dict[int, ScrapeLoop]] = {name: {} for name in self.jobs}
        self._dropped: dict[str, list[DroppedTarget]] = {name: [] for name in self.jobs}
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._syncing: asyncio.Lock | None = None  # one job change or target sync at a time
        self._stopping = False
        self._started = threading.Event()
        self._update = threading.Lock()

    # -- lifecycle --
    def start(self) -> None:
        self.writer = BatchWriter(self.sink)
        with self._update:
            deadline = time.monotonic() + self.sync_timeout_s
            in_parallel([lambda s=s: s.start(deadline) for s in self._sources.values()])
            self._thread = threading.Thread(target=self._thread_main, name="kms-scrape-manager", daemon=True)
            self._thread.start()
            self._started.wait(10)

    def _thread_main(self) -> None:
        asyncio.run(self._main())

    def _wake_up(self) -> None:
        """From any thread (Kubernetes watches): re-check discovery now, not at the next poll."""
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop has ended: nothing to wake
                loop.call_soon_threadsafe(wake.set)

    async def _main(self) -> None:
        self._wake = asyncio.Event()
        self._syncing = asyncio.Lock()
        self._loop = asyncio.get_running_loop()
        try:
            for name in list(self.jobs):
                await self._resync(name, force=True)
        finally:
            self._started.set()
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_s)
            self._wake.clear()
            for name in list(self.jobs):
                if self._stopping:
                    break
                await self._resync(name)
        for loops in self._loops.values():
            await asyncio.gather(*(lp.stop(stale=False) for lp in loops.values()))
            await asyncio.gather(*(lp.client.close() for lp in loops.values()))

    def stop(self) -> None:
        with self._update:
            if self._thread is not None:
                self._stopping = True
                self._wake_up()
                self._thread.join(30)
                self._thread = None
            in_parallel([s.stop for s in self._sources.values()])
            self.executor.shutdown(wait=True)
            if self.writer is not None:
                self.writer.close()
                self.writer = None

    # -- jobs --
    def set_jobs(self, group: str, jobs: list[ScrapeJob], timeout_s: float = 60.0) -> None:
        """Make ``jobs`` the jobs of ``group``; returns once the loops run (at most ``timeout_s``).
        A job whose name another group holds, or whose Kubernetes credentials are missing, is
        logged and left out (a changed job whose new settings fail keeps its old ones)."""
        with self._update:
            if self._stopping:
                return
            wanted: dict[str, ScrapeJob] = {}
            for j in jobs:
                owner = self._group.get(j.job_name, group)
                if owner != group or j.job_name in wanted:
                    log.error("job %s skipped: another scrape job has that name", j.job_name)
                    continue
                wanted[j.job_name] = j
            mine = {name for name, g in self._group.items() if g == group}
            changed: dict[str, JobSources] = {}
            for name, j in wanted.items():
                if name in mine and self.jobs[name] == j:
                    continue
                try:
                    changed[name] = JobSources(j, self.kube, self._wake_up)
                except BadInput as e:
                    log.error("job %s skipped: %s", name, e.message)
            removed = sorted(mine - set(wanted))
            if self._thread is not None:
                deadline = time.monotonic() + self.sync_timeout_s
                in_parallel([lambda s=s: s.start(deadline) for s in changed.values()])
            old = [self._sources[n] for n in [*removed, *changed] if n in self._sources]
            if self._thread is not None and self._loop is not None:
                fut = asyncio.run_coroutine_threadsafe(self._apply(group, changed, removed), self._loop)
                try:
                    fut.result(timeout_s)
                except TimeoutError:
                    log.warning("scrape jobs of %s: still applying after %.0fs", group, timeout_s)
            else:  # not running: the tables only; start() starts the sources
                self._install(group, changed, removed)
            in_parallel([s.stop for s in old])
            if changed or removed:
                log.info("scrape jobs of %s: %d added or changed, %d removed", group, len(changed), len(removed))

    def _install(self, group: str, changed: dict[str, JobSources], removed: list[str]) -> None:
        jobs, groups, sources = dict(self.jobs), dict(self._group), dict(self._sources)
        loops, dropped = dict(self._loops), dict(self._dropped)
        for name in removed:
            for table in (jobs, groups, sources, loops, dropped):
                table.pop(name, None)
        for name, src in changed.items():
            jobs[name], groups[name], sources[name] = src.job, group, src
            loops.setdefault(name, {})
            dropped.setdefault(name, [])
        self._group, self._sources = groups, sources
        self._loops, self._dropped, self.jobs = loops, dropped, jobs

    async def _apply(self, group: str, changed: dict[str, JobSources], removed: list[str]) -> None:
        assert self._syncing is not None
        async with self._syncing:
            gone = [lp for name in removed for lp in self._loops.get(name, {}).values()]
            self._install(group, changed, removed)
            await asyncio.gather(*(lp.stop(stale=True) for lp in gone))
            await asyncio.gather(*(lp.client.close() for lp in gone))
            for name in changed:
                await self._resync_locked(name, force=True, rebuild=True)

    # -- discovery --
    async def _resync(self, name: str, force: bool = False) -> None:
        assert self._syncing is not None
        async with self._syncing:
            await self._resync_locked(name, force)

    async def _resync_locked(self, name: str, force: bool = False, rebuild: bool = False) -> None:
        src = self._sources.get(name)
        if src is None:
            return
        try:
            if src.poll() or force:
                await self._sync(name, rebuild)
        except Exception:  # noqa: BLE001 - a bug in one job's discovery must not stop the others
            log.exception("job %s: target discovery", name)

    async def _sync(self, name: str, rebuild: bool = False) -> None:
        """Loops for the job's targets now. ``rebuild`` (the job's settings changed): targets
        that stay get new loops that continue the old ones' series (no staleness gap)."""
        job = self.jobs[name]
        targets: dict[int, Target] = {}
        dropped: list[DroppedTarget] = []
        for lb in self._sources[name].sets():
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
        old = self._loops.get(name, {})
        replaced = [lp for k, lp in old.items() if k in targets] if rebuild else []
        await asyncio.gather(*(lp.stop(stale=False) for lp in replaced))
        await asyncio.gather(*(lp.client.close() for lp in replaced))
        loops = {k: lp for k, lp in old.items() if k in targets and not rebuild}
        for k, t in targets.items():
            if k not in loops:
                lp = ScrapeLoop(job, t, ScrapeClient(job, max_connections=1), self.writer, self.executor, self.seed)
                if k in old:
                    lp.cache.carry_over(old[k].cache)
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
