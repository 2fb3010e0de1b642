"""Pulling a selector's entries from a ``LogSource`` and running its pipeline.

The leading line filters run vectorised on each Arrow batch; only the surviving rows become
``Row`` objects for the rest of the pipeline. They are also handed to the source
(``select(line_filters=...)``), which may apply them while it reads (the store does, before
sorting anything); applying them again here to the hits is cheap, so the result never depends
on whether the source did. Stream and metadata label texts are parsed once
per distinct text (the label-text parser caches them).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kms.metrics.storage.labels import parse_labels_text

from ..source import Direction, LogSource, QueryStats
from .ast import DropKeep, LineFilter, LogSelector
from .linefilter import filter_mask
from .pipeline import ERROR, ERROR_DETAILS, Row, compile_stages

__all__ = ["Batch", "scan_batches", "scan_rows", "split_stages"]


def _drops_errors_only(stage: object) -> bool:
    return isinstance(stage, DropKeep) and not stage.keep and all(
        isinstance(i, str) and i in (ERROR, ERROR_DETAILS) for i in stage.items
    )


def split_stages(sel: LogSelector) -> tuple[tuple[LineFilter, ...], tuple]:
    """(leading line filters, the rest of the pipeline). A ``| drop __error__`` among the
    leading line filters is skipped: nothing before it can set an error (Grafana's logs
    volume query adds one to every selector)."""
    prefix: list[LineFilter] = []
    n = 0
    while n < len(sel.stages):
        stage = sel.stages[n]
        if isinstance(stage, LineFilter):
            prefix.append(stage)
        elif not _drops_errors_only(stage):
            break
        n += 1
    return tuple(prefix), sel.stages[n:]


@dataclass
class Batch:
    """A batch after the leading line filters: parallel arrays plus the stream dictionary."""

    time_ns: np.ndarray  # int64
    stream_codes: np.ndarray  # int32 index into streams
    streams: list[str]  # label texts
    line: pa.Array
    metadata: pa.Array


@cache
def _keywords(kind: type) -> frozenset[str]:
    """Which of the optional keywords ``line_filters``, ``stats`` and ``lines`` ``kind.select`` takes."""
    return frozenset(inspect.signature(kind.select).parameters) & {"line_filters", "stats", "lines"}


def scan_batches(
    source: LogSource, sel: LogSelector, start_ns: int, end_ns: int, direction: Direction, stats: QueryStats,
    lines: bool = True,
) -> Iterator[Batch]:
    """Batches of ``sel``'s entries in ``[start_ns, end_ns)`` that pass the leading line filters.
    ``lines=False``: the caller reads no line text (a count), which the source may then leave out."""
    prefix, _ = split_stages(sel)
    keywords = _keywords(type(source))
    pushed = bool(prefix) and {"line_filters", "stats"} <= keywords
    kw = {"line_filters": prefix, "stats": stats} if pushed else {}
    exact = pushed and not lines and "lines" in keywords  # the source answers exactly the passing entries
    if exact:
        kw["lines"] = False
    for table in source.select(list(sel.matchers), start_ns, end_ns, direction, **kw):
        if table.num_rows == 0:
            continue
        lines = table.column("line").combine_chunks()
        if not pushed:  # else the source counted what it read
            stats.lines_processed += table.num_rows
            stats.bytes_processed += int(pc.sum(pc.binary_length(lines)).as_py() or 0)
        for f in () if exact else prefix:  # each filter runs only on the lines the previous ones kept
            table = table.filter(filter_mask(f, lines))
            if table.num_rows == 0:
                break
            lines = table.column("line").combine_chunks()
        if table.num_rows == 0:
            continue
        stream = table.column("stream").combine_chunks()
        if isinstance(stream, pa.DictionaryArray):
            codes = stream.indices.to_numpy(zero_copy_only=False).astype(np.int32)
            texts = stream.dictionary.to_pylist()
        else:  # tolerate a plain string column
            enc = pc.dictionary_encode(stream)
            codes = enc.indices.to_numpy(zero_copy_only=False).astype(np.int32)
            texts = enc.dictionary.to_pylist()
        yield Batch(
            table.column("time_ns").to_numpy(),
            codes,
            texts,
            lines,
            table.column("metadata").combine_chunks(),
        )


def batch_rows(b: Batch, limit: int | None = None) -> list[Row]:
    """Row objects of a batch (its first ``limit`` rows when given); each distinct stream or
    metadata text is parsed once (rows share those dicts: stages copy before changing them)."""
    if limit is not None and limit < len(b.line):
        b = Batch(b.time_ns[:limit], b.stream_codes[:limit], b.streams, b.line[:limit], b.metadata[:limit])
    streams = [parse_labels_text(t) for t in b.streams]
    meta = pc.dictionary_encode(pc.fill_null(b.metadata, "{}"))
    metas = [parse_labels_text(t) for t in meta.dictionary.to_pylist()]
    meta_codes = meta.indices.to_numpy(zero_copy_only=False).tolist()
    lines = b.line.to_pylist()
    times = b.time_ns.tolist()
    codes = b.stream_codes.tolist()
    return [
        Row(times[i], lines[i] or "", streams[codes[i]], metas[meta_codes[i]], {}) for i in range(len(lines))
    ]


def scan_rows(
    source: LogSource, sel: LogSelector, start_ns: int, end_ns: int, direction: Direction, stats: QueryStats
) -> Iterator[list[Row]]:
    """Lists of rows that passed the whole pipeline, batch by batch, in ``direction`` order."""
    _, rest = split_stages(sel)
    run = compile_stages(rest)
    for b in scan_batches(source, sel, start_ns, end_ns, direction, stats):
        rows = run(batch_rows(b))
        if rows:
            yield rows
