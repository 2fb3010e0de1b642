"""The exporters kms runs, each with its own queue on disk (the collector's sending queue with
file storage, always on): ``otlp_http`` (``otlphttp``), ``prometheusremotewrite``, ``debug``, and
``kms`` — a central kms up's API port, which takes OTLP, remote write and Loki push (tailed lines
become Loki streams with ``line_labels`` as stream labels, as Promtail sends them)."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import cramjam

from kms.agent.forward import Forwarder, central_routes
from kms.agent.queue import DiskQueue
from kms.agent.tail import LogLine
from kms.errors import BadInput
from kms.logs.logproto import PushRequest
from kms.metrics.remote_write import encode_batch
from kms.metrics.translate import label_name, translate_request
from kms.pipeline.convert import lines_to_otlp, samples_to_otlp
from kms.pipeline.grpc_transport import METHODS, GrpcTransport
from kms.pipeline.items import Item

__all__ = ["make_exporter", "QueuedExporter", "DebugExporter", "loki_push", "line_streams"]

log = logging.getLogger("kms.pipeline")
_OTLP = {"Content-Type": "application/x-protobuf"}
_RW = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
       "X-Prometheus-Remote-Write-Version": "0.1.0"}


def _tenant_and_headers(cid: str, settings: dict) -> tuple[str | None, dict[str, str]]:
    headers = {str(k): str(v) for k, v in (settings.get("headers") or {}).items()}
    tenant = next((v for k, v in headers.items() if k.lower() == "x-scope-orgid"), None)
    return tenant, {k: v for k, v in headers.items() if k.lower() != "x-scope-orgid"}


class QueuedExporter:
    def __init__(self, cid: str, ptype: str, settings: dict, data_dir: Path, max_queue_bytes: int):
        endpoint = str(settings.get("endpoint") or "").rstrip("/")
        if not endpoint:
            raise BadInput(f"exporter {cid!r}: endpoint is required")
        transport = None
        if ptype == "otlp":  # gRPC: host:port (a scheme is allowed; https or tls.insecure: false -> TLS)
            tls = settings.get("tls") or {}
            secure = endpoint.startswith("https://") or tls.get("insecure") is False
            target = endpoint.split("://", 1)[-1]
            transport = GrpcTransport(ca_file=str(tls.get("ca_file") or ""))
        elif not endpoint.startswith(("http://", "https://")):
            raise BadInput(f"exporter {cid!r}: endpoint {endpoint!r} needs a scheme (http:// or https://)")
        self.cid, self.type = cid, ptype
        self.tenant, extra = _tenant_and_headers(cid, settings)
        self.line_labels = {str(k): str(v) for k, v in (settings.get("line_labels") or {}).items()}
        if ptype == "otlp":
            base = f"{'grpcs' if secure else 'grpc'}://{target}"
            routes = {kind: (base + method, {**extra}) for kind, method in METHODS.items()}
        elif ptype == "kms":
            routes = central_routes(endpoint)
        elif ptype == "otlp_http":
            routes = {kind: (str(settings.get(f"{signal}_endpoint") or f"{endpoint}/v1/{signal}"), {**_OTLP, **extra})
                      for kind, signal in (("t", "traces"), ("l", "logs"), ("x", "metrics"))}
        else:
            routes = {"m": (endpoint, {**_RW, **extra})}
        self.external_labels = {str(k): str(v) for k, v in (settings.get("external_labels") or {}).items()}
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", cid)
        self.queue = DiskQueue(data_dir / "queues" / safe, max_queue_bytes)
        self.forwarder = Forwarder(self.queue, routes, transport)

    def consume(self, item: Item) -> None:
        tenant = self.tenant or item.tenant
        if self.type == "prometheusremotewrite":
            if item.signal != "metrics":
                return
            batch = item.samples if item.samples is not None else translate_request(item.otlp)
            if len(batch):
                # labels merged while encoding: no copy of every label set per batch (agent memory)
                self.queue.append([("m", tenant, encode_batch(batch, labels=self.external_labels))])
            return
        if self.type == "kms" and item.samples is not None:
            self.queue.append([("m", tenant, encode_batch(item.samples))])
            return
        if self.type == "kms" and item.lines is not None:
            self.queue.append([("p", tenant, loki_push(item.lines, {**self.line_labels, **item.resource}))])
            return
        if item.samples is not None:
            payload = samples_to_otlp(item.samples)
        elif item.lines is not None:
            payload = lines_to_otlp(item.lines, item.resource)
        else:
            payload = item.otlp
        self.queue.append([({"traces": "t", "logs": "l", "metrics": "x"}[item.signal], tenant, payload)])

    def start(self) -> None:
        self.forwarder.start()

    def stop(self) -> None:
        self.forwarder.stop()
        self.queue.close()


class DebugExporter:
    def __init__(self, cid: str, settings: dict):
        self.cid = cid
        self.detailed = settings.get("verbosity") == "detailed"

    def consume(self, item: Item) -> None:
        n = (len(item.samples) if item.samples is not None else len(item.lines) if item.lines is not None
             else len(item.otlp or b""))
        unit = "samples" if item.samples is not None else "lines" if item.lines is not None else "bytes of OTLP"
        log.info("%s: %s %d %s (tenant %s)", self.cid, item.signal, n, unit, item.tenant)

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass


def _esc(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def line_streams(lines: list[LogLine], labels: dict[str, str]) -> dict[tuple, list[LogLine]]:
    """Lines grouped into Loki streams: ``labels`` (the exporter's and the resource), the lines'
    attributes as label names, and ``filename``; in the lines' order."""
    out: dict[tuple, list[LogLine]] = {}
    keys: dict[tuple, tuple] = {}
    for ln in lines:
        key = keys.get((ln.path, ln.attributes))
        if key is None:
            ls = {**labels, **{label_name(k): v for k, v in ln.attributes}, "filename": ln.path}
            key = keys[(ln.path, ln.attributes)] = tuple(sorted((k, v) for k, v in ls.items() if v))
        out.setdefault(key, []).append(ln)
    return out


def loki_push(lines: list[LogLine], labels: dict[str, str]) -> bytes:
    """Lines as a snappy Loki push request, one stream per :func:`line_streams` key."""
    req = PushRequest()
    for key, group in line_streams(lines, labels).items():
        s = req.streams.add()
        s.labels = "{" + ", ".join(f'{k}="{_esc(v)}"' for k, v in key) + "}"
        for ln in group:
            e = s.entries.add()
            e.timestamp.seconds, e.timestamp.nanos = divmod(ln.time_ns or ln.ts_ns, 1_000_000_000)
            e.line = ln.line
    return bytes(cramjam.snappy.compress_raw(req.SerializeToString()))


def make_exporter(cid: str, ptype: str, settings: dict, data_dir: Path, max_queue_bytes: int):
    if ptype in ("otlp", "otlp_http", "prometheusremotewrite", "kms"):
        return QueuedExporter(cid, ptype, settings, data_dir, max_queue_bytes)
    if ptype == "debug":
        return DebugExporter(cid, settings)
    raise BadInput(f"exporter {cid!r}: type {ptype!r} is not supported")
