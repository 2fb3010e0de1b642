"""The contract between the LogQL engine and log storage.

Storage answers one question, ``LogSource.select``: the entries of the streams a stream selector
picks, in a time range, in one direction, as bounded Arrow batches. Everything after the
selector (line filters, parsers, label filters, formatting, range and vector aggregation) is the
engine's, on those batches; the engine stops pulling batches once it has what it needs. A source
may also take the selector's leading line filters (``line_filters``) and drop the lines they
refuse while it reads; the engine applies them again either way.

Times are int64 nanoseconds since the Unix epoch. Label sets travel as the canonical label text
of ``kms.metrics.storage.labels`` (``{a="x",b="y"}``, names sorted), which ``parse_labels_text``
turns back into a dict.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

import pyarrow as pa

from kms.metrics.promql.model import Matcher

if TYPE_CHECKING:
    from kms.logs.logql.ast import LineFilter

__all__ = [
    "LOG_BATCH_SCHEMA",
    "Direction",
    "LogSource",
    "LogEntry",
    "StreamsResult",
    "QueryStats",
]

Direction = Literal["forward", "backward"]

LOG_BATCH_SCHEMA = pa.schema(
    [
        ("time_ns", pa.int64()),
        ("stream", pa.dictionary(pa.int32(), pa.string())),  # label text of the stream's index labels
        ("line", pa.string()),
        ("metadata", pa.string()),  # label text of the entry's structured metadata ("{}" when none)
    ]
)


class LogSource(Protocol):
    def select(
        self, matchers: list[Matcher], start_ns: int, end_ns: int, direction: Direction = "backward", *,
        line_filters: Sequence[LineFilter] = (), stats: QueryStats | None = None, lines: bool = True,
    ) -> Iterator[pa.Table]:
        """Entries of the streams matching every matcher with ``start_ns <= time_ns < end_ns``,
        as ``LOG_BATCH_SCHEMA`` tables in ``direction`` order (backward: newest first) across and
        within batches; entries with equal times keep their written order (reversed when
        backward). Batches hold at most a few tens of thousands of rows.

        Optional (a source without these keywords still works; the engine checks the signature):
        ``line_filters`` are line filters every returned entry must pass or may be dropped for
        failing (the source MAY apply any of them); when ``stats`` is given the engine counts
        nothing itself, so the source adds the lines and bytes it read to it. ``lines=False``:
        the caller needs no line text (a count): the source MUST return exactly the entries
        passing ``line_filters``, and MAY leave their lines empty."""
        ...

    def streams(self, matchers: list[Matcher], start_ns: int, end_ns: int) -> list[dict[str, str]]:
        """Index label sets of the streams matching every matcher (all streams when empty) with
        entries in the range."""
        ...


@dataclass(slots=True)
class LogEntry:
    """One entry of a log query's answer, its labels already split the way Loki's
    ``categorize-labels`` encoding reports them (stream labels after the pipeline's
    ``label_format``/``drop``/``keep``; structured metadata; labels the parsers extracted)."""

    time_ns: int
    line: str
    stream: dict[str, str]
    metadata: dict[str, str] = field(default_factory=dict)
    parsed: dict[str, str] = field(default_factory=dict)


@dataclass
class StreamsResult:
    """A log query's answer: at most ``limit`` entries over all streams, in the query's
    direction (backward: newest first)."""

    entries: list[LogEntry]


@dataclass
class QueryStats:
    """What Grafana shows as "bytes processed" (Loki's ``stats.summary``)."""

    bytes_processed: int = 0
    lines_processed: int = 0
    entries_returned: int = 0
    exec_time_s: float = 0.0
