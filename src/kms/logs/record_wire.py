"""OTLP logs requests decoded as columns: compiled kernels (numba) walk the serialized
``ExportLogsServiceRequest`` once, read every record's fields where they lie in the bytes, and
write each record's structured metadata text and line straight into Arrow buffers, instead of
a protobuf object, a dict and a text built in Python per record.

Handled: records whose fields are time, severity number (not negative) and text, a string body
(or none), string, integer and boolean attributes, dropped attributes count, flags, trace and
span ids (16 and 8 bytes, or none), observed time and event name, in any order, with a
severity. Any other record (a double, bytes, map or array attribute; a body that is not a
string; ids of another length; no severity at all; one label name twice in a record) or a
malformed request makes ``walk_request`` or ``record_columns`` answer None, and
``kms.logs.ingest`` maps the request record by record instead; the two give the same rows
(``tests/logs/test_record_wire.py``).

Resources and scopes (a few a request) are left as bytes for ``ingest`` to decode with protobuf.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from numba import njit

from kms.logs.bytecopy import copy_bytes
from kms.logs.enrich import DETECTED_LEVEL, level_of_severity, normalise
from kms.logs.recordids import IDS_BYTES, nonzero, put_int, put_u64
from kms.metrics.storage.labels import labels_text

__all__ = ["WireRequest", "walk_request", "record_columns", "PER_RECORD_KEYS", "warm"]

#: metadata keys a record sets itself (a scope or resource attribute of the same name: record by record)
PER_RECORD_KEYS = frozenset({DETECTED_LEVEL, "dropped_attributes_count", "event_name", "flags",
                             "observed_timestamp", "severity_number", "severity_text", "span_id", "trace_id"})

# columns of WireRequest.records
(R_SCOPE, R_TIME, R_OBSERVED, R_SEVERITY, R_FLAGS, R_TEXT_AT, R_TEXT_LEN, R_BODY_AT, R_BODY_LEN, R_TRACE_AT,
 R_SPAN_AT, R_ATTR_FIRST, R_ATTR_COUNT, R_DROPPED, R_EVENT_AT, R_EVENT_LEN) = range(16)
_RECORD_COLS = 16
# columns of WireRequest.attributes: the key's bytes, the value's kind and where or what it is, the key's hash
A_KEY_AT, A_KEY_LEN, A_KIND, A_VALUE, A_VALUE_LEN, A_HASH = range(6)
_ATTR_COLS = 6
_STRING, _INT, _BOOL, _OTHER = 0, 1, 2, 3  # AnyValue kinds (an empty AnyValue is the empty string)

# where a metadata pair's value comes from (per key, in the order the keys sort)
(_FROM_SCOPE, _FROM_ATTRIBUTE, _FROM_LEVEL, _FROM_FLAGS, _FROM_SEVERITY, _FROM_SEVERITY_TEXT, _FROM_DROPPED,
 _FROM_EVENT) = range(8)
_BUILTIN = {DETECTED_LEVEL: _FROM_LEVEL, "flags": _FROM_FLAGS, "severity_number": _FROM_SEVERITY,
            "severity_text": _FROM_SEVERITY_TEXT, "dropped_attributes_count": _FROM_DROPPED, "event_name": _FROM_EVENT}
#: the record's own keys kept as bytes (``recordids``), not in its text (``_record_ids``)
_ID_KEYS = frozenset({"observed_timestamp", "span_id", "trace_id"})
assert _BUILTIN.keys() | _ID_KEYS == PER_RECORD_KEYS
_TRUE_FALSE = np.frombuffer(b"truefalse", np.uint8).copy()  # a boolean attribute, as pdata's AsString writes it
_LEVELS = [level_of_severity(i) for i in range(26)]  # by severity number, 25 standing for all above 24


@dataclass
class WireRequest:
    buf: np.ndarray  # the request's bytes (uint8)
    resources: np.ndarray  # per ResourceLogs: (start, length) of its resource, start -1 if none
    scopes: np.ndarray  # per ScopeLogs: its ResourceLogs, (start, length) of its scope (-1: none)
    records: np.ndarray  # per record, the R_* columns (int64)
    attributes: np.ndarray  # per record attribute, the A_* columns (int64)

    def resource_bytes(self, i: int) -> bytes:
        at, n = self.resources[i]
        return bytes(self.buf[at:at + n]) if at >= 0 else b""

    def scope_bytes(self, i: int) -> bytes:
        _, at, n = self.scopes[i]
        return bytes(self.buf[at:at + n]) if at >= 0 else b""


def walk_request(body: bytes) -> WireRequest | None:
    """The request's resources, scopes, records and attributes, or None if it is malformed or
    holds a record of a shape not handled."""
    buf = np.frombuffer(body, np.uint8)
    empty = np.zeros((0, 1), np.int64)
    status, n_res, n_scopes, n_recs, _ = _walk(buf, False, empty, empty, empty, empty)
    if status:
        return None
    resources, scopes = np.zeros((n_res, 2), np.int64), np.zeros((n_scopes, 3), np.int64)
    records = np.zeros((n_recs, _RECORD_COLS), np.int64)
    room = 4 * n_recs + 16  # attributes: records seldom have more; if they do, again with room for all
    while True:
        attrs = np.empty((room, _ATTR_COLS), np.int64)
        status, _, _, _, n_attrs = _walk(buf, True, resources, scopes, records, attrs)
        if status != 2:
            break
        room = len(buf) // 2
    return None if status else WireRequest(buf, resources, scopes, records, attrs[:n_attrs])


def record_columns(w: WireRequest, scope_mds: list[dict[str, str]],
                   order: np.ndarray) -> tuple[pa.Array, pa.Array, np.ndarray, np.ndarray, np.ndarray] | None:
    """(lines, structured metadata texts as ``labels_text`` writes them but without the record
    ids (dictionary-encoded: each distinct text once), the record ids (a ``recordids.id_matrix``), the number of pairs of each record and
    their size in characters as ``Validator`` counts it, ids included) of the records taken in
    ``order``, each record's pairs its scope's (``scope_mds``) and its own; None where the
    record-by-record mapping decides (see the module doc) or a string is not UTF-8."""
    recs, attrs, buf = w.records, w.attributes, w.buf
    names = _attribute_names(w)
    if names is None:
        return None
    attr_names, attr_name_of = names
    scope_keys = set().union(*scope_mds)
    if set(attr_names) & (PER_RECORD_KEYS | scope_keys):
        return None  # an attribute overriding a scope's pair or overridden by the record's own
    keys = sorted(scope_keys | set(attr_names) | (PER_RECORD_KEYS - _ID_KEYS))
    slot = {k: j for j, k in enumerate(keys)}
    kind = np.array([_BUILTIN.get(k, _FROM_ATTRIBUTE if k in attr_names else _FROM_SCOPE) for k in keys], np.int64)
    prefixes = [labels_text([(k, "")])[1:-2] for k in keys]  # 'name="' (quoted as labels_text would)
    key_buf, key_off = _concat([p.encode() for p in prefixes])
    key_chars = np.array([len(k) for k in keys], np.int64)
    attr_slot = np.array([slot[attr_names[i]] for i in range(len(attr_names))], np.int64)[attr_name_of] \
        if len(attrs) else np.zeros(0, np.int64)
    # scope pairs: their values escaped, per (scope, key) where (-1: the scope has no such pair)
    values, value_at = [], np.full((len(scope_mds), len(keys)), -1, np.int64)
    value_len, value_chars = np.zeros_like(value_at), np.zeros_like(value_at)
    pos = 0
    for s, md in enumerate(scope_mds):
        for k, v in md.items():
            b = labels_text([("a", v)])[4:-2].encode()
            value_at[s, slot[k]], value_len[s, slot[k]], value_chars[s, slot[k]] = pos, len(b), len(v)
            values.append(b)
            pos += len(b)
    scope_buf = np.frombuffer(b"".join(values) or b"\0", np.uint8)
    levels = _levels(w)
    if levels is None:
        return None
    level_names, level_of = levels
    level_buf, level_off = _concat([x.encode() for x in level_names])
    # at most: each key with its longest value (escaped strings twice their bytes, numbers 20)
    n = len(order)
    strings = 2 * int(recs[:, R_TEXT_LEN].sum() + recs[:, R_EVENT_LEN].clip(0).sum()
                      + (attrs[:, A_VALUE_LEN] + 10).sum())
    bound = n * int(2 + (key_off[1:] - key_off[:-1] + 2).sum() + value_len.max(initial=0, axis=0).sum() + 4 * 20
                    + 48 + np.diff(level_off).max()) + strings
    ids = np.zeros((n, IDS_BYTES), np.uint8)
    status, data, offsets, codes, count, size = _texts(
        buf, recs, attrs, order, attr_slot, kind, key_buf, key_off, key_chars, scope_buf, value_at, value_len,
        value_chars, level_buf, level_off, level_of, bound, ids)
    if status:
        return None  # one name twice in a record
    lines_data, line_offsets = _gather(buf, recs[:, R_BODY_AT], recs[:, R_BODY_LEN], order)
    if offsets[-1] >= 1 << 31 or line_offsets[-1] >= 1 << 31:
        return None
    values = pa.Array.from_buffers(pa.string(), len(offsets) - 1, [None, pa.py_buffer(offsets.astype(np.int32)),
                                                                   pa.py_buffer(data)])
    texts = pa.DictionaryArray.from_arrays(pa.Array.from_buffers(pa.int32(), n, [None, pa.py_buffer(codes)]), values)
    lines = pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(line_offsets.astype(np.int32)),
                                                   pa.py_buffer(lines_data)])
    try:  # strings in protobuf are UTF-8: as the protobuf decoder, refuse what is not
        values.validate(full=True)
        lines.validate(full=True)
    except pa.ArrowInvalid:
        return None
    return lines, texts, ids, count, size


def _attribute_names(w: WireRequest) -> tuple[list[str], np.ndarray] | None:
    """(the distinct label names of the attributes' keys, each attribute's index into them)."""
    from kms.logs.ingest import label_name  # (ingest imports this module)

    attrs = w.attributes
    if not len(attrs):
        return [], np.zeros(0, np.int64)
    _, first, inverse = np.unique(attrs[:, A_HASH], return_index=True, return_inverse=True)
    if not _same_keys(w.buf, attrs, first[inverse]):
        return None  # two keys of one hash
    try:
        keys = [bytes(w.buf[a:a + n]).decode() for a, n in attrs[first][:, [A_KEY_AT, A_KEY_LEN]].tolist()]
    except UnicodeDecodeError:
        return None
    names = [label_name(k) for k in keys]
    distinct = sorted(set(names))
    code = np.array([distinct.index(x) for x in names], np.int64)
    return distinct, code[inverse.reshape(-1)]


def _levels(w: WireRequest) -> tuple[list[str], np.ndarray] | None:
    """(level names, each record's index into them): by severity number, else by severity
    text; None if a record has neither (its level comes from its line, record by record)."""
    recs = w.records
    sev = recs[:, R_SEVERITY]
    names = list(_LEVELS)
    of = np.minimum(sev, len(_LEVELS) - 1)
    none = np.flatnonzero(sev == 0)
    if len(none):
        if (recs[none, R_TEXT_LEN] == 0).any():
            return None
        index: dict[str, int] = {}
        for i, x in enumerate(names):
            index.setdefault(x, i)
        for r in none.tolist():
            at, n = recs[r, R_TEXT_AT], recs[r, R_TEXT_LEN]
            try:
                word = normalise(bytes(w.buf[at:at + n]).decode())
            except UnicodeDecodeError:
                return None
            if word not in index:
                index[word] = len(names)
                names.append(word)
            of[r] = index[word]
    return names, of


def _concat(parts: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    off = np.zeros(len(parts) + 1, np.int64)
    np.cumsum([len(p) for p in parts], out=off[1:])
    return np.frombuffer(b"".join(parts) or b"\0", np.uint8), off


def warm() -> None:
    """Compile (or load from numba's cache) the kernels, so the first request does not wait."""
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    req = ExportLogsServiceRequest()
    sl = req.resource_logs.add().scope_logs.add()
    rec = sl.log_records.add(time_unix_nano=1, severity_number=9, trace_id=bytes(16), span_id=bytes(8), flags=1)
    rec.body.string_value = "x"
    rec.attributes.add(key="k").value.int_value = -1
    w = walk_request(req.SerializeToString())
    record_columns(w, [{"scope": "s"}], np.arange(len(w.records)))


# -- kernels ------------------------------------------------------------------------------------
# Each returns a status (0: handled) rather than raising: any surprise sends the request to the
# record-by-record path, which says what is wrong with it. The small helpers are inlined: a call
# between numba functions costs ~8 ns, more than most of them do.


@njit(cache=True, nogil=True, inline="always")
def _varint(buf, at, end):  # pragma: no cover
    """(value as int64, wrapping as protobuf's int64 does; position after it), position -1 if it
    runs past ``end`` or over 10 bytes. (int64 throughout: numba compares uint64 with int64 as floats.)"""
    if at < end and buf[at] < 0x80:  # (most are one byte)
        return np.int64(buf[at]), at + 1
    v = np.uint64(0)
    for k in range(10):
        if at >= end:
            return np.int64(0), -1
        b = buf[at]
        at += 1
        v |= np.uint64(b & 0x7F) << np.uint64(7 * k)
        if b < 0x80:
            return np.int64(v), at
    return np.int64(0), -1


@njit(cache=True, nogil=True, inline="always")
def _fixed(buf, at, width):  # pragma: no cover
    v = np.uint64(0)
    for k in range(width):
        v |= np.uint64(buf[at + k]) << np.uint64(8 * k)
    return v


@njit(cache=True, nogil=True, inline="always")
def _field(buf, at, end, tag):  # pragma: no cover
    """(start, end) of the value of the field whose tag was read (a length-delimited field's
    bytes, else its whole encoding), start -1 if it runs past ``end`` or is a group."""
    wire = tag & 7
    if wire == 0:
        _, after = _varint(buf, at, end)
        return (at, after) if after >= 0 else (-1, -1)
    if wire == 1 or wire == 5:
        after = at + (8 if wire == 1 else 4)
        return (at, after) if after <= end else (-1, -1)
    if wire == 2:
        n, at = _varint(buf, at, end)
        if at < 0 or n < 0 or n > end - at:
            return -1, -1
        return at, at + n
    return -1, -1


@njit(cache=True, nogil=True, inline="always")
def _next(buf, at, end):  # pragma: no cover
    """(tag, start, end) of the field at ``at`` (``_field``'s bounds); start -1 if malformed."""
    tag, at = _varint(buf, at, end)
    if at < 0 or tag < 8 or tag >= 1 << 32:  # (no field number 0, tags are 32-bit: protobuf refuses these)
        return tag, -1, -1
    lo, hi = _field(buf, at, end, tag)
    return tag, lo, hi


@njit(cache=True, nogil=True, inline="always")
def _any_value(buf, at, end):  # pragma: no cover
    """(kind, value or start, length) of the AnyValue in ``buf[at:end]``."""
    kind, value, length = _STRING, at, 0  # empty: the empty string
    seen = False
    while at < end:
        tag, lo, hi = _next(buf, at, end)
        if lo < 0 or seen:  # (one field at most: a oneof)
            return _OTHER, 0, 0
        seen = True
        if tag == 0x0A:
            kind, value, length = _STRING, lo, hi - lo
        elif tag == 0x10 or tag == 0x18:
            v, after = _varint(buf, lo, hi)
            if after < 0:
                return _OTHER, 0, 0
            kind, value = (_BOOL, np.int64(v != 0)) if tag == 0x10 else (_INT, v)
        else:
            return _OTHER, 0, 0
        at = hi
    return kind, value, length


@njit(cache=True, nogil=True)
def _record(buf, at, end, recs, r, attrs, a):  # pragma: no cover
    """Read the LogRecord in ``buf[at:end]`` into row ``r`` (attributes from row ``a``): the
    next attribute row; -1 if the record is not handled, -2 if ``attrs`` is full."""
    for c in range(_RECORD_COLS):
        recs[r, c] = 0
    recs[r, R_TRACE_AT] = -1
    recs[r, R_SPAN_AT] = -1
    recs[r, R_EVENT_LEN] = -1
    recs[r, R_ATTR_FIRST] = a
    first = a
    while at < end:
        tag, lo, hi = _next(buf, at, end)
        if lo < 0:
            return -1
        at = hi
        if tag == 0x09 or tag == 0x59:  # time, observed time
            v = _fixed(buf, lo, 8)
            if v >= np.uint64(1 << 63):
                return -1
            recs[r, R_TIME if tag == 0x09 else R_OBSERVED] = np.int64(v)
        elif tag == 0x10 or tag == 0x38:  # severity number, dropped attributes count
            v, _ = _varint(buf, lo, hi)
            if v < 0 or v >= 1 << 31:  # a negative enum or a count beyond uint32
                return -1
            recs[r, R_SEVERITY if tag == 0x10 else R_DROPPED] = np.int64(v)
        elif tag == 0x1A or tag == 0x62:  # severity text, event name
            recs[r, R_TEXT_AT if tag == 0x1A else R_EVENT_AT] = lo
            recs[r, R_TEXT_LEN if tag == 0x1A else R_EVENT_LEN] = hi - lo
        elif tag == 0x2A:  # body
            kind, value, length = _any_value(buf, lo, hi)
            if kind != _STRING:
                return -1
            recs[r, R_BODY_AT] = value
            recs[r, R_BODY_LEN] = length
        elif tag == 0x32:  # an attribute: KeyValue
            k_at, k_len, kind, value, length = lo, 0, _STRING, lo, 0
            p = lo
            while p < hi:
                t, f_lo, f_hi = _next(buf, p, hi)
                if f_lo < 0:
                    return -1
                p = f_hi
                if t == 0x0A:
                    k_at, k_len = f_lo, f_hi - f_lo
                elif t == 0x12:
                    kind, value, length = _any_value(buf, f_lo, f_hi)
                    if kind == _OTHER:
                        return -1
            if a == len(attrs):
                return -2
            h = np.uint64(14695981039346656037)  # FNV-1a of the key
            for q in range(k_at, k_at + k_len):
                h = (h ^ np.uint64(buf[q])) * np.uint64(1099511628211)
            attrs[a, A_KEY_AT] = k_at
            attrs[a, A_KEY_LEN] = k_len
            attrs[a, A_KIND] = kind
            attrs[a, A_VALUE] = value
            attrs[a, A_VALUE_LEN] = length
            attrs[a, A_HASH] = np.int64(h)
            a += 1
        elif tag == 0x45:  # flags
            recs[r, R_FLAGS] = np.int64(_fixed(buf, lo, 4))
        elif tag == 0x4A or tag == 0x52:  # trace id, span id
            n = hi - lo
            if n != 0 and n != (16 if tag == 0x4A else 8):
                return -1
            recs[r, R_TRACE_AT if tag == 0x4A else R_SPAN_AT] = lo if n else -1
    recs[r, R_ATTR_COUNT] = a - first
    return a


@njit(cache=True, nogil=True, inline="always")
def _span_once(parts, row, col, lo, hi):  # pragma: no cover
    """Note a message's (start, length) in ``parts[row, col:col + 2]``; False if it was already
    there (a message field twice: protobuf would merge them, the record-by-record path does)."""
    if parts[row, col] >= 0:
        return False
    parts[row, col] = lo
    parts[row, col + 1] = hi - lo
    return True


@njit(cache=True, nogil=True)
def _walk(buf, fill, resources, scopes, recs, attrs):  # pragma: no cover
    """Read the request's parts: (status, resources, scopes, records, attributes); status 1 if
    the request is malformed or a record is not handled, 2 if ``attrs`` is too short. Not
    ``fill``ing: count the resources, scopes and records only."""
    end = len(buf)
    n_res = n_scopes = n_recs = n_attrs = 0
    at = 0
    while at < end:
        tag, lo, hi = _next(buf, at, end)
        if lo < 0:
            return 1, 0, 0, 0, 0
        at = hi
        if tag != 0x0A:  # not resource_logs: an unknown field
            continue
        if fill:
            resources[n_res, 0] = -1
            resources[n_res, 1] = 0
        while lo < hi:  # ResourceLogs
            t, s_lo, s_hi = _next(buf, lo, hi)
            if s_lo < 0:
                return 1, 0, 0, 0, 0
            lo = s_hi
            if t == 0x0A:  # resource
                if fill and not _span_once(resources, n_res, 0, s_lo, s_hi):
                    return 1, 0, 0, 0, 0
            elif t == 0x12:  # scope_logs
                if fill:
                    scopes[n_scopes, 0] = n_res
                    scopes[n_scopes, 1] = -1
                    scopes[n_scopes, 2] = 0
                while s_lo < s_hi:  # ScopeLogs
                    u, r_lo, r_hi = _next(buf, s_lo, s_hi)
                    if r_lo < 0:
                        return 1, 0, 0, 0, 0
                    s_lo = r_hi
                    if u == 0x0A:  # scope
                        if fill and not _span_once(scopes, n_scopes, 1, r_lo, r_hi):
                            return 1, 0, 0, 0, 0
                    elif u == 0x12:  # a log record
                        if fill:
                            n_attrs = _record(buf, r_lo, r_hi, recs, n_recs, attrs, n_attrs)
                            if n_attrs < 0:
                                return -n_attrs, 0, 0, 0, 0
                            recs[n_recs, R_SCOPE] = n_scopes
                        n_recs += 1
                n_scopes += 1
        n_res += 1
    return 0, n_res, n_scopes, n_recs, n_attrs


@njit(cache=True, nogil=True)
def _same_keys(buf, attrs, first):  # pragma: no cover
    """Whether each attribute's key is the same bytes as the key of the one at ``first``."""
    for i in range(len(attrs)):
        j = first[i]
        n = attrs[i, A_KEY_LEN]
        if n != attrs[j, A_KEY_LEN]:
            return False
        a, b = attrs[i, A_KEY_AT], attrs[j, A_KEY_AT]
        for q in range(n):
            if buf[a + q] != buf[b + q]:
                return False
    return True


@njit(cache=True, nogil=True, inline="always")
def _copy(out, o, src, at, n):  # pragma: no cover
    copy_bytes(out, o, src, at, n)
    return o + n


@njit(cache=True, nogil=True, inline="always")
def _put_escaped(out, o, src, at, n):  # pragma: no cover
    """Write ``src[at:at+n]`` escaped as a label value: (position after it, its characters)."""
    chars = 0
    escapes = 0
    for q in range(at, at + n):  # (no early exit: this loop vectorises)
        c = src[q]
        chars += (c & 0xC0) != 0x80
        escapes += (c == 0x5C) | (c == 0x22) | (c == 0x0A)
    if escapes == 0:
        copy_bytes(out, o, src, at, n)
        return o + n, chars
    chars = 0
    for q in range(at, at + n):
        c = src[q]
        chars += (c & 0xC0) != 0x80
        if c == 0x5C or c == 0x22 or c == 0x0A:  # \ " newline
            out[o] = 0x5C
            out[o + 1] = 0x6E if c == 0x0A else c
            o += 2
        else:
            out[o] = c
            o += 1
    return o, chars


@njit(cache=True, nogil=True)
def _texts(buf, recs, attrs, order, attr_slot, kind, key_buf, key_off, key_chars, scope_buf, value_at, value_len,
           value_chars, level_buf, level_off, level_of, bound, ids):  # pragma: no cover
    """Each record's metadata text (records taken in ``order``), written into ``bound`` bytes:
    (status, distinct text bytes, their offsets, each record's code among them, pairs,
    characters): records of a scope mostly share one text. Scope values come escaped, with their
    characters counted. The record ids (trace and span id, observed time) go to ``ids`` (one
    ``recordids`` row a record), not into the text; they count in the pairs and characters."""
    n = len(order)
    offsets = np.zeros(n + 1, np.int64)  # of the distinct texts
    codes = np.zeros(n, np.int32)  # each record's text among them
    count = np.zeros(n, np.int64)
    size = np.zeros(n, np.int64)
    own = np.full(len(kind), -1, np.int64)  # the record's attribute of each key
    out = np.empty(bound, np.uint8)
    digits = np.empty(24, np.uint8)
    mask = 1
    while mask < 2 * n:
        mask *= 2
    table = np.full(mask, -1, np.int64)  # open addressing: hash slot -> distinct text
    mask -= 1
    distinct = 0
    o = 0
    base_pairs = base_chars = 0  # of the record before, without its ids
    for i in range(n):
        start = o
        r = order[i]
        id_pairs, id_chars = _record_ids(buf, recs, r, ids[i], digits)
        if i and _same_inputs(buf, recs, attrs, attr_slot, level_of, r, order[i - 1]):
            codes[i] = codes[i - 1]  # the same text as the record before: only the ids differ
            count[i] = base_pairs + id_pairs
            size[i] = base_chars + id_chars
            continue
        s = recs[r, R_SCOPE]
        a0 = recs[r, R_ATTR_FIRST]
        a1 = a0 + recs[r, R_ATTR_COUNT]
        for a in range(a0, a1):
            if own[attr_slot[a]] >= 0:
                return 1, out, offsets, codes, count, size  # a name twice in the record
            own[attr_slot[a]] = a
        out[o] = 0x7B  # {
        o += 1
        pairs = 0
        chars = 0
        for j in range(len(kind)):
            k = kind[j]
            if k == _FROM_SCOPE:
                present = value_at[s, j] >= 0
            elif k == _FROM_ATTRIBUTE:
                present = own[j] >= 0
            elif k == _FROM_LEVEL:
                present = True
            elif k == _FROM_FLAGS:
                present = recs[r, R_FLAGS] != 0
            elif k == _FROM_SEVERITY:
                present = recs[r, R_SEVERITY] != 0
            elif k == _FROM_SEVERITY_TEXT:
                present = recs[r, R_TEXT_LEN] > 0
            elif k == _FROM_DROPPED:
                present = recs[r, R_DROPPED] != 0
            else:
                present = recs[r, R_EVENT_LEN] > 0
            if not present:
                continue
            if pairs:
                out[o] = 0x2C  # ,
                o += 1
            o = _copy(out, o, key_buf, key_off[j], key_off[j + 1] - key_off[j])
            if k == _FROM_SCOPE:
                o = _copy(out, o, scope_buf, value_at[s, j], value_len[s, j])
                c = value_chars[s, j]
            elif k == _FROM_ATTRIBUTE:
                a = own[j]
                if attrs[a, A_KIND] == _STRING:
                    o, c = _put_escaped(out, o, buf, attrs[a, A_VALUE], attrs[a, A_VALUE_LEN])
                elif attrs[a, A_KIND] == _INT:
                    o, c = put_int(out, o, attrs[a, A_VALUE])
                else:  # true / false
                    c = 4 if attrs[a, A_VALUE] else 5
                    o = _copy(out, o, _TRUE_FALSE, 0 if c == 4 else 4, c)
            elif k == _FROM_LEVEL:
                lv = level_of[r]
                c = level_off[lv + 1] - level_off[lv]
                o = _copy(out, o, level_buf, level_off[lv], c)
            elif k == _FROM_FLAGS:
                o, c = put_int(out, o, recs[r, R_FLAGS])
            elif k == _FROM_SEVERITY:
                o, c = put_int(out, o, recs[r, R_SEVERITY])
            elif k == _FROM_SEVERITY_TEXT:
                o, c = _put_escaped(out, o, buf, recs[r, R_TEXT_AT], recs[r, R_TEXT_LEN])
            elif k == _FROM_DROPPED:
                o, c = put_int(out, o, recs[r, R_DROPPED])
            else:
                o, c = _put_escaped(out, o, buf, recs[r, R_EVENT_AT], recs[r, R_EVENT_LEN])
            out[o] = 0x22  # "
            o += 1
            pairs += 1
            chars += key_chars[j] + c
        out[o] = 0x7D  # }
        o += 1
        for a in range(a0, a1):
            own[attr_slot[a]] = -1
        base_pairs, base_chars = pairs, chars
        count[i] = pairs + id_pairs
        size[i] = chars + id_chars
        # the text once: a record whose text an earlier one wrote takes that one's code (most
        # often the one before it, of the same scope: compared before any hashing)
        if i and offsets[codes[i - 1] + 1] - offsets[codes[i - 1]] == o - start \
                and _same_bytes(out, offsets[codes[i - 1]], start, o - start):
            codes[i] = codes[i - 1]
            o = start
            continue
        h = np.uint64(14695981039346656037)
        for q in range(start, o):
            h = (h ^ np.uint64(out[q])) * np.uint64(1099511628211)
        slot = np.int64(h & np.uint64(mask))
        while True:
            d = table[slot]
            if d < 0:
                table[slot] = distinct
                offsets[distinct + 1] = o
                codes[i] = distinct
                distinct += 1
                break
            if offsets[d + 1] - offsets[d] == o - start and _same_bytes(out, offsets[d], start, o - start):
                codes[i] = d
                o = start
                break
            slot = (slot + 1) & mask
    return 0, out[:o].copy(), offsets[:distinct + 1].copy(), codes, count, size


@njit(cache=True, nogil=True, inline="always")
def _record_ids(buf, recs, r, row, digits):  # pragma: no cover
    """Writes record ``r``'s ids into ``row`` (``recordids``; an id of zeros is none, as Loki's
    ``IsEmpty``; an observed time only with a time): (their pairs, their characters)."""
    pairs = chars = 0
    at = recs[r, R_TRACE_AT]
    if at >= 0 and nonzero(buf, at, 16):
        copy_bytes(row, 0, buf, at, 16)
        pairs += 1
        chars += 8 + 32
    at = recs[r, R_SPAN_AT]
    if at >= 0 and nonzero(buf, at, 8):
        copy_bytes(row, 16, buf, at, 8)
        pairs += 1
        chars += 7 + 16
    v = recs[r, R_OBSERVED]
    if recs[r, R_TIME] != 0 and v != 0:
        put_u64(row, 24, np.uint64(v))
        pairs += 1
        chars += 18 + put_int(digits, 0, v)[1]
    return pairs, chars


@njit(cache=True, nogil=True, inline="always")
def _same_bytes(buf, a, b, n):  # pragma: no cover
    for q in range(n):
        if buf[a + q] != buf[b + q]:
            return False
    return True


@njit(cache=True, nogil=True)
def _same_inputs(buf, recs, attrs, attr_slot, level_of, r, p):  # pragma: no cover
    """Whether records ``r`` and ``p`` have the same metadata text: the same scope, level,
    flags, severity, dropped count, severity text, event name and attributes (in one order)."""
    for c in (R_SCOPE, R_FLAGS, R_SEVERITY, R_DROPPED, R_TEXT_LEN, R_EVENT_LEN, R_ATTR_COUNT):
        if recs[r, c] != recs[p, c]:
            return False
    if level_of[r] != level_of[p]:
        return False
    if recs[r, R_TEXT_LEN] > 0 and not _same_bytes(buf, recs[r, R_TEXT_AT], recs[p, R_TEXT_AT], recs[r, R_TEXT_LEN]):
        return False
    if recs[r, R_EVENT_LEN] > 0 and not _same_bytes(buf, recs[r, R_EVENT_AT], recs[p, R_EVENT_AT],
                                                    recs[r, R_EVENT_LEN]):
        return False
    a, b = recs[r, R_ATTR_FIRST], recs[p, R_ATTR_FIRST]
    for t in range(recs[r, R_ATTR_COUNT]):
        x, y = a + t, b + t
        if attr_slot[x] != attr_slot[y] or attrs[x, A_KIND] != attrs[y, A_KIND]:
            return False
        if attrs[x, A_KIND] == _STRING:
            n = attrs[x, A_VALUE_LEN]
            if n != attrs[y, A_VALUE_LEN] or not _same_bytes(buf, attrs[x, A_VALUE], attrs[y, A_VALUE], n):
                return False
        elif attrs[x, A_VALUE] != attrs[y, A_VALUE]:
            return False
    return True


@njit(cache=True, nogil=True)
def _gather(buf, at, length, order):  # pragma: no cover
    """The byte ranges ``buf[at[r]:at[r]+length[r]]`` for r in ``order``, back to back, and their offsets."""
    offsets = np.zeros(len(order) + 1, np.int64)
    for i in range(len(order)):
        offsets[i + 1] = offsets[i] + length[order[i]]
    out = np.empty(offsets[-1], np.uint8)
    for i in range(len(order)):
        r = order[i]
        copy_bytes(out, offsets[i], buf, at[r], length[r])
    return out, offsets
