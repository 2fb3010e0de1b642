"""OTLP log records decoded as columns: the fields of serialized ``LogRecord`` messages read with
numpy from the bytes, and each record's structured metadata text built with Arrow kernels,
instead of a protobuf object, a dict and a text built in Python per record.

Handled: records whose fields are among time, severity number and text, a string body, string
and integer attributes, flags, trace and span ids and observed time, in field-number order (as
the SDKs and the Collector write them), with a severity. ``decode_records`` answers None for any
other record (another kind of attribute, an event name, dropped attributes, a body that is not a
string, ids of the wrong length, a negative number, no severity), and ``kms.logs.ingest`` maps
the request record by record instead; the two give the same rows
(``tests/logs/test_record_wire.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kms.logs.enrich import DETECTED_LEVEL, level_of_severity, normalise
from kms.logs.entry_wire import optional_varint
from kms.protoclasses import message_classes

__all__ = ["RawLogsRequest", "RecordColumns", "decode_records", "metadata_texts", "PER_RECORD_KEYS"]

# ExportLogsServiceRequest with each scope's records (and the resource and scope) left as bytes
_RAW = message_classes("kmsotlplogsraw", {
    "RawScopeLogs": [("scope", 1, "bytes", False), ("log_records", 2, "bytes", True), ("schema_url", 3, "string", False)],
    "RawResourceLogs": [("resource", 1, "bytes", False), ("scope_logs", 2, ".RawScopeLogs", True),
                        ("schema_url", 3, "string", False)],
    "RawLogsRequest": [("resource_logs", 1, ".RawResourceLogs", True)],
})
RawLogsRequest = _RAW["RawLogsRequest"]

# LogRecord field tags (field number << 3 | wire type), in number order
_TIME, _SEVERITY, _SEVERITY_TEXT, _BODY = 0x09, 0x10, 0x1A, 0x2A
_FLAGS, _TRACE, _SPAN, _OBSERVED = 0x45, 0x4A, 0x52, 0x59
_STRING_VALUE = 0x0A  # AnyValue.string_value
_INT_VALUE = 0x18  # AnyValue.int_value
_ATTRIBUTE, _KEY, _VALUE = 0x32, 0x0A, 0x12  # LogRecord.attributes; KeyValue.key, KeyValue.value
_MOST_ATTRIBUTES = 64
#: metadata keys a record sets itself (a scope or resource attribute of the same name: record by record)
PER_RECORD_KEYS = frozenset({DETECTED_LEVEL, "flags", "observed_timestamp", "severity_number", "severity_text",
                             "span_id", "trace_id"})
# detected_level by severity number (0: none; above 24: fatal, as level_of_severity says)
_LEVELS = pa.array([None, *(level_of_severity(i) for i in range(1, 26))], pa.string())
_HEX = np.array([int.from_bytes(f"{i:02x}".encode(), "little") for i in range(256)], np.uint16)
_BYTE_KIND = np.zeros(256, np.uint8)  # 1: part of a multi-byte UTF-8 character; 2: escaped in a label text
_BYTE_KIND[0x80:] = 1
_BYTE_KIND[[ord("\\"), ord('"'), ord("\n")]] = 2


@dataclass
class RecordColumns:
    time: np.ndarray  # uint64, 0 where unset
    observed: np.ndarray
    severity: np.ndarray  # int64
    severity_text: pa.Array  # string ("" where unset)
    body: pa.Array  # string
    flags: np.ndarray
    trace_id: pa.Array  # lower hex, null where unset
    span_id: pa.Array
    attributes: dict[str, pa.Array]  # label name -> string value per record, null where unset


def decode_records(records: list[bytes]) -> RecordColumns | None:
    """The records as columns, or None if one of them is not of the handled shape."""
    n = len(records)
    lens = np.fromiter(map(len, records), np.int64, n)
    ends = np.cumsum(lens)
    starts = ends - lens
    buf = np.frombuffer(b"".join([*records, bytes(32)]), np.uint8)  # zero padding: reads past the end see 0
    at = starts
    time, at = _fixed(buf, at, _TIME, 8)
    severity, at = optional_varint(buf, at, _SEVERITY, 5)  # an enum: 5 bytes unless negative
    if severity is None:
        return None
    text, at = _delimited(buf, at, _SEVERITY_TEXT)
    body, at = _delimited(buf, at, _BODY)
    attributes, at = _attributes(buf, at)
    if attributes is None:
        return None
    flags, at = _fixed(buf, at, _FLAGS, 4)
    trace, at = _delimited(buf, at, _TRACE)
    span, at = _delimited(buf, at, _SPAN)
    observed, at = _fixed(buf, at, _OBSERVED, 8)
    if any(x is None for x in (text, body, trace, span)) or (at != ends).any():
        return None
    # the body: empty, or an AnyValue holding only a string
    b_at, b_len = body
    has_body = b_len > 0
    if has_body.any():
        s_len, s_at = optional_varint(buf, b_at, _STRING_VALUE, 3)
        if s_len is None or (has_body & (s_at == b_at)).any() or (has_body & (s_at + s_len != b_at + b_len)).any():
            return None
        body = (np.where(has_body, s_at, b_at), np.where(has_body, s_len, 0))
    trace_at, trace_len = trace
    span_at, span_len = span
    if (~np.isin(trace_len, (0, 16))).any() or (~np.isin(span_len, (0, 8))).any():
        return None
    if ((severity == 0) & (text[1] == 0)).any():
        return None  # no severity: the level comes from the line (record by record)
    strings = _strings(buf, [text, body])
    if strings is None:
        return None
    return RecordColumns(time, observed, severity, strings[0], strings[1], flags,
                         _hex(buf, trace_at, trace_len, 16), _hex(buf, span_at, span_len, 8), attributes)


def _attributes(buf: np.ndarray, at: np.ndarray) -> tuple[dict[str, pa.Array] | None, np.ndarray]:
    """The records' string and integer attributes, per label name (as ``ingest`` names them) a
    string array with null where a record lacks it, and the position after them; None for an
    attribute of another kind (or a negative integer), or two of a record with one name."""
    rec, kv = [], []  # per attribute: its record, (start, length) of its KeyValue
    for _ in range(_MOST_ATTRIBUTES + 1):
        has = buf[at] == _ATTRIBUTE
        if not has.any():
            break
        rows = np.flatnonzero(has)
        (start, length), after = _delimited(buf, at[rows], _ATTRIBUTE)
        if start is None:
            return None, at
        rec.append(rows)
        kv.append((start, length))
        at = at.copy()
        at[rows] = after
    else:
        return None, at
    if not rec:
        return {}, at
    r = np.concatenate(rec)
    start = np.concatenate([k[0] for k in kv])
    end = start + np.concatenate([k[1] for k in kv])
    order = np.argsort(start, kind="stable")  # buffer order, for _strings
    r, start, end = r[order], start[order], end[order]
    key, after = _delimited(buf, start, _KEY)
    if key is None or (after == start).any():
        return None, at
    value, v_end = _delimited(buf, after, _VALUE)
    if value is None or (v_end != end).any() or (v_end == after).any():
        return None, at
    v_at, v_len = value  # an AnyValue: a string_value or a non-negative int_value alone
    s_len, s_at = optional_varint(buf, v_at, _STRING_VALUE, 3)
    number, n_end = optional_varint(buf, v_at, _INT_VALUE, 9)
    if s_len is None or number is None:
        return None, at
    is_str = s_at != v_at
    if (~is_str & (n_end == v_at)).any() or (is_str & (s_at + s_len != v_at + v_len)).any() \
            or (~is_str & (n_end != v_at + v_len)).any():
        return None, at
    strings = _strings(buf, [key, (np.where(is_str, s_at, v_at), np.where(is_str, s_len, 0))])
    if strings is None:
        return None, at
    if not is_str.all():  # as any_value_string writes an int
        strings[1] = pc.if_else(pa.array(is_str), strings[1], pa.array(number).cast(pa.string()))
    from kms.logs.ingest import label_name  # (ingest imports this module)

    keys = pc.dictionary_encode(strings[0])
    names = [label_name(k) for k in keys.dictionary.to_pylist()]  # per distinct key
    distinct = sorted(set(names))
    code = np.array([distinct.index(x) for x in names], np.int64)[keys.indices.to_numpy(zero_copy_only=False)]
    if np.bincount(r * len(distinct) + code).max() > 1:
        return None, at  # a name twice in a record: dict order decides, record by record
    out = {}
    n = len(at)
    for j, name in enumerate(distinct):
        sel = np.flatnonzero(code == j)
        index = np.full(n, -1, np.int64)
        index[r[sel]] = np.arange(len(sel))
        out[name] = strings[1].take(pa.array(sel)).take(pa.array(index, mask=index < 0))
    return out, at


def metadata_texts(scope_mds: list[dict[str, str]], scope_of: np.ndarray,
                   c: RecordColumns) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """(each record's structured metadata as ``labels_text`` would write it, the number of its
    pairs, their size in characters as ``Validator`` counts it), from its scope's pairs
    (``scope_mds[scope_of[i]]``) and its own: as ``kms.logs.ingest`` builds them record by record."""
    n = len(c.time)
    pieces: dict[str, tuple[pa.Array, np.ndarray]] = {}  # key -> (pair texts, value characters, -1 absent)
    at = pa.array(scope_of)
    for k in sorted(set().union(*scope_mds)):
        pieces[k] = _pairs(k, pa.array([md.get(k) for md in scope_mds], pa.string()).take(at), None, escape=True)
    for k, values in c.attributes.items():
        pieces[k] = _pairs(k, values, None, escape=True)
    sev = c.severity
    level = _LEVELS.take(pa.array(np.minimum(sev, len(_LEVELS) - 1)))
    no_number = sev == 0
    if no_number.any():
        words = pc.unique(c.severity_text.filter(pa.array(no_number)))
        norm = pa.array([normalise(w) for w in words.to_pylist()], pa.string())
        level = pc.if_else(pa.array(no_number), norm.take(pc.index_in(c.severity_text, words)), level)
    pieces[DETECTED_LEVEL] = _pairs(DETECTED_LEVEL, level, None)
    pieces["flags"] = _pairs("flags", pa.array(c.flags).cast(pa.string()), c.flags != 0)
    pieces["observed_timestamp"] = _pairs("observed_timestamp", pa.array(c.observed).cast(pa.string()),
                                          (c.time != 0) & (c.observed != 0))
    pieces["severity_number"] = _pairs("severity_number", pa.array(sev).cast(pa.string()), sev != 0)
    pieces["severity_text"] = _pairs("severity_text", c.severity_text, pc.binary_length(c.severity_text)
                                     .to_numpy(zero_copy_only=False) > 0, escape=True)
    pieces["span_id"] = _pairs("span_id", c.span_id, None)
    pieces["trace_id"] = _pairs("trace_id", c.trace_id, None)
    keys = sorted(pieces)
    joined = pc.binary_join_element_wise(*[pieces[k][0] for k in keys], ",", null_handling="skip")
    texts = pc.binary_join_element_wise("{", joined, "}", "")
    count = np.zeros(n, np.int64)
    size = np.zeros(n, np.int64)
    for k in keys:
        chars = pieces[k][1]
        present = chars >= 0
        count += present
        size += np.where(present, len(k) + chars, 0)
    return texts, count, size


def _pairs(key: str, values: pa.Array, present: np.ndarray | None,
           escape: bool = False) -> tuple[pa.Array, np.ndarray]:
    """(``key="value"`` per record, null where absent; the value's characters, -1 where absent)."""
    if present is not None:
        values = pc.if_else(pa.array(present), values, pa.scalar(None, pa.string()))
    data = values.buffers()[2]
    kinds = _BYTE_KIND[np.frombuffer(data, np.uint8)] if data is not None else np.zeros(0, np.uint8)
    if (kinds & 1).any():  # a multi-byte character somewhere: characters are not bytes
        chars = pc.utf8_length(values)
    else:
        chars = pc.binary_length(values)
    chars = pc.fill_null(chars, -1).to_numpy(zero_copy_only=False).astype(np.int64)
    if escape and (kinds & 2).any():  # (the buffer may hold more than the values: a false alarm costs time only)
        for a, b in (("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n")):
            values = pc.replace_substring(values, a, b)
    return pc.binary_join_element_wise(f'{key}="', values, '"', ""), chars


def _fixed(buf: np.ndarray, at: np.ndarray, tag: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """The little-endian fixed-width field after ``tag`` at each position (0 where absent)."""
    has = buf[at] == tag
    raw = buf[(at + 1)[:, None] + np.arange(width)]
    value = raw.copy().view(f"<u{width}").reshape(-1)
    return np.where(has, value, 0).astype(np.uint64), np.where(has, at + 1 + width, at)


def _delimited(buf: np.ndarray, at: np.ndarray, tag: int) -> tuple[tuple[np.ndarray, np.ndarray] | None, np.ndarray]:
    """((start, length) of the bytes of the length-delimited field after ``tag``, length 0 where
    absent), the position after it; None if a length takes more than 3 bytes."""
    length, after = optional_varint(buf, at, tag, 3)
    if length is None:
        return None, at
    start = after  # where absent: at, with length 0
    return (start, length), start + length


def _strings(buf: np.ndarray, fields: list[tuple[np.ndarray, np.ndarray]]) -> list[pa.Array] | None:
    """Each field's bytes as a string array (None on invalid UTF-8): its ranges of ``buf``
    kept, field by field."""
    out = []
    for start, length in fields:  # ascending, apart: runs of skipped and kept bytes alternate
        n = len(start)
        runs = np.empty(2 * n, np.int64)
        runs[0::2] = start - np.concatenate([[0], (start + length)[:-1]])
        runs[1::2] = length
        keep = np.repeat(np.tile(np.array([False, True]), n), runs)
        data = buf[:len(keep)][keep]
        offsets = np.zeros(len(start) + 1, np.int64)
        np.cumsum(length, out=offsets[1:])
        if offsets[-1] >= 1 << 31:
            return None
        arr = pa.Array.from_buffers(pa.binary(), len(start), [None, pa.py_buffer(offsets.astype(np.int32)),
                                                              pa.py_buffer(data)])
        try:
            out.append(arr.cast(pa.string()))
        except pa.ArrowInvalid:
            return None
    return out


def _hex(buf: np.ndarray, start: np.ndarray, length: np.ndarray, width: int) -> pa.Array:
    """Lower hex of the ``width``-byte ids at ``start``; null where ``length`` is 0."""
    n = len(start)
    chars = _HEX[buf[start[:, None] + np.arange(width)]].tobytes()
    offsets = np.arange(n + 1, dtype=np.int32) * (2 * width)
    valid = length > 0
    return pa.Array.from_buffers(pa.string(), n, [pa.array(valid).buffers()[1] if not valid.all() else None,
                                                  pa.py_buffer(offsets), pa.py_buffer(chars)])
