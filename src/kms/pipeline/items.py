"""What flows through a pipeline: an OTLP request of one signal, a batch of samples (scraped or
host metrics), or tailed log lines; each with the tenant it is sent as."""

from __future__ import annotations

from dataclasses import dataclass, field

from kms.agent.tail import LogLine
from kms.metrics.samples import SampleBatch

__all__ = ["Item"]


@dataclass
class Item:
    signal: str  # traces | metrics | logs
    tenant: str
    otlp: bytes | None = None
    samples: SampleBatch | None = None
    lines: list[LogLine] | None = None
    resource: dict[str, str] = field(default_factory=dict)  # of lines (samples carry theirs as labels)
