"""One target's scrape loop: every interval, at a fixed offset, fetch -> parse -> store.

The offset inside the interval comes from a hash of the target (Prometheus's ``offset``): targets
are spread over the interval, and a target keeps its phase across restarts and reloads. The fetch
runs on the manager's event loop; parsing runs in the manager's worker threads and storing in its
:class:`~kms.collect.writer.BatchWriter` (many scrapes, one append). Timestamps are the scrape's
start, in ms.

Report series (``up``, ``scrape_duration_seconds``, ``scrape_samples_scraped``,
``scrape_samples_post_metric_relabeling``, ``scrape_series_added``) carry the target's labels and
are written with every scrape, failed or not. A failed scrape makes every series of the previous
one stale; a target that goes away makes its last series stale (:meth:`ScrapeLoop.stop`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import Executor
from datetime import UTC, datetime

from kms.collect.client import FetchError, ScrapeClient
from kms.collect.config import ScrapeJob
from kms.collect.exposition import ParseError
from kms.collect.series import ScrapeError, SeriesCache
from kms.collect.targets import Target, fmt_duration
from kms.collect.writer import BatchWriter
from kms.errors import KmsError
from kms.metrics.samples import SampleBatch

__all__ = ["ScrapeLoop", "offset_s"]

log = logging.getLogger("kms.collect")

def offset_s(target: Target, interval_s: float, seed: int = 0) -> float:
    """Where in each interval (seconds after a multiple of the interval) the target is scraped."""
    period_ms = max(1, round(interval_s * 1000))
    return ((target.key ^ seed) % period_ms) / 1000


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


class ScrapeLoop:
    """State read by the targets page (``health``, ``last_error``, ...) is replaced whole once a
    scrape's samples are prepared, before they are stored (and again if storing them fails);
    readers in other threads see either the old or the new values."""

    def __init__(self, job: ScrapeJob, target: Target, client: ScrapeClient, writer: BatchWriter, executor: Executor,
                 seed: int = 0, clock: Callable[[], float] = time.time):
        self.job = job
        self.target = target
        self.client = client  # this loop's own: one pooled connection, not a scan of every target's
        self.writer = writer
        self.executor = executor
        self.seed = seed
        self.clock = clock
        self.cache = SeriesCache(job, target.labels)
        self.health = "unknown"
        self.last_error = ""
        self.last_scrape = 0.0  # wall-clock seconds of the last scrape's start; 0 = never
        self.last_duration = 0.0
        self.last_samples = 0
        self.metadata: dict[str, dict[str, str]] = {}
        self.forced_error = ""  # set by the manager (target_limit exceeded): no fetch, up=0
        self.scrapes = 0
        self._task: asyncio.Task | None = None
        self._lock = asyncio.Lock()  # one scrape at a time, and none after stop

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        interval = self.target.interval_s
        phase = offset_s(self.target, interval, self.seed)
        now = self.clock()
        next_at = now - (now % interval) + phase
        if next_at < now:
            next_at += interval
        while True:
            await asyncio.sleep(max(0.0, next_at - self.clock()))
            try:
                await self.scrape_once()
            except Exception as e:  # noqa: BLE001 - the loop outlives any one scrape; shown on the targets page
                log.exception("scrape of %s", self.target.url)
                self.health, self.last_error, self.last_scrape = "down", f"internal error: {e}", self.clock()
            next_at += interval
            behind = self.clock() - next_at
            if behind > 0:  # a scrape overran its interval: skip the missed ticks, keep the phase
                next_at += (behind // interval + 1) * interval

    async def scrape_once(self) -> None:
        async with self._lock:
            start = self.clock()
            ts_ms = int(start * 1000)
            t0 = time.perf_counter()
            error = self.forced_error
            body, ctype = b"", ""
            if not error:
                try:
                    body, ctype = await self.client.fetch(self.target.url, self.target.timeout_s)
                except FetchError as e:
                    error = str(e)
            duration = time.perf_counter() - t0
            loop = asyncio.get_running_loop()
            batch, error = await loop.run_in_executor(self.executor, self._prepare, body, ctype, ts_ms, duration, error)
            # the scrape's outcome is shown before its samples can be read, then a failure to store them
            self._note(start, duration, error)
            try:
                await asyncio.wrap_future(self.writer.submit(batch))
            except KmsError as e:
                self._note(start, duration, error or f"storing the scraped samples: {e.message}")
            except Exception as e:  # noqa: BLE001 - as above
                log.exception("storing the scrape of %s", self.target.url)
                self._note(start, duration, error or f"storing the scraped samples: internal error: {e}")
            self.scrapes += 1

    def _note(self, start: float, duration: float, error: str) -> None:
        self.health = "down" if error else "up"
        self.last_error = error
        self.last_scrape = start
        self.last_duration = duration

    def _prepare(self, body: bytes, ctype: str, ts_ms: int, duration: float, error: str) -> tuple[SampleBatch, str]:
        """The batch of one scrape (worker thread) and the scrape's error, if any."""
        if not error:
            try:
                out = self.cache.scrape(body, ctype, ts_ms, [("up", 1.0), ("scrape_duration_seconds", duration)])
                self.metadata = out.metadata
                self.last_samples = out.post_relabel
                return out.batch, ""
            except (ParseError, ScrapeError) as e:
                error = str(e)
            except Exception as e:  # noqa: BLE001 - a bug must not end the loop; it shows on the targets page
                log.exception("scrape of %s", self.target.url)
                error = f"internal error: {e}"
        return self.cache.failed(ts_ms, [("up", 0.0), ("scrape_duration_seconds", duration),
                                         ("scrape_samples_scraped", 0.0),
                                         ("scrape_samples_post_metric_relabeling", 0.0),
                                         ("scrape_series_added", 0.0)]), error

    async def stop(self, stale: bool) -> None:
        """Stop scraping; with ``stale`` (the target went away) mark its series stale."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - the loop is gone either way
                pass
        if stale:
            async with self._lock:
                # in the (single) worker, after any parse of this loop still running there
                batch = await asyncio.get_running_loop().run_in_executor(
                    self.executor, self.cache.stale_all, int(self.clock() * 1000))
                if len(batch):
                    try:
                        await asyncio.wrap_future(self.writer.submit(batch))
                    except KmsError as e:
                        log.warning("staleness markers of %s not stored: %s", self.target.url, e.message)

    def status(self) -> dict:
        t = self.target
        return {
            "discoveredLabels": dict(t.discovered),
            "labels": dict(t.labels),
            "scrapePool": t.job,
            "scrapeUrl": t.url,
            "globalUrl": t.url,
            "lastError": self.last_error,
            "lastScrape": _iso(self.last_scrape) if self.last_scrape else "0001-01-01T00:00:00Z",
            "lastScrapeDuration": self.last_duration,
            "health": self.health,
            "scrapeInterval": fmt_duration(t.interval_s),
            "scrapeTimeout": fmt_duration(t.timeout_s),
        }
