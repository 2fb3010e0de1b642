"""The data of Prometheus's ``/api/v1/targets``, ``/api/v1/targets/metadata`` and
``/api/v1/scrape_pools`` from a :class:`~kms.collect.manager.ScrapeManager` (or none)."""

from __future__ import annotations

from kms.collect.manager import ScrapeManager

__all__ = ["targets_data", "targets_metadata", "scrape_pools"]


def targets_data(manager: ScrapeManager | None, state: str = "", pool: str = "") -> dict:
    """``state``: ``active``, ``dropped``, ``any`` or empty (both); ``pool``: one job or all."""
    state = state.lower()
    want_active = state in ("", "any", "active")
    want_dropped = state in ("", "any", "dropped")
    active = [lp.status() for lp in manager.loops(pool)] if manager and want_active else []
    dropped = [{"discoveredLabels": dict(d.discovered)} for d in manager.dropped(pool)] if manager and want_dropped else []
    counts: dict[str, int] = {}
    if manager:
        for name in manager.pools():
            if not pool or name == pool:
                counts[name] = len(manager.dropped(name))
    return {"activeTargets": active, "droppedTargets": dropped, "droppedTargetCounts": counts}


def targets_metadata(manager: ScrapeManager | None, matchers: list, metric: str = "", limit: int = -1) -> list[dict]:
    """Metadata of the last scrape of each target whose labels match ``matchers`` (objects with
    ``name`` and ``matches(value)``), optionally of one ``metric``."""
    out: list[dict] = []
    for lp in manager.loops() if manager else []:
        labels = dict(lp.target.labels)
        if not all(m.matches(labels.get(m.name, "")) for m in matchers):
            continue
        for fam, md in sorted(lp.metadata.items()):
            if metric and fam != metric:
                continue
            out.append({"target": labels, "metric": fam, "type": md["type"], "help": md["help"], "unit": md["unit"]})
            if 0 <= limit <= len(out):
                return out
    return out


def scrape_pools(manager: ScrapeManager | None) -> list[str]:
    return manager.pools() if manager else []
