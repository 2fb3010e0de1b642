"""Sending alerts: Alertmanager API v2 and a plain webhook, off the evaluation thread.

``Notifier.send(tenant, alerts)`` queues and returns; one thread posts each batch to every
Alertmanager (static URLs, or ``file:<path>`` for Prometheus's file-SD format; ``POST
<url>/api/v2/alerts``, a JSON list, with the tenant's ``X-Scope-OrgID``) and every webhook (Alertmanager's
webhook payload, ``{"version": "4", "status", "alerts": [...], ...}``). The queue is bounded
(Prometheus's default capacity, 10,000 alerts); when full the oldest alerts are dropped and
counted. A failed post is logged and counted; the next resend (1 min) delivers the state again.
"""

from __future__ import annotations

import collections
import hashlib
import logging
import threading
from datetime import UTC, datetime
from pathlib import Path

import httpx
import yaml

__all__ = ["Notifier", "FileSD"]

log = logging.getLogger("kms.rules")

QUEUE_CAPACITY = 10_000
MAX_BATCH = 256  # alerts per POST, as Prometheus sends them


def _is_resolved(alert: dict) -> bool:
    ends = alert.get("endsAt", "")
    try:
        return datetime.fromisoformat(ends.replace("Z", "+00:00")) <= datetime.now(UTC)
    except ValueError:
        return False


def webhook_payload(alerts: list[dict], receiver: str = "kms") -> dict:
    """Alertmanager's webhook body for a batch (one group per batch, no grouping labels)."""
    items = []
    for a in alerts:
        status = "resolved" if _is_resolved(a) else "firing"
        fp = hashlib.sha256(repr(sorted(a["labels"].items())).encode()).hexdigest()[:16]
        items.append({**a, "status": status, "fingerprint": fp})
    common = dict(set.intersection(*(set(a["labels"].items()) for a in alerts))) if alerts else {}
    return {"version": "4", "groupKey": "{}:{}", "truncatedAlerts": 0, "receiver": receiver,
            "status": "firing" if any(i["status"] == "firing" for i in items) else "resolved",
            "groupLabels": {}, "commonLabels": common, "commonAnnotations": {}, "externalURL": "", "alerts": items}


class FileSD:
    """Alertmanagers from a Prometheus file-SD file (YAML or JSON: ``[{targets: [host:port, ...],
    labels: {__scheme__: https, __alerts_path_prefix__: /am}}]``), re-read when its mtime changes.
    A file that cannot be read keeps the last good list."""

    def __init__(self, path: str):
        self.path = Path(path)
        self._mtime = -1.0
        self.urls: list[str] = []

    def current(self) -> list[str]:
        try:
            mtime = self.path.stat().st_mtime
            if mtime != self._mtime:
                doc = yaml.safe_load(self.path.read_text()) or []
                urls = []
                for entry in doc:
                    labels = entry.get("labels") or {}
                    scheme = labels.get("__scheme__", "http")
                    prefix = str(labels.get("__alerts_path_prefix__", "")).rstrip("/")
                    urls += [f"{scheme}://{t}{prefix}" for t in entry.get("targets") or []]
                self.urls, self._mtime = urls, mtime
        except (OSError, yaml.YAMLError, AttributeError, TypeError) as e:
            log.warning("alertmanager file SD %s: %s (keeping %d targets)", self.path, e, len(self.urls))
        return self.urls


class Notifier:
    """``alertmanagers`` are base URLs, or ``file:<path>`` for a file-SD file of them."""

    def __init__(self, alertmanagers: list[str], webhooks: list[str] | None = None, timeout_s: float = 10.0):
        self.alertmanagers = [u.rstrip("/") for u in alertmanagers if not u.startswith("file:")]
        self.sd = [FileSD(u.removeprefix("file://").removeprefix("file:")) for u in alertmanagers
                   if u.startswith("file:")]
        self.webhooks = list(webhooks or [])
        self.timeout_s = timeout_s
        self._queue: collections.deque[tuple[str, dict]] = collections.deque()
        self._cv = threading.Condition()
        self._stop = False
        self._thread: threading.Thread | None = None
        self.sent = 0
        self.failed = 0
        self.dropped = 0
        self.sent_by_url: collections.Counter[str] = collections.Counter()
        self.failed_by_url: collections.Counter[str] = collections.Counter()

    @property
    def enabled(self) -> bool:
        return bool(self.alertmanagers or self.sd or self.webhooks)

    def send(self, tenant: str, alerts: list[dict]) -> None:
        if not self.enabled:
            return
        with self._cv:
            for a in alerts:
                self._queue.append((tenant, a))
            over = len(self._queue) - QUEUE_CAPACITY
            for _ in range(max(0, over)):
                self._queue.popleft()
                self.dropped += 1
            self._cv.notify()

    def queue_length(self) -> int:
        with self._cv:
            return len(self._queue)

    def start(self) -> None:
        if self.enabled and self._thread is None:
            logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per alert post
            self._thread = threading.Thread(target=self._run, name="kms-notifier", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        with self._cv:
            self._stop = True
            self._cv.notify()
        if self._thread is not None:
            self._thread.join(self.timeout_s + 1)

    def _run(self) -> None:
        with httpx.Client(timeout=self.timeout_s) as client:
            while True:
                with self._cv:
                    while not self._queue and not self._stop:
                        self._cv.wait()
                    if not self._queue:
                        return
                    tenant = self._queue[0][0]
                    batch = []
                    while self._queue and self._queue[0][0] == tenant and len(batch) < MAX_BATCH:
                        batch.append(self._queue.popleft()[1])
                self._post_all(client, tenant, batch)

    def _post_all(self, client: httpx.Client, tenant: str, batch: list[dict]) -> None:
        headers = {"X-Scope-OrgID": tenant}
        ams = self.alertmanagers + [u for sd in self.sd for u in sd.current()]
        targets = [(f"{u}/api/v2/alerts", batch) for u in ams]
        targets += [(u, webhook_payload(batch)) for u in self.webhooks]
        for url, body in targets:
            try:
                r = client.post(url, json=body, headers=headers)
                if r.status_code >= 300:
                    raise httpx.HTTPStatusError(f"{r.status_code} {r.text[:200]}", request=r.request, response=r)
                self.sent += len(batch)
                self.sent_by_url[url] += len(batch)
            except httpx.HTTPError as e:
                self.failed += len(batch)
                self.failed_by_url[url] += len(batch)
                log.warning("sending %d alerts to %s failed: %s", len(batch), url, e)
