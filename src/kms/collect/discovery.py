"""Target groups of a job: ``static_configs`` and ``file_sd_configs``.

A file SD file (JSON or YAML) is a list of ``{targets: [...], labels: {...}}`` groups; each
target gets ``__meta_filepath``. Files are re-read when their modification time or size changes
(checked every ``poll_s``) and at least every ``refresh_interval``. A file that cannot be read or
parsed keeps the groups it had (as Prometheus keeps its last good state) and the error is
remembered for the log.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import time
from pathlib import Path

import yaml

from kms.collect.config import FileSD, ScrapeJob, StaticGroup, static_group
from kms.errors import BadInput

__all__ = ["FileDiscovery", "discovered_sets"]

log = logging.getLogger("kms.collect")


def _expand(group: StaticGroup, extra: dict[str, str]) -> list[dict[str, str]]:
    out = []
    for t in group.targets:
        lb = {**extra, **dict(group.labels), "__address__": t}
        out.append(lb)
    return out


class FileDiscovery:
    """The groups of one ``file_sd_configs`` entry."""

    def __init__(self, sd: FileSD, clock=time.monotonic):
        self.sd = sd
        self.clock = clock
        self._stamps: dict[str, tuple[float, int]] = {}
        self._groups: dict[str, list[dict[str, str]]] = {}
        self._refreshed = -1e18
        self.errors: dict[str, str] = {}

    def _paths(self) -> list[str]:
        found: set[str] = set()
        for pattern in self.sd.files:
            found.update(p for p in glob.glob(pattern) if os.path.isfile(p))
        return sorted(found)

    def poll(self) -> bool:
        """Re-read changed files (or all, when the refresh interval is due); True if the
        label sets changed."""
        paths = self._paths()
        due = self.clock() - self._refreshed >= self.sd.refresh_interval_s
        changed = set(self._groups) - set(paths)
        for gone in changed:
            self._groups.pop(gone, None)
            self._stamps.pop(gone, None)
        for p in paths:
            try:
                st = os.stat(p)
            except OSError:
                continue
            stamp = (st.st_mtime, st.st_size)
            if not due and self._stamps.get(p) == stamp:
                continue
            self._stamps[p] = stamp
            try:
                sets = self._read(p)
            except (OSError, ValueError, yaml.YAMLError, BadInput) as e:
                if self.errors.get(p) != str(e):
                    log.error("file_sd: cannot read %s (keeping its previous targets): %s", p, e)
                self.errors[p] = str(e)
                continue
            self.errors.pop(p, None)
            if self._groups.get(p) != sets:
                self._groups[p] = sets
                changed.add(p)
        if due:
            self._refreshed = self.clock()
        return bool(changed)

    @staticmethod
    def _read(path: str) -> list[dict[str, str]]:
        text = Path(path).read_text()
        doc = json.loads(text) if path.endswith(".json") else yaml.safe_load(text)
        if doc is None:
            return []
        if not isinstance(doc, list):
            raise ValueError("expected a list of target groups")
        out = []
        for i, g in enumerate(doc):
            out += _expand(static_group(g, f"{path}[{i}]"), {"__meta_filepath": path})
        return out

    def sets(self) -> list[dict[str, str]]:
        return [lb for p in sorted(self._groups) for lb in self._groups[p]]


def discovered_sets(job: ScrapeJob, files: list[FileDiscovery]) -> list[dict[str, str]]:
    """Every discovered label set of ``job`` now: static groups, then file SD groups."""
    out = []
    for g in job.static_configs:
        out += _expand(g, {})
    for f in files:
        out += f.sets()
    return out
