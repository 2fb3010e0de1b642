"""The ruler: every tenant's rule groups, each evaluated on its own thread.

Sources of groups: the ``--rules`` files (the default tenant) and the ruler API's stored groups
(per tenant; ``prometheus`` namespaces are PromQL by default, ``loki`` ones LogQL). ``reload()``
re-reads both, keeps the state of groups and rules that did not change, starts new groups and
stops removed ones. A broken file at start raises ``RuleFileError``; at a reload it is logged
and the running rules stay (as Prometheus does). ``watch`` polls the files' mtimes.

Locking: ``_lock`` guards the group table; each group's thread owns its group's evaluation.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kms.rules.group import EvalContext, Group
from kms.rules.load import GroupSpec, RuleFileError, expand_paths, load_files, parse_groups
from kms.rules.store import RuleStore

__all__ = ["Ruler", "RulerSettings"]

log = logging.getLogger("kms.rules")

APIS = {"prometheus": "promql", "loki": "logql"}


@dataclass
class RulerSettings:
    files: list[str] = field(default_factory=list)
    default_tenant: str = "anonymous"
    evaluation_interval_s: float = 60.0
    poll_interval_s: float = 5.0  # rule files are re-read this often if their mtime changed; 0 = never


class Ruler:
    def __init__(self, settings: RulerSettings, ctx: EvalContext, store: RuleStore | None = None,
                 clock: Callable[[], float] = time.time):
        self.settings = settings
        self.ctx = ctx
        self.store = store
        self.clock = clock
        self._lock = threading.Lock()
        self._groups: dict[tuple[str, str, str], Group] = {}  # (tenant, file, name) -> group
        self._threads: dict[tuple[str, str, str], tuple[threading.Thread, threading.Event]] = {}
        self._stop = threading.Event()
        self._mtimes: dict[Path, float] = {}
        self._watcher: threading.Thread | None = None
        self.running = False
        self._loaded = False
        self.last_reload_ok = True
        # groups from other sources (PrometheusRule objects), by source: (tenant, spec)
        self._external: dict[str, list[tuple[str, GroupSpec]]] = {}

    # -- loading --
    def _specs(self) -> dict[tuple[str, str, str], GroupSpec]:
        s = self.settings
        out = {(s.default_tenant, g.file, g.name): g for g in load_files(s.files, s.evaluation_interval_s)}
        if self.store is not None:
            for api, lang in APIS.items():
                for tenant in self.store.tenants(api):
                    for ns, groups in self.store.namespaces(api, tenant).items():
                        for g in groups:
                            try:
                                spec, = parse_groups_from_dict(g, ns, s.evaluation_interval_s, lang)
                            except RuleFileError as e:  # stored groups were valid when set
                                log.error("tenant %s: stored rule group %s/%s: %s", tenant, ns, g.get("name"), e)
                                continue
                            out[(tenant, spec.file, spec.name)] = spec
        for groups in list(self._external.values()):
            out.update({(tenant, g.file, g.name): g for tenant, g in groups})
        return out

    def set_external(self, source: str, groups: list[tuple[str, GroupSpec]]) -> None:
        """Replace the groups one outside source provides (already validated) and reload."""
        self._external[source] = groups
        if self._loaded:
            self.reload()

    def _file_mtimes(self) -> dict[Path, float]:
        out = {}
        for p in expand_paths(self.settings.files):
            try:
                out[p] = p.stat().st_mtime
            except OSError:
                out[p] = -1.0
        return out

    def reload(self) -> bool:
        """Re-read rule files and stored groups; True when they loaded (else the old rules stay)."""
        self._mtimes = self._file_mtimes()
        try:
            specs = self._specs()
        except RuleFileError as e:
            if not self.running:
                raise
            log.error("reloading rules failed, keeping the previous rules: %s", e)
            self.last_reload_ok = False
            return False
        with self._lock:
            old = self._groups
            new: dict[tuple[str, str, str], Group] = {}
            for key, spec in specs.items():
                g = old.get(key)
                if g is not None and g.spec == spec:
                    new[key] = g
                    continue
                ng = Group(spec, key[0], self.ctx)
                if g is not None:
                    ng.copy_state(g)
                new[key] = ng
            self._groups = new
            if self.running:
                for key in old.keys() - new.keys() | {k for k in new if old.get(k) is not new[k]}:
                    self._stop_thread(key)
                for key in new:
                    if key not in self._threads:
                        self._start_thread(key, new[key])
        self.last_reload_ok = self._loaded = True
        log.info("rules loaded: %d groups, %d rules", len(new), sum(len(g.rules) for g in new.values()))
        return True

    # -- running --
    def start(self) -> None:
        if not self._loaded:
            self.reload()
        with self._lock:
            self.running = True
            for key, g in self._groups.items():
                self._start_thread(key, g)
        if self.settings.poll_interval_s > 0 and self.settings.files:
            self._watcher = threading.Thread(target=self._watch, name="kms-rules-watch", daemon=True)
            self._watcher.start()

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            self.running = False
            keys = list(self._threads)
        for key in keys:
            self._stop_thread(key)

    def _start_thread(self, key, group: Group) -> None:
        ev = threading.Event()
        t = threading.Thread(target=self._run_group, args=(group, ev), name=f"kms-rules-{group.spec.name}",
                             daemon=True)
        self._threads[key] = (t, ev)
        t.start()

    def _stop_thread(self, key) -> None:
        entry = self._threads.pop(key, None)
        if entry is not None:
            entry[1].set()
            if entry[0] is not threading.current_thread():
                entry[0].join(30)

    def _run_group(self, group: Group, stop: threading.Event) -> None:
        while True:
            ts_ms = group.next_eval_ms(int(self.clock() * 1000))
            if stop.wait(max(0.0, ts_ms / 1000 - self.clock())):
                return
            # a slow evaluation skips the times it missed, as Prometheus does
            try:
                group.evaluate(ts_ms)
            except Exception:  # noqa: BLE001 - keep the group's thread alive
                log.exception("BUG: evaluating rule group %r", group.spec.name)

    def _watch(self) -> None:
        while not self._stop.wait(self.settings.poll_interval_s):
            if self._file_mtimes() != self._mtimes:
                log.info("rule files changed; reloading")
                self.reload()

    # -- reading --
    def groups(self, tenants: list[str] | None = None) -> list[Group]:
        with self._lock:
            gs = [g for (t, _, _), g in self._groups.items() if tenants is None or t in tenants]
        return sorted(gs, key=lambda g: (g.spec.file, g.spec.name))


def parse_groups_from_dict(group: dict, namespace: str, default_interval_s: float, lang: str) -> list[GroupSpec]:
    import yaml

    return parse_groups(yaml.safe_dump(group), namespace, default_interval_s, single=True, default_source=lang)
