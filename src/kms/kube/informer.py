"""A live copy of one resource's objects: list, then watch from the list's resourceVersion; on
an expired version (410) list again; on errors retry with backoff. ``on_change`` gets the whole
set after every change, so consumers rebuild from a consistent view."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from kms.kube.client import KubeClient, KubeError

__all__ = ["Informer"]

log = logging.getLogger("kms.kube")


def _key(obj: dict) -> tuple[str, str]:
    meta = obj.get("metadata", {})
    return meta.get("namespace", ""), meta.get("name", "")


class Informer:
    def __init__(self, client: KubeClient, path: str, on_change: Callable[[list[dict]], None],
                 label_selector: str = "", watch_timeout_s: int = 300, max_backoff_s: float = 30.0):
        self.client, self.path, self.on_change = client, path, on_change
        self.params = {"labelSelector": label_selector} if label_selector else {}
        self.watch_timeout_s = watch_timeout_s
        self.max_backoff_s = max_backoff_s
        self.objects: dict[tuple[str, str], dict] = {}
        self.synced = threading.Event()  # set after the first successful list
        self.last_error = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _emit(self) -> None:
        try:
            self.on_change(sorted(self.objects.values(), key=_key))
        except Exception:  # noqa: BLE001 - a consumer's bug must not end the watch
            log.exception("handling a change of %s", self.path)

    def _relist(self) -> str:
        doc = self.client.list(self.path, self.params)
        self.objects = {_key(o): o for o in doc.get("items", [])}
        self.synced.set()
        self._emit()
        return doc.get("metadata", {}).get("resourceVersion", "")

    def run_once(self, version: str | None) -> str | None:
        """One list-if-needed + one watch; the version to resume from (None: list again)."""
        if version is None:
            version = self._relist()
        for ev in self.client.watch(self.path, version, self.params, self.watch_timeout_s):
            kind, obj = ev.get("type"), ev.get("object", {})
            if kind == "ERROR":
                if obj.get("code") == 410:  # our version is too old: start over from a list
                    return None
                raise KubeError(f"watch {self.path}: {obj.get('message', obj)}", obj.get("code", 0))
            version = obj.get("metadata", {}).get("resourceVersion", version)
            if kind == "BOOKMARK":
                continue
            if kind == "DELETED":
                self.objects.pop(_key(obj), None)
            elif kind in ("ADDED", "MODIFIED"):
                self.objects[_key(obj)] = obj
            self._emit()
        return version

    def _run(self) -> None:
        version: str | None = None
        backoff = 0.5
        while not self._stop.is_set():
            try:
                version = self.run_once(version)
                backoff = 0.5
                self.last_error = ""
            except KubeError as e:
                self.last_error = str(e)
                log.warning("kubernetes %s: %s; retrying in %.1fs", self.path, e, backoff)
                version = None if e.status in (0, 410) else version
                if self._stop.wait(backoff):
                    return
                backoff = min(backoff * 2, self.max_backoff_s)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"kms-informer{self.path}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.client.close()  # ends a blocked watch read
        if self._thread is not None:
            self._thread.join(5)
