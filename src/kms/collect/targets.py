"""Discovered label sets -> scrape targets, as Prometheus's ``scrape.PopulateLabels`` does.

A discovered set (a target group's labels plus ``__address__``) gets the job's defaults where it
has none (``job``, ``__scheme__``, ``__metrics_path__``, ``__scrape_interval__``,
``__scrape_timeout__``, ``__param_<name>``), then ``relabel_configs``. A dropped set becomes a
dropped target; otherwise ``instance`` defaults to ``__address__``, the URL is built from the
``__`` labels, and every label starting with ``__`` is removed from the target's labels.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass

import xxhash

from kms.collect.config import ScrapeJob
from kms.collect.relabel import relabel
from kms.config import parse_duration
from kms.errors import BadInput

__all__ = ["Target", "DroppedTarget", "populate", "fmt_duration"]


def fmt_duration(seconds: float) -> str:
    """Prometheus's duration text: ``15s``, ``1m``, ``1m30s``, ``500ms``."""
    ms = round(seconds * 1000)
    if ms == 0:
        return "0s"
    out = ""
    for unit, size in (("w", 604_800_000), ("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
        if ms >= size and not (unit == "w" and ms % size) and not (unit == "d" and ms % size):
            out += f"{ms // size}{unit}"
            ms %= size
    return out


@dataclass(frozen=True)
class Target:
    job: str
    labels: tuple[tuple[str, str], ...]  # sorted, no "__" labels: added to every scraped series
    discovered: tuple[tuple[str, str], ...]  # before relabeling (the targets page's discoveredLabels)
    url: str
    interval_s: float
    timeout_s: float

    @property
    def key(self) -> int:
        """Identity across discovery refreshes (Prometheus's target hash: labels and URL)."""
        h = xxhash.xxh64()
        for k, v in self.labels:
            h.update(k.encode() + b"\xff" + v.encode() + b"\xff")
        h.update(self.url.encode())
        return h.intdigest()


@dataclass(frozen=True)
class DroppedTarget:
    job: str
    discovered: tuple[tuple[str, str], ...]


def populate(job: ScrapeJob, discovered: dict[str, str]) -> Target | DroppedTarget:
    """One discovered label set of ``job`` as a target, or as dropped; BadInput when the
    relabeled set is unusable (no address, bad interval), which the caller counts as dropped."""
    lb = dict(discovered)
    defaults = {"job": job.job_name, "__scheme__": job.scheme, "__metrics_path__": job.metrics_path,
                "__scrape_interval__": fmt_duration(job.scrape_interval_s),
                "__scrape_timeout__": fmt_duration(job.scrape_timeout_s)}
    for name, values in job.params.items():
        if values:
            defaults[f"__param_{name}"] = values[0]
    for k, v in defaults.items():
        lb.setdefault(k, v)
    before = tuple(sorted(lb.items()))
    out = relabel(lb, job.relabel_configs)
    if out is None:
        return DroppedTarget(job.job_name, before)
    address = out.get("__address__", "")
    if not address:
        raise BadInput("no address")
    try:
        interval = parse_duration(out.get("__scrape_interval__", "0"))
        timeout = parse_duration(out.get("__scrape_timeout__", "0"))
    except BadInput as e:
        raise BadInput(f"error parsing scrape interval or timeout: {e.message}") from None
    if interval <= 0 or timeout <= 0:
        raise BadInput("scrape interval and timeout must be positive")
    if timeout > interval:
        raise BadInput(f"scrape timeout cannot be greater than scrape interval ({fmt_duration(timeout)} > "
                       f"{fmt_duration(interval)})")
    out.setdefault("instance", address)
    params = {k: list(v) for k, v in job.params.items()}
    for k, v in out.items():
        if k.startswith("__param_"):
            params[k[len("__param_"):]] = [v] + params.get(k[len("__param_"):], [])[1:]
    # sorted by name, as Go's url.Values.Encode writes them
    query = urllib.parse.urlencode([(k, x) for k, vs in sorted(params.items()) for x in vs])
    url = f"{out.get('__scheme__', 'http')}://{address}{out.get('__metrics_path__', '/metrics')}"
    if query:
        url += "?" + query
    labels = tuple(sorted((k, v) for k, v in out.items() if not k.startswith("__") and v))
    return Target(job.job_name, labels, before, url, interval, timeout)
