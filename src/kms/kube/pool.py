"""Informers shared between discoveries: one list + watch per (resource path, label selector,
field selector), fanned out to every subscriber, so fifty ServiceMonitor jobs watching the same
namespace cost three watches, not a hundred and fifty (Prometheus likewise shares identical
discoverers between jobs).

A subscriber gets the whole object list on every change and, when it joins an informer that has
already listed, the current list at once. The informer starts with its first subscriber and
stops with its last.

Thread safety: ``_lock`` guards the tables; callbacks run outside it, on the informer's thread
(or the subscribing thread for the initial delivery).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from kms.kube.client import KubeClient
from kms.kube.informer import Informer

__all__ = ["InformerPool", "Subscription"]

Key = tuple[str, str, str]  # (path, label selector, field selector)
Callback = Callable[[list[dict]], None]


@dataclass
class _Shared:
    informer: Informer
    subscribers: dict[int, Callback] = field(default_factory=dict)
    objects: list[dict] | None = None  # the last full list; None until the first list


@dataclass(frozen=True)
class Subscription:
    key: Key
    id: int


class InformerPool:
    def __init__(self, client_factory: Callable[[], KubeClient], watch_timeout_s: int = 300):
        self.client_factory = client_factory
        self.watch_timeout_s = watch_timeout_s
        self._lock = threading.Lock()
        self._shared: dict[Key, _Shared] = {}
        self._next_id = 0

    def subscribe(self, path: str, on_change: Callback, label_selector: str = "",
                  field_selector: str = "") -> Subscription:
        key = (path, label_selector, field_selector)
        with self._lock:
            self._next_id += 1
            sub = Subscription(key, self._next_id)
            shared = self._shared.get(key)
            new = shared is None
            if shared is None:
                inf = Informer(self.client_factory(), path, lambda objs: self._fan_out(key, objs), label_selector,
                               watch_timeout_s=self.watch_timeout_s)
                if field_selector:
                    inf.params["fieldSelector"] = field_selector
                shared = self._shared[key] = _Shared(inf)
            shared.subscribers[sub.id] = on_change
            current = shared.objects
        if new:
            shared.informer.start()
        elif current is not None:
            on_change(current)
        return sub

    def _fan_out(self, key: Key, objects: list[dict]) -> None:
        with self._lock:
            shared = self._shared.get(key)
            if shared is None:
                return
            shared.objects = objects
            callbacks = list(shared.subscribers.values())
        for cb in callbacks:
            cb(objects)

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            shared = self._shared.get(sub.key)
            if shared is None:
                return
            shared.subscribers.pop(sub.id, None)
            if shared.subscribers:
                return
            del self._shared[sub.key]
        shared.informer.stop()

    def informer(self, sub: Subscription) -> Informer | None:
        with self._lock:
            shared = self._shared.get(sub.key)
            return shared.informer if shared else None

    def watched(self) -> list[Key]:
        with self._lock:
            return sorted(self._shared)
