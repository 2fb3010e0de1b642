"""Watch ServiceMonitor and PodMonitor objects and hand the scrape configs derived from them to a
callback whenever they change (only when the derived configs differ from the last ones handed).

Secrets and ConfigMaps the monitors reference are read from the API when the configs are derived
(:class:`KubeSecrets`); they are not watched, so a rotated Secret is picked up at the next
monitor change or periodic refresh (``refresh_interval_s``, 5 minutes by default).
"""

from __future__ import annotations

import base64
import logging
import threading
from collections.abc import Callable

from kms.kube.client import KubeClient, KubeError, resource_path
from kms.kube.informer import Informer
from kms.kube.monitors import MonitorOptions, monitors_to_scrape_configs

__all__ = ["KubeSecrets", "MonitorWatcher"]

log = logging.getLogger("kms.kube")

GROUP_VERSION = "monitoring.coreos.com/v1"


class KubeSecrets:
    """Secret and ConfigMap values through the API (one list per namespace and kind, cached until
    :meth:`clear`, so deriving many monitors costs few requests)."""

    def __init__(self, client: KubeClient):
        self.client = client
        self._cache: dict[tuple[str, str], dict[str, dict]] = {}

    def clear(self) -> None:
        self._cache.clear()

    def _objects(self, kind: str, namespace: str) -> dict[str, dict]:
        if (kind, namespace) not in self._cache:
            plural = "secrets" if kind == "secret" else "configmaps"
            try:
                items = self.client.list(resource_path("v1", plural, namespace)).get("items", [])
            except KubeError as e:
                log.warning("cannot list %s in %s: %s", plural, namespace, e)
                items = []
            self._cache[(kind, namespace)] = {(o.get("metadata") or {}).get("name", ""): o for o in items}
        return self._cache[(kind, namespace)]

    def get(self, kind: str, namespace: str, name: str, key: str) -> str | None:
        obj = self._objects(kind, namespace).get(name)
        if obj is None:
            return None
        if kind == "secret":
            raw = (obj.get("data") or {}).get(key)
            return base64.b64decode(raw).decode() if raw is not None else (obj.get("stringData") or {}).get(key)
        return (obj.get("data") or {}).get(key)


class MonitorWatcher:
    """ServiceMonitors and PodMonitors of all namespaces (or the given ones), optionally only
    those matching ``label_selector`` (the Prometheus resource's serviceMonitorSelector role),
    turned into scrape configs for ``on_configs``."""

    def __init__(self, client_factory: Callable[[], KubeClient], on_configs: Callable[[list[dict]], None],
                 namespaces: list[str] | None = None, label_selector: str = "",
                 options: MonitorOptions | None = None, watch_timeout_s: int = 300,
                 refresh_interval_s: float = 300.0):
        self.on_configs = on_configs
        self.refresh_interval_s = refresh_interval_s
        self._stop = threading.Event()
        self._refresher: threading.Thread | None = None
        self.options = options or MonitorOptions()
        self._secrets = KubeSecrets(client_factory())
        if self.options.secrets is None:
            self.options.secrets = self._secrets
        self.errors: dict[str, str] = {}  # "ServiceMonitor ns/name" -> why it was left out
        self.configs: list[dict] = []
        self._lock = threading.Lock()
        self._objects: dict[str, dict[str, list[dict]]] = {"servicemonitors": {}, "podmonitors": {}}
        self.informers = [
            Informer(client_factory(), resource_path(GROUP_VERSION, plural, ns or None),
                     self._changed_fn(plural, ns or "*"), label_selector, watch_timeout_s=watch_timeout_s)
            for plural in ("servicemonitors", "podmonitors") for ns in (namespaces or [""])
        ]

    def _changed_fn(self, plural: str, scope: str) -> Callable[[list[dict]], None]:
        def changed(objects: list[dict]) -> None:
            with self._lock:
                self._objects[plural][scope] = objects
            self.refresh()
        return changed

    def refresh(self) -> None:
        """Derive the configs again (re-reading referenced secrets) and hand them on if changed."""
        with self._lock:
            sms = [o for objs in self._objects["servicemonitors"].values() for o in objs]
            pms = [o for objs in self._objects["podmonitors"].values() for o in objs]
            self._secrets.clear()
            errors: dict[str, str] = {}
            configs = monitors_to_scrape_configs(sms, pms, self.options, errors)
            for name, err in errors.items():
                if self.errors.get(name) != err:
                    log.error("%s skipped: %s", name, err)
            self.errors = errors
            if configs == self.configs:
                return
            self.configs = configs
            # under the lock: a slower refresh must not hand on older configs after newer ones
            self.on_configs(configs)

    def start(self) -> None:
        for inf in self.informers:
            inf.start()
        self._refresher = threading.Thread(target=self._refresh_loop, name="kms-monitor-refresh", daemon=True)
        self._refresher.start()

    def _refresh_loop(self) -> None:
        while not self._stop.wait(self.refresh_interval_s):
            if all(inf.synced.is_set() for inf in self.informers):
                try:
                    self.refresh()
                except Exception:  # noqa: BLE001 - a consumer's bug must not end the refreshes
                    log.exception("refreshing monitor scrape configs")

    def stop(self) -> None:
        self._stop.set()
        # in parallel: each informer's stop may wait for its watch read to end (up to its join timeout)
        threads = [threading.Thread(target=inf.stop, daemon=True) for inf in self.informers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self._secrets.client.close()
