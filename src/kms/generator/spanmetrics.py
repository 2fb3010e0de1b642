"""Span metrics (api-contracts.md 5.1): calls, latency histogram and size per dimension set.

A span table is grouped by its dimension columns with numpy (service, span name, kind, status
and the configured attributes, each turned into int codes); the registry is then updated once
per group, so the Python work grows with the number of distinct label sets, not of spans.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kms.generator.lookup import resource_then_span
from kms.generator.names import (
    CALLS_TOTAL,
    DURATION_ALIAS,
    LATENCY,
    SIZE_TOTAL,
    SPAN_KINDS,
    SPAN_METRICS_BUCKETS,
    STATUS_CODES,
    dimension_label,
)
from kms.generator.registry import Registry, make_labels
from kms.traces.attributes import dictionary_codes

__all__ = ["SpanMetrics", "group_rows", "span_sizes"]

_KEY_CACHE = 100_000  # label sets remembered by raw values; cleared when full


def group_rows(columns: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(group of each row 0..G-1, first row of each group) for rows keyed by int code columns.

    The codes are combined into one int64 (mixed radix) and factorized with Arrow's hash-based
    dictionary encoding (no sort); if the radix would overflow, columns are combined two at a
    time and re-numbered densely after each step.
    """
    n = len(columns[0])
    cols = [np.asarray(c, np.int64) for c in columns]
    if not n:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    key = np.zeros(n, np.int64)
    width = 1
    for col in cols:
        lo = int(col.min())
        span = int(col.max()) - lo + 1
        if width * span >= 2**62:  # re-number what we have so far
            key = _factorize(key)[0]
            width = int(key.max()) + 1
        key = key * span + (col - lo)
        width *= span
    return _factorize(key)


def _factorize(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(dense code of each value in order of first appearance, first position of each code)."""
    codes = pc.dictionary_encode(pa.array(key)).indices.to_numpy(zero_copy_only=False).astype(np.int64)
    first = np.full(int(codes.max()) + 1 if len(codes) else 0, len(codes), np.int64)
    np.minimum.at(first, codes, np.arange(len(codes)))
    return codes, first


def _column(table: pa.Table, name: str) -> np.ndarray:
    return table.column(name).to_numpy()


def _varint_len(x: np.ndarray) -> np.ndarray:
    out = np.ones(len(x), np.int64)
    for bits in (7, 14, 21, 28, 35, 42, 49, 56, 63):
        out += x >= (1 << bits)
    return out


def span_sizes(table: pa.Table) -> np.ndarray:
    """Bytes of each span serialized as an OTLP ``Span``, from the table's columns: the fields kept
    in ``attrs`` plus the columns' fields re-encoded (ids, name, kind, times, status)."""
    attrs = pc.binary_length(table.column("attrs")).to_numpy(zero_copy_only=False).astype(np.int64)
    parent = pc.binary_length(table.column("parent_span_id")).to_numpy(zero_copy_only=False).astype(np.int64)
    name = pc.binary_length(table.column("name").cast(pa.binary())).to_numpy(zero_copy_only=False).astype(np.int64)
    msg = pc.binary_length(table.column("status_message").cast(pa.binary())).fill_null(0)
    msg = msg.to_numpy(zero_copy_only=False).astype(np.int64)
    kind = _column(table, "kind")
    code = _column(table, "status_code")
    status = np.where(code != 0, 2, 0) + np.where(msg > 0, 1 + _varint_len(msg) + msg, 0)
    return (attrs + 18 + 10 + np.where(parent > 0, 2 + parent, 0) + np.where(name > 0, 1 + _varint_len(name) + name, 0)
            + np.where(kind != 0, 2, 0) + 9 + 9 + np.where(status > 0, 1 + _varint_len(status) + status, 0))


class SpanMetrics:
    """Span metrics of one tenant into ``registry``."""

    def __init__(self, registry: Registry, dimensions: Sequence[str] = (),
                 buckets: Sequence[float] = SPAN_METRICS_BUCKETS, duration_alias: bool = False):
        self.registry = registry
        self.dimensions = [(attr, dimension_label(attr)) for attr in dimensions]
        self.calls = registry.counter(CALLS_TOTAL)
        self.size = registry.counter(SIZE_TOTAL)
        self.latency = registry.histogram(LATENCY, buckets, (DURATION_ALIAS,) if duration_alias else ())
        self._key_cache: dict[tuple, tuple] = {}

    def consume(self, table: pa.Table, now_ms: int) -> None:
        n = table.num_rows
        if not n:
            return
        svc_codes, services = dictionary_codes(table.column("service_name"))
        names_enc = pc.dictionary_encode(table.column("name")).combine_chunks()
        name_codes = names_enc.indices.to_numpy(zero_copy_only=False)
        names = names_enc.dictionary.to_pylist()
        kind = np.clip(_column(table, "kind"), 0, len(SPAN_KINDS) - 1)
        status = np.clip(_column(table, "status_code"), 0, len(STATUS_CODES) - 1)
        dims = [resource_then_span(table, attr) for attr, _ in self.dimensions]
        group, first = group_rows([svc_codes, name_codes, kind, status, *(c for c, _ in dims)])
        g = len(first)

        latency = _column(table, "duration_ns") / 1e9
        h = self.latency
        nb = len(h.bounds)
        bucket = h.bucket_of(latency)
        cell = group * nb + bucket
        per_bucket = np.bincount(cell, minlength=g * nb).reshape(g, nb).astype(np.float64)
        calls = np.bincount(group, minlength=g).astype(np.float64)
        sums = np.bincount(group, weights=latency, minlength=g)
        sizes = np.bincount(group, weights=span_sizes(table), minlength=g)
        # exemplars: the last span of each (group, bucket) cell, as Tempo's registry keeps
        last_of = np.full(g * nb, -1, np.int64)
        last_of[cell] = np.arange(n)  # with repeated cells, numpy's assignment keeps the last
        cells = np.flatnonzero(last_of >= 0)
        last = last_of[cells]
        tids = [t.hex() for t in table.column("trace_id").take(pa.array(last)).to_pylist()]
        exemplars = list(zip((cells // nb).tolist(), (cells % nb).tolist(), tids, latency[last].tolist(), strict=True))

        keys = self._keys(first, svc_codes, services, name_codes, names, kind, status, dims)
        with self.registry.lock:
            self.calls.add(keys, calls, now_ms)
            self.size.add(keys, sizes, now_ms)
            h.add(keys, per_bucket, sums, calls, now_ms, exemplars)

    def _keys(self, first, svc_codes, services, name_codes, names, kind, status, dims) -> list:
        """The series key of each group, from the group's first row (a cache by raw values skips
        building and sorting label tuples for label sets seen before)."""
        cache = self._key_cache
        fr = first.tolist()
        svc = [services[c] if services else "" for c in svc_codes[first].tolist()]
        nm = [names[c] for c in name_codes[first].tolist()]
        kd, st = kind[first].tolist(), status[first].tolist()
        dim_vals = [[(values + [""])[c] for c in codes[first].tolist()] for codes, values in dims]
        keys = []
        for j in range(len(fr)):
            raw = (svc[j], nm[j], kd[j], st[j], *(d[j] for d in dim_vals))
            key = cache.get(raw)
            if key is None:
                pairs = [("service", svc[j]), ("span_name", nm[j]), ("span_kind", SPAN_KINDS[kd[j]]),
                         ("status_code", STATUS_CODES[st[j]])]
                pairs += [(label, d[j]) for (_, label), d in zip(self.dimensions, dim_vals, strict=True)]
                key = make_labels(pairs)
                if len(cache) >= _KEY_CACHE:
                    cache.clear()
                cache[raw] = key
            keys.append(key)
        return keys
