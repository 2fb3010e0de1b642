"""Reading a collected ``SampleBatch`` back as {(metric, labels): newest value}."""

from __future__ import annotations

from kms.metrics.samples import SampleBatch


def latest(batch: SampleBatch) -> dict[tuple[str, frozenset], float]:
    batch.check()
    out = {}
    for labels, points in batch.by_series().items():
        d = dict(labels)
        name = d.pop("__name__")
        out[(name, frozenset(d.items()))] = max(points)[1]
    return out


def key(name: str, **labels: str) -> tuple[str, frozenset]:
    return name, frozenset(labels.items())
