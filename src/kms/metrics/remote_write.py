"""Prometheus remote write (1.0 and 2.0) request bodies -> :class:`~kms.metrics.samples.SampleBatch`.

Wire format (``prompb/types.proto``, ``prompb/remote.proto``,
``prompb/io/prometheus/write/v2/types.proto``): the body is a **snappy block format** (not
framed) compressed protobuf, ``prometheus.WriteRequest`` for 1.0 and
``io.prometheus.write.v2.Request`` for 2.0, chosen by the ``Content-Type`` ``proto=`` parameter
(:func:`protocol_version`). The protobuf classes are built at runtime from the field tables below
(no generated code); they are wire-compatible with the real messages and also serve to encode
requests in tests and in the agent.

Validation, all-or-nothing for series (a :class:`~kms.errors.BadInput` names the first bad series
with Mimir's wording and nothing of the request is returned):

* a series without ``__name__`` (or with an empty one), an invalid metric name, an invalid label
  name, duplicate label names, label names not sorted, label values that are not UTF-8;
* with ``utf8_names=False`` (the default, Mimir's and our store's legacy scheme) metric names
  must match ``[a-zA-Z_:][a-zA-Z0-9_:]*`` and label names ``[a-zA-Z_][a-zA-Z0-9_]*``; with
  ``utf8_names=True`` (Prometheus 3) any non-empty UTF-8 name is accepted;
* labels with an empty value are dropped (an empty value means "no such label");
* NaN, +-Inf and the staleness marker are ordinary values; timestamps are not checked here;
* 2.0 only (as Prometheus): ``labels_refs`` of odd length or outside the symbols table, and a
  series without any sample or histogram, are errors; a 1.0 series without samples is skipped.

Exemplars are dropped and counted (``batch.rejected``) rather than failing the request, as
Prometheus's write handler only logs exemplar errors: invalid or duplicate label names, or a
label set longer than 128 runes (names plus values). Native histograms (``histograms`` of a
series) are stored (``nativewire``); one that cannot be (bad schema, spans not matching its
buckets) is refused under ``invalid_native_histogram``.
"""

from __future__ import annotations

import re
from dataclasses import replace

import cramjam
import numpy as np
from google.protobuf.message import DecodeError

from kms.errors import BadInput, TooLarge
from kms.metrics.nativewire import HistogramError, from_remote_write, to_remote_write
from kms.metrics.sample_wire import decode_samples, decode_uniform, encode_samples
from kms.metrics.samples import METRIC_TYPES, BatchBuilder, Exemplar, Labels, Metadata, SampleBatch
from kms.protoclasses import message_classes

__all__ = [
    "encode_batch",
    "WriteRequest",
    "TimeSeries",
    "Label",
    "Sample",
    "Exemplar1",
    "MetricMetadata",
    "WriteRequestV2",
    "PROTO_V1",
    "PROTO_V2",
    "DEFAULT_MAX_BYTES",
    "EXEMPLAR_MAX_LABEL_RUNES",
    "protocol_version",
    "decompress",
    "decode_write_request",
    "decode_remote_write",
    "encode_remote_write",
    "written_headers",
]

PROTO_V1 = "prometheus.WriteRequest"
PROTO_V2 = "io.prometheus.write.v2.Request"
#: Uncompressed body limit when the caller gives none (Mimir's default gRPC message limit is 100 MiB).
DEFAULT_MAX_BYTES = 64 << 20
#: Prometheus's ``exemplar.ExemplarMaxLabelSetLength``: runes of all exemplar label names + values.
EXEMPLAR_MAX_LABEL_RUNES = 128

# (name, number, type or ".Message", repeated); enums are declared int32 (same varint wire type).
# Remote write 1.0 and 2.0 share the native histogram's layout (count and zero count are oneofs
# in the .proto: integer or float; both are declared and the one sent is set).
_HISTOGRAM: dict[str, list[tuple[str, int, str, bool]]] = {
    "BucketSpan": [("offset", 1, "sint32", False), ("length", 2, "uint32", False)],
    "Histogram": [
        ("count_int", 1, "uint64", False),
        ("count_float", 2, "double", False),
        ("sum", 3, "double", False),
        ("schema", 4, "sint32", False),
        ("zero_threshold", 5, "double", False),
        ("zero_count_int", 6, "uint64", False),
        ("zero_count_float", 7, "double", False),
        ("negative_spans", 8, ".BucketSpan", True),
        ("negative_deltas", 9, "sint64", True),
        ("negative_counts", 10, "double", True),
        ("positive_spans", 11, ".BucketSpan", True),
        ("positive_deltas", 12, "sint64", True),
        ("positive_counts", 13, "double", True),
        ("reset_hint", 14, "int32", False),
        ("timestamp", 15, "int64", False),
        ("custom_values", 16, "double", True),
    ],
}
_V1: dict[str, list[tuple[str, int, str, bool]]] = {
    "Label": [("name", 1, "string", False), ("value", 2, "string", False)],
    "Sample": [("value", 1, "double", False), ("timestamp", 2, "int64", False)],
    "Exemplar": [("labels", 1, ".Label", True), ("value", 2, "double", False), ("timestamp", 3, "int64", False)],
    **_HISTOGRAM,
    "TimeSeries": [
        ("labels", 1, ".Label", True),
        ("samples", 2, ".Sample", True),
        ("exemplars", 3, ".Exemplar", True),
        ("histograms", 4, ".Histogram", True),
    ],
    "MetricMetadata": [
        ("type", 1, "int32", False),
        ("metric_family_name", 2, "string", False),
        ("help", 4, "string", False),
        ("unit", 5, "string", False),
    ],
    "WriteRequest": [("timeseries", 1, ".TimeSeries", True), ("metadata", 3, ".MetricMetadata", True)],
}
_V2: dict[str, list[tuple[str, int, str, bool]]] = {
    "Sample": [("value", 1, "double", False), ("timestamp", 2, "int64", False), ("start_timestamp", 3, "int64", False)],
    "Exemplar": [("labels_refs", 1, "uint32", True), ("value", 2, "double", False), ("timestamp", 3, "int64", False)],
    "Metadata": [("type", 1, "int32", False), ("help_ref", 3, "uint32", False), ("unit_ref", 4, "uint32", False)],
    **_HISTOGRAM,
    "TimeSeries": [
        ("labels_refs", 1, "uint32", True),
        ("samples", 2, ".Sample", True),
        ("histograms", 3, ".Histogram", True),
        ("exemplars", 4, ".Exemplar", True),
        ("metadata", 5, ".Metadata", False),
    ],
    "Request": [("symbols", 4, "string", True), ("timeseries", 5, ".TimeSeries", True)],
}


# The same messages with labels and samples left as bytes: the fast 1.0 decoder caches validated
# label sets by their bytes and decodes all samples of a request at once (``sample_wire``).
_V1_BYTES = {
    **_V1,
    "TimeSeries": [
        ("labels", 1, "bytes", True),
        ("samples", 2, "bytes", True),
        ("exemplars", 3, ".Exemplar", True),
        ("histograms", 4, "bytes", True),
    ],
}


# proto3 classes reject strings that are not UTF-8 (DecodeError); the proto2 twins hand such
# strings back as bytes, which is only used to name the culprit once decoding has failed.
_C1 = message_classes("kmsprompb", _V1, "proto3")
_C1_LAX = message_classes("kmsprompblax", _V1, "proto2")
_C1_BYTES = message_classes("kmsprompbbytes", _V1_BYTES, "proto3")
# Whole series as bytes (the uniform path scans them), and a series' label fields alone.
_C1_RAW = message_classes("kmsprompbraw", {
    **_V1,
    "WriteRequest": [("timeseries", 1, "bytes", True), ("metadata", 3, ".MetricMetadata", True)],
    "Labelset": [("labels", 1, ".Label", True)],
}, "proto3")  # fmt: skip
Labelset = _C1_RAW["Labelset"]
_C2 = message_classes("kmsprompbv2", _V2, "proto3")
_C2_LAX = message_classes("kmsprompbv2lax", _V2, "proto2")

WriteRequest = _C1["WriteRequest"]
TimeSeries = _C1["TimeSeries"]
Label = _C1["Label"]
Sample = _C1["Sample"]
Exemplar1 = _C1["Exemplar"]
MetricMetadata = _C1["MetricMetadata"]
WriteRequestV2 = _C2["Request"]

_METRIC_NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def _unsupported(message: str) -> BadInput:
    return BadInput(message, reason="unsupported_media_type")


def protocol_version(content_type: str | None) -> int:
    """1 or 2 from a ``Content-Type`` header, as Prometheus's ``parseProtoMsg`` reads it.

    Absent, ``application/x-protobuf`` and ``proto=prometheus.WriteRequest`` mean 1.0;
    ``proto=io.prometheus.write.v2.Request`` means 2.0. Anything else raises BadInput with reason
    ``unsupported_media_type`` (HTTP 415).
    """
    if not content_type:
        return 1
    parts = [p.strip() for p in content_type.split(";")]
    if parts[0].lower() != "application/x-protobuf":
        raise _unsupported(f"expected application/x-protobuf as the first (media) part, got {content_type} content-type")
    for p in parts[1:]:
        key, _, value = p.partition("=")
        if key.strip().lower() != "proto":
            continue
        value = value.strip().strip('"')
        if value == PROTO_V1:
            return 1
        if value == PROTO_V2:
            return 2
        raise _unsupported(f"unknown type for remote write protobuf message {value}, supported: {PROTO_V1}, {PROTO_V2}")
    return 1


def _uncompressed_len(body: bytes) -> int:
    """The varint length header of a snappy block (at most 5 bytes, 32 bits)."""
    n = shift = 0
    for i in range(min(5, len(body))):
        b = body[i]
        n |= (b & 0x7F) << shift
        if b < 0x80:
            return n
        shift += 7
    raise BadInput("snappy decode error: bad length header")


def decompress(body: bytes, content_encoding: str | None = None, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """Snappy block-decode ``body``; over ``max_bytes`` uncompressed raises TooLarge (before decoding).

    Like Prometheus, an absent ``Content-Encoding`` means snappy and anything else is a 415.
    """
    enc = (content_encoding or "snappy").strip().lower()
    if enc != "snappy":
        raise _unsupported(f"{content_encoding} encoding (compression) is not accepted by this server; only snappy is acceptable")
    size = _uncompressed_len(body)
    if size > max_bytes:
        raise TooLarge(f"remote write body is {size} bytes uncompressed, over the limit of {max_bytes} bytes")
    try:
        return bytes(cramjam.snappy.decompress_raw(body))
    except Exception as e:  # cramjam.DecompressionError and friends
        raise BadInput(f"snappy decode error: {e}") from e


def _fmt(labels) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in labels) + "}"


class _Validator:
    """Label checks with a per-request cache of names already found valid."""

    def __init__(self, utf8_names: bool):
        self.utf8 = utf8_names
        self.ok_names: set[str] = set()
        self.ok_metric_names: set[str] = set()

    def label_name_ok(self, name: str) -> bool:
        if name in self.ok_names:
            return True
        ok = bool(name) and (self.utf8 or _LABEL_NAME_RE.fullmatch(name) is not None)
        if ok:
            self.ok_names.add(name)
        return ok

    def series(self, pairs: list[tuple[str, str]]) -> Labels:
        """Validated, sorted labels of one series without empty values; BadInput names the problem."""
        prev = None
        metric = None
        has_empty = False
        for name, value in pairs:
            if not value:
                has_empty = True
            if name == "__name__":
                metric = value
            elif name not in self.ok_names and not self.label_name_ok(name):
                raise BadInput(
                    f"received a series with an invalid label: '{name[:200]}' series: '{_fmt(pairs)[:200]}'",
                    reason="label_invalid",
                )
            if prev is not None and name <= prev:
                if name == prev:
                    raise BadInput(
                        f"received a series with duplicate label name, label: '{name[:200]}' series: '{_fmt(pairs)[:200]}'",
                        reason="duplicate_label_names",
                    )
                raise BadInput(
                    f"received a series where the label names are not sorted, label: '{name[:200]}' series: '{_fmt(pairs)[:200]}'",
                    reason="labels_not_sorted",
                )
            prev = name
        if not metric:
            raise BadInput(f"received a series without metric name, series: '{_fmt(pairs)[:200]}'", reason="missing_metric_name")
        if metric not in self.ok_metric_names:
            if not self.utf8 and _METRIC_NAME_RE.fullmatch(metric) is None:
                raise BadInput(f"received a series with invalid metric name: '{metric[:200]}'", reason="metric_name_invalid")
            self.ok_metric_names.add(metric)
        return tuple(p for p in pairs if p[1]) if has_empty else tuple(pairs)

    def exemplar(self, pairs: list[tuple[str, str]], series: Labels) -> tuple[Labels | None, str]:
        """(sorted labels, "") or (None, message) for an exemplar that is dropped."""
        runes = 0
        for name, value in pairs:
            if not self.label_name_ok(name):
                return None, f"exemplar with an invalid label name '{name[:200]}' for series {_fmt(series)[:200]}"
            runes += len(name) + len(value)
        if runes > EXEMPLAR_MAX_LABEL_RUNES:
            return None, (
                f"exemplar label set of {runes} UTF-8 characters exceeds maximum of {EXEMPLAR_MAX_LABEL_RUNES} "
                f"for series {_fmt(series)[:200]}"
            )
        out = tuple(sorted(p for p in pairs if p[1]))
        names = [k for k, _ in out]
        if len(set(names)) != len(names):
            return None, f"exemplar with duplicate label names for series {_fmt(series)[:200]}"
        return out, ""


def _add_exemplars(b: BatchBuilder, v: _Validator, idx: int, labels: Labels, exemplars) -> None:
    """exemplars: iterable of (label pairs, value, timestamp ms)."""
    for pairs, value, ts in exemplars:
        ex_labels, problem = v.exemplar(pairs, labels)
        if ex_labels is None:
            b.reject("invalid_exemplar", 1, problem)
        else:
            b.exemplars.append(Exemplar(idx, ex_labels, value, ts))


def _add_histograms(b: BatchBuilder, idx: int, labels: Labels, histograms) -> None:
    for msg in histograms:
        if isinstance(msg, bytes):
            msg = _C1["Histogram"].FromString(msg)
        try:
            b.histograms.append((idx, msg.timestamp, from_remote_write(msg)))
        except HistogramError as e:
            b.reject("invalid_native_histogram", 1, f"{e}: series {_fmt(labels)[:200]}")


def _add_extras_v1(b: BatchBuilder, v: _Validator, idx: int, labels: Labels, ts) -> None:
    """A 1.0 series' exemplars and native histograms."""
    if ts.exemplars:
        _add_exemplars(b, v, idx, labels, (([(lb.name, lb.value) for lb in e.labels], e.value, e.timestamp) for e in ts.exemplars))
    if ts.histograms:
        _add_histograms(b, idx, labels, ts.histograms)


def _add_metadata_v1(b: BatchBuilder, metadata) -> None:
    for md in metadata:
        if md.metric_family_name:
            mtype = METRIC_TYPES[md.type] if 0 <= md.type < len(METRIC_TYPES) else "unknown"
            b.metadata.append(Metadata(md.metric_family_name, mtype, md.help, md.unit))


def _label_end(ts: bytes) -> int:
    """Where a serialized ``TimeSeries``' leading ``labels`` fields end."""
    pos, n = 0, len(ts)
    while pos + 1 < n and ts[pos] == 0x0A:
        length = ts[pos + 1]
        if length < 0x80:  # a label pair under 128 bytes: one length byte
            pos += 2 + length
            continue
        length, shift, p = 0, 0, pos + 1
        while p < n:
            byte = ts[p]
            length |= (byte & 0x7F) << shift
            p += 1
            if byte < 0x80:
                break
            shift += 7
        pos = p + length
    return pos


def _decode_v1_uniform(data: bytes, v: _Validator) -> SampleBatch | None:
    """1.0, fastest path: every ``TimeSeries`` is its labels then only samples, each sample with
    both fields and all of one size (what Prometheus and most senders write). The samples of the
    whole request are then one byte matrix, decoded with numpy and no object per sample. None
    when the request is not that shape (the caller decodes it the general way)."""
    req = _C1_RAW["WriteRequest"].FromString(data)
    if req.metadata:
        return None
    b = BatchBuilder()
    cache = _LABELS_RAW_UTF8 if v.utf8 else _LABELS_RAW
    counts: list[int] = []
    idxs: list[int] = []
    parts: list[bytes] = []
    width = 0
    count = 0
    for ts in req.timeseries:
        # Senders give every series of a request as many samples: guess the labels' end from the
        # previous count. A guess is only taken when it lands on a sample record and its label
        # bytes are a label set seen before (a cached key is always a whole run of label fields).
        end = len(ts) - count * width
        labels = None
        if count and end >= 0 and ts[end : end + 2] == bytes((0x12, width - 2)):
            labels = cache.get(ts[:end])
        if labels is None:
            end = _label_end(ts)
        rest = len(ts) - end
        if rest < 2 or ts[end] != 0x12 or ts[end + 1] >= 0x80:
            return None  # no samples, or exemplars/histograms: the general path
        rec = ts[end + 1] + 2
        if width != rec:
            if width:
                return None
            width = rec
        if rest % rec:
            return None
        count = rest // rec
        key = ts[:end]
        if labels is None:
            labels = cache.get(key)
        if labels is None:
            labels = v.series([(lb.name, lb.value) for lb in Labelset.FromString(key).labels])
            if len(cache) >= _LABEL_CACHE_MAX:
                cache.clear()
            cache[key] = labels
        idxs.append(b.series_index(labels))
        counts.append(count)
        parts.append(ts[end:])
    if not parts:
        return None
    rows = np.frombuffer(b"".join(parts), np.uint8).reshape(-1, width)
    if bool((rows[:, 0] != 0x12).any() or (rows[:, 1] != width - 2).any()):
        return None
    got = decode_uniform(rows[:, 2:])
    if got is None:
        return None
    batch = b.build()
    batch.series_idx = np.repeat(np.asarray(idxs, dtype=np.int32), counts)
    batch.ts_ms, batch.values = got
    return batch


def _decode_v1(data: bytes, v: _Validator) -> SampleBatch:
    """1.0 fast path: label sets looked up by their bytes, samples decoded with numpy; a request
    whose samples are not in the common layout is decoded message by message instead."""
    fast = _decode_v1_uniform(data, v)
    if fast is not None:
        return fast
    req = _C1_BYTES["WriteRequest"].FromString(data)
    b = BatchBuilder()
    cache = _LABELS_UTF8 if v.utf8 else _LABELS
    counts: list[int] = []
    idxs: list[int] = []
    raw: list[bytes] = []
    lens: list[int] = []
    for ts in req.timeseries:
        key = b"".join(ts.labels)
        labels = cache.get(key)
        if labels is None:
            labels = v.series([(lb.name, lb.value) for lb in map(Label.FromString, ts.labels)])
            if len(cache) >= _LABEL_CACHE_MAX:
                cache.clear()
            cache[key] = labels
        samples = ts.samples
        if not (samples or ts.exemplars or ts.histograms):
            continue
        idx = b.series_index(labels)
        if samples:
            idxs.append(idx)
            counts.append(len(samples))
            raw.append(b"".join(samples))
            lens.extend(map(len, samples))
        _add_extras_v1(b, v, idx, labels, ts)
    _add_metadata_v1(b, req.metadata)
    got = decode_samples(b"".join(raw), np.asarray(lens, dtype=np.int64))
    if got is None:
        return _decode_v1_messages(data, v)
    batch = b.build()
    batch.series_idx = np.repeat(np.asarray(idxs, dtype=np.int32), counts)
    batch.ts_ms, batch.values = got
    return batch


_LABEL_CACHE_MAX = 1 << 18  # label sets; cleared when full (a new series costs one parse)
_LABELS: dict[bytes, Labels] = {}
_LABELS_UTF8: dict[bytes, Labels] = {}
_LABELS_RAW: dict[bytes, Labels] = {}  # keyed by the serialized label fields (tags included)
_LABELS_RAW_UTF8: dict[bytes, Labels] = {}


def _decode_v1_messages(data: bytes, v: _Validator) -> SampleBatch:
    """1.0, one protobuf message object per sample (any valid encoding)."""
    req = WriteRequest.FromString(data)
    b = BatchBuilder()
    for ts in req.timeseries:
        labels = v.series([(lb.name, lb.value) for lb in ts.labels])
        if not (ts.samples or ts.exemplars or ts.histograms):
            continue
        idx = b.series_index(labels)
        for s in ts.samples:
            b.add(idx, s.timestamp, s.value)
        _add_extras_v1(b, v, idx, labels, ts)
    _add_metadata_v1(b, req.metadata)
    return b.build()


def _refs(symbols, refs, what: str) -> list[tuple[str, str]]:
    """Label pairs from 2.0 ``labels_refs``; errors in Prometheus's wording."""
    if len(refs) % 2:
        raise BadInput(f"parsing labels for {what} {list(refs)[:50]}: invalid labelRefs length {len(refs)}", reason="bad_label_refs")
    try:
        return [(symbols[refs[i]], symbols[refs[i + 1]]) for i in range(0, len(refs), 2)]
    except IndexError:
        raise BadInput(
            f"parsing labels for {what} {list(refs)[:50]}: labelRefs outside of symbols table (size {len(symbols)})",
            reason="bad_label_refs",
        ) from None


def _decode_v2(data: bytes, v: _Validator) -> SampleBatch:
    req = WriteRequestV2.FromString(data)
    symbols = list(req.symbols)
    b = BatchBuilder()
    for ts in req.timeseries:
        labels = v.series(_refs(symbols, ts.labels_refs, "series"))
        if not (ts.samples or ts.histograms):
            raise BadInput(
                f"TimeSeries must contain at least one sample or histogram for series {_fmt(labels)[:200]}",
                reason="empty_series",
            )
        md = ts.metadata
        if md.type or md.help_ref or md.unit_ref:
            try:
                help_, unit = symbols[md.help_ref], symbols[md.unit_ref]
            except IndexError:
                raise BadInput(
                    f"metadata of series {_fmt(labels)[:200]}: refs outside of symbols table (size {len(symbols)})",
                    reason="bad_label_refs",
                ) from None
            mtype = METRIC_TYPES[md.type] if 0 <= md.type < len(METRIC_TYPES) else "unknown"
            b.metadata.append(Metadata(dict(labels)["__name__"], mtype, help_, unit))
        idx = b.series_index(labels)
        for s in ts.samples:
            b.add(idx, s.timestamp, s.value)
        if ts.exemplars:
            exs = [(_refs(symbols, e.labels_refs, "exemplar"), e.value, e.timestamp) for e in ts.exemplars]
            _add_exemplars(b, v, idx, labels, exs)
        if ts.histograms:
            _add_histograms(b, idx, labels, ts.histograms)
    return b.build()


def _bad_utf8(data: bytes, version: int) -> str:
    """Describe where a request has a string that is not UTF-8 (decoding with the lax classes)."""
    try:
        if version == 1:
            req = _C1_LAX["WriteRequest"].FromString(data)
            for ts in req.timeseries:
                for lb in ts.labels:
                    if isinstance(lb.name, bytes) or isinstance(lb.value, bytes):
                        pairs = [(str(x.name), str(x.value)) for x in ts.labels]
                        return f"received a series with invalid UTF-8 in label {lb.name!r}={lb.value!r}, series: '{_fmt(pairs)[:200]}'"
        else:
            req = _C2_LAX["Request"].FromString(data)
            for i, s in enumerate(req.symbols):
                if isinstance(s, bytes):
                    return f"symbol {i} is not valid UTF-8: {s[:200]!r}"
    except DecodeError:
        pass
    return "a string field is not valid UTF-8"


def decode_write_request(data: bytes, version: int = 1, *, utf8_names: bool = False) -> SampleBatch:
    """Decode an uncompressed 1.0 ``WriteRequest`` or 2.0 ``Request`` protobuf (see module docstring)."""
    v = _Validator(utf8_names)
    try:
        return _decode_v1(data, v) if version == 1 else _decode_v2(data, v)
    except DecodeError as e:
        if "UTF-8" in str(e):
            raise BadInput(_bad_utf8(data, version), reason="label_invalid_utf8") from e
        raise BadInput(f"malformed remote write protobuf: {e}") from e


def decode_remote_write(
    body: bytes,
    *,
    content_type: str | None = None,
    content_encoding: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    utf8_names: bool = False,
) -> SampleBatch:
    """An HTTP remote write body (snappy + protobuf, version from ``content_type``) -> SampleBatch.

    Raises BadInput (400; reason ``unsupported_media_type`` = 415) or TooLarge (413); on error
    nothing is returned. Refusals that do not fail the request are in ``batch.rejected``.
    """
    version = protocol_version(content_type)
    data = decompress(body, content_encoding, max_bytes)
    return decode_write_request(data, version, utf8_names=utf8_names)


def encode_remote_write(request) -> bytes:
    """Serialize and snappy block-compress a ``WriteRequest`` / ``WriteRequestV2`` message."""
    return bytes(cramjam.snappy.compress_raw(request.SerializeToString()))


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _label_bytes(labels: Labels, extra: Labels = (),
                 cache: dict[Labels, dict[Labels, bytes]] = {}) -> bytes:  # noqa: B006 - a module-level cache
    """The ``Label`` fields of a ``TimeSeries``, encoded once per label set (scrapes repeat them).
    ``extra``: labels added where the set lacks them. Cached under ``extra``, then the producer's
    tuple (an agent's scrape cache holds it anyway), not a merged copy made for every batch."""
    by_set = cache.get(extra)
    if by_set is None:
        if len(cache) > 64:
            cache.clear()
        by_set = cache.setdefault(extra, {})
    hit = by_set.get(labels)
    if hit is None:
        parts = []
        for name, value in _merged(labels, extra) if extra else labels:
            n, v = name.encode(), value.encode()
            body = b"\x0a" + _varint(len(n)) + n + b"\x12" + _varint(len(v)) + v
            parts.append(b"\x0a" + _varint(len(body)) + body)
        hit = b"".join(parts)
        if len(by_set) > 200_000:
            by_set.clear()
        by_set[labels] = hit
    return hit


def _merged(labels: Labels, extra: Labels) -> Labels:
    """``labels`` with the ``extra`` ones it lacks (its own values win), sorted."""
    return tuple(sorted({**dict(extra), **dict(labels)}.items()))


def encode_batch(batch: SampleBatch, exemplars: bool = True, labels: dict[str, str] | None = None) -> bytes:
    """A batch as a remote-write 1.0 body (each series' samples in time order), with its
    exemplars unless ``exemplars`` is false. Samples are encoded together with numpy
    (sample_wire), label sets once per process; only the series loop runs in Python.
    ``labels`` (an agent's external labels) are added to every series that lacks them."""
    extra = tuple(sorted(labels.items())) if labels else ()
    if (exemplars and batch.exemplars) or batch.histograms or (len(batch) and int(batch.ts_ms.min()) < 0):
        if extra:
            batch = replace(batch, series=[_merged(ls, extra) for ls in batch.series])
        return _encode_batch_messages(batch, exemplars)
    if not len(batch):
        return bytes(cramjam.snappy.compress_raw(b""))
    order = np.lexsort((batch.ts_ms, batch.series_idx))
    idx = batch.series_idx[order]
    raw, lens = encode_samples(batch.values[order], batch.ts_ms[order])
    n = len(idx)
    starts = np.flatnonzero(np.r_[True, idx[1:] != idx[:-1]])
    ends = np.r_[starts[1:], n]
    byte_offs = np.r_[0, np.cumsum(lens)]
    parts = []
    series = batch.series
    for s, a, b in zip(idx[starts].tolist(), byte_offs[starts].tolist(), byte_offs[ends].tolist(), strict=True):
        lb = _label_bytes(series[s], extra)
        parts += [b"\x0a", _varint(len(lb) + b - a), lb, raw[a:b]]
    return bytes(cramjam.snappy.compress_raw(b"".join(parts)))


def _encode_batch_messages(batch: SampleBatch, exemplars: bool) -> bytes:
    req = WriteRequest()
    series = [req.timeseries.add() for _ in batch.series]
    for ts, labels in zip(series, batch.series, strict=True):
        for name, value in labels:
            ts.labels.add(name=name, value=value)
    order = np.argsort(batch.ts_ms, kind="stable").tolist()
    idx, t, v = batch.series_idx.tolist(), batch.ts_ms.tolist(), batch.values.tolist()
    for i in order:
        series[idx[i]].samples.add(value=v[i], timestamp=t[i])
    for i, ts_ms, h in sorted(batch.histograms, key=lambda x: x[1]):
        to_remote_write(h, ts_ms, series[i].histograms.add())
    if exemplars:
        for ex in batch.exemplars:
            e = series[ex.series].exemplars.add(value=ex.value, timestamp=ex.ts_ms)
            for name, value in ex.labels:
                e.labels.add(name=name, value=value)
    return encode_remote_write(req)


def written_headers(batch: SampleBatch) -> dict[str, str]:
    """The response headers a 2.0 receiver MUST send (on success and partial failure), for what
    ``batch`` would store: its float samples, native histograms and exemplars."""
    return {
        "X-Prometheus-Remote-Write-Samples-Written": str(len(batch)),
        "X-Prometheus-Remote-Write-Histograms-Written": str(len(batch.histograms)),
        "X-Prometheus-Remote-Write-Exemplars-Written": str(len(batch.exemplars)),
    }
