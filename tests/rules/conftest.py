"""In-memory parts for ruler tests: a series source that rule outputs are written back into."""

from __future__ import annotations

import pytest

from kms.metrics.promql import Engine, MemorySeriesSource
from kms.metrics.samples import SampleBatch
from kms.rules import EvalContext


class MemoryRulerEnv:
    """An ``EvalContext`` over one ``MemorySeriesSource`` (every tenant shares it) that records
    what was written and sent."""

    def __init__(self) -> None:
        self.source = MemorySeriesSource()
        self.sent: list[tuple[str, list[dict]]] = []
        self.written: list[tuple[str, SampleBatch]] = []

    def write(self, tenant: str, batch: SampleBatch) -> None:
        self.written.append((tenant, batch))
        for labels, points in batch.by_series().items():
            for t, v in points:
                self.source.add(dict(labels), t, v)
        for i, t, h in batch.histograms:
            self.source.add_histogram(dict(batch.series[i]), t, h)

    def ctx(self, **kw) -> EvalContext:
        return EvalContext(
            promql=lambda _t, q, t_ms: Engine(self.source).instant(q, t_ms),
            logql=lambda _t, q, t_ms: (_ for _ in ()).throw(AssertionError("no LogQL here")),
            select=lambda _t, ms, lo, hi: self.source.select(ms, lo, hi),
            write=self.write, send=lambda tenant, alerts: self.sent.append((tenant, alerts)),
            **kw,
        )

    def value(self, query: str, t_ms: int) -> dict:
        res = Engine(self.source).instant(query, t_ms).value
        return {tuple(sorted(s.labels.items())): s.value for s in res.samples}


@pytest.fixture
def env() -> MemoryRulerEnv:
    return MemoryRulerEnv()
