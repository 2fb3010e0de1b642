"""Delivery of queued records to the central stack, oldest first, one record at a time so the
order survives outages. A record leaves the queue only once the central side acknowledged it
(2xx) or refused it for good (4xx other than 429: resending cannot help, as Prometheus's remote
write decides); transport errors, 5xx and 429 are retried with exponential backoff."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter

import httpx

from kms.agent.queue import DiskQueue, Record

__all__ = ["Forwarder", "HttpTransport", "KINDS", "central_routes"]

log = logging.getLogger("kms.agent")
logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per forwarded record

# record kind -> (path under the central API URL, headers)
_RW = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy", "X-Prometheus-Remote-Write-Version": "0.1.0"}
_OTLP = {"Content-Type": "application/x-protobuf"}
KINDS: dict[str, tuple[str, dict[str, str]]] = {
    "m": ("/api/v1/push", _RW),  # remote write 1.0 (scraped and host metrics)
    "t": ("/v1/traces", _OTLP),  # OTLP received from applications, forwarded as OTLP/HTTP
    "l": ("/v1/logs", _OTLP),
    "x": ("/v1/metrics", _OTLP),
    "p": ("/loki/api/v1/push", {"Content-Type": "application/x-protobuf"}),  # tailed files, snappy logproto
}


def central_routes(remote: str) -> dict[str, tuple[str, dict[str, str]]]:
    """Record kind -> (URL, headers) for a central kms up at ``remote`` (its API port)."""
    base = remote.rstrip("/")
    return {kind: (base + path, headers) for kind, (path, headers) in KINDS.items()}


class HttpTransport:
    """POST over HTTP(S): the status code and the start of the body."""

    def __init__(self, timeout_s: float = 15.0):
        self.client = httpx.Client(timeout=timeout_s, headers={"User-Agent": "kms-agent"})
        self.timeout_s = timeout_s

    def post(self, url: str, headers: dict[str, str], payload: bytes) -> tuple[int, str]:
        r = self.client.post(url, content=payload, headers=headers)
        return r.status_code, r.text[:300]

    def close(self) -> None:
        self.client.close()


class Forwarder:
    def __init__(self, queue: DiskQueue, routes: dict[str, tuple[str, dict[str, str]]], transport=None,
                 max_backoff_s: float = 30.0):
        self.queue = queue
        self.routes = routes  # record kind -> (URL, headers); the record's tenant is X-Scope-OrgID
        self.transport = transport or HttpTransport()
        self.max_backoff_s = max_backoff_s
        self.sent: Counter[str] = Counter()  # records delivered, by kind
        self.refused: Counter[str] = Counter()  # records the central side refused for good
        self.retries = 0
        self.last_error = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _send(self, rec: Record) -> bool:
        """True when done with the record (delivered or refused for good); False to retry."""
        url, headers = self.routes[rec.kind]
        try:
            status, text = self.transport.post(url, {**headers, "X-Scope-OrgID": rec.tenant}, rec.payload)
        except (httpx.HTTPError, OSError) as e:
            self.last_error = f"{url}: {e}"
            return False
        if status < 300:
            self.sent[rec.kind] += 1
            return True
        if status >= 500 or status == 429:
            self.last_error = f"{url}: {status} {text[:200]}"
            return False
        self.refused[rec.kind] += 1
        log.warning("%s refused a record for good: %d %s", url, status, text)
        return True

    def _run(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            rec = self.queue.peek(timeout_s=0.5)
            if rec is None:
                continue
            if self._send(rec):
                self.queue.ack(rec)
                backoff = 0.5
                continue
            self.retries += 1
            log.info("central stack unavailable (%s); retrying in %.1fs, %d records queued",
                     self.last_error, backoff, self.queue.pending())
            if self._stop.wait(backoff):
                return
            backoff = min(backoff * 2, self.max_backoff_s)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="kms-agent-forward", daemon=True)
        self._thread.start()

    def stop(self, drain_s: float = 5.0) -> None:
        """Stop after delivering what can be delivered within ``drain_s``; the rest stays queued."""
        deadline = time.monotonic() + drain_s
        while self.queue.pending() and time.monotonic() < deadline and not self.last_error:
            time.sleep(0.05)
        self._stop.set()
        if self._thread is not None:
            self._thread.join(getattr(self.transport, "timeout_s", 15.0) + 1)
        self.transport.close()
