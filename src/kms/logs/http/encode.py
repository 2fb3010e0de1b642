"""Loki's JSON encoding of query results (``pkg/util/marshal``): streams with ns timestamps as
strings, the ``categorize-labels`` shape, Prometheus encoding for vectors and matrices, and
the ``stats`` object Grafana reads for "bytes processed"."""

from __future__ import annotations

import orjson

from kms.logs.logql.pipeline import merged
from kms.logs.source import LogEntry, QueryStats
from kms.metrics.http.encode import encode_result

__all__ = ["encode_streams", "encode_metric", "stats_json", "CATEGORIZE"]

CATEGORIZE = "categorize-labels"


def _key(d: dict[str, str]) -> tuple:
    return tuple(sorted(d.items()))


def encode_streams(entries: list[LogEntry], categorize: bool) -> str:
    """``{"resultType":"streams","result":[...]}``. Without ``categorize`` an entry's stream is
    the union of its stream labels, structured metadata and parsed labels (clashes named as in
    ``pipeline.merged``; entries with different metadata land in different streams); with it,
    ``stream`` holds the stream labels
    and each value carries ``{"structuredMetadata":..,"parsed":..}``. Streams appear in the order
    of their first entry; values keep the entries' (direction) order."""
    groups: dict[tuple, tuple[dict[str, str], list[str]]] = {}
    for e in entries:
        labels = e.stream if categorize else {**merged(e.stream, e.metadata), **e.parsed}
        k = _key(labels)
        g = groups.get(k)
        if g is None:
            g = groups[k] = (labels, [])
        ts = f'"{e.time_ns}"'
        line = orjson.dumps(e.line).decode()
        if categorize:
            cat = {}
            if e.metadata:
                cat["structuredMetadata"] = e.metadata
            if e.parsed:
                cat["parsed"] = e.parsed
            g[1].append(f"[{ts},{line},{orjson.dumps(cat).decode()}]")
        else:
            g[1].append(f"[{ts},{line}]")
    parts = [
        f'{{"stream":{orjson.dumps(labels, option=orjson.OPT_SORT_KEYS).decode()},"values":[{",".join(vals)}]}}'
        for labels, vals in groups.values()
    ]
    return '{"resultType":"streams","result":[' + ",".join(parts) + "]"


def encode_metric(value) -> str:
    """A Vector/Matrix/Scalar as Prometheus encodes it, without the closing brace (stats follow)."""
    return encode_result(value)[:-1]


def stats_json(st: QueryStats | None, exec_s: float) -> str:
    st = st or QueryStats()
    secs = exec_s or st.exec_time_s
    bps = int(st.bytes_processed / secs) if secs > 0 else 0
    lps = int(st.lines_processed / secs) if secs > 0 else 0
    summary = {
        "bytesProcessedPerSecond": bps, "linesProcessedPerSecond": lps,
        "totalBytesProcessed": st.bytes_processed, "totalLinesProcessed": st.lines_processed,
        "execTime": secs, "queueTime": 0, "subqueries": 0, "totalEntriesReturned": st.entries_returned,
        "splits": 0, "shards": 0, "totalPostFilterLines": st.lines_processed,
        "totalStructuredMetadataBytesProcessed": 0,
    }
    store = {"totalChunksRef": 0, "totalChunksDownloaded": 0, "chunksDownloadTime": 0, "queryReferencedStructuredMetadata": False,
             "chunk": {"headChunkBytes": 0, "headChunkLines": 0, "decompressedBytes": st.bytes_processed,
                       "decompressedLines": st.lines_processed, "compressedBytes": 0, "totalDuplicates": 0,
                       "postFilterLines": st.lines_processed, "headChunkStructuredMetadataBytes": 0,
                       "decompressedStructuredMetadataBytes": 0}}
    ingester = {"totalReached": 0, "totalChunksMatched": 0, "totalBatches": 0, "totalLinesSent": 0,
                "store": store}
    cache = {k: {"entriesFound": 0, "entriesRequested": 0, "entriesStored": 0, "bytesReceived": 0, "bytesSent": 0,
                 "requests": 0, "downloadTime": 0, "queryLengthServed": 0}
             for k in ("chunk", "index", "result", "statsResult", "volumeResult", "seriesResult", "labelResult",
                       "instantMetricResult")}
    return orjson.dumps({"summary": summary, "querier": {"store": store}, "ingester": ingester,
                         "cache": cache}).decode()
