"""OTLP ExportTraceServiceRequest (protobuf bytes) -> span table (see ``schema.py``).

The hot path touches each span's scalar fields once and never an individual attribute: the
rest of the span is re-serialized as-is into ``attrs`` (see ``kms.otlp.lite``).
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
from google.protobuf.message import DecodeError

from kms.errors import BadInput
from kms.otlp.grouping import Grouping
from kms.otlp.lite import SPAN_COLUMN_FIELDS, TracesRequest
from kms.traces.schema import SPAN_SCHEMA

__all__ = ["DecodedSpans", "decode_spans"]

_NO_TRACE = b"\0" * 16


@dataclass
class DecodedSpans:
    table: pa.Table
    rejected: int = 0
    message: str = ""  # why spans were rejected (OTLP partial success)


def decode_spans(body: bytes) -> DecodedSpans:
    """Decode a serialized ExportTraceServiceRequest. Spans with invalid ids are rejected
    (counted, not stored); a body that is not a valid request raises BadInput."""
    try:
        req = TracesRequest.FromString(body)
    except (DecodeError, RuntimeError) as e:
        raise BadInput(f"malformed OTLP traces protobuf: {e}") from e

    trace_ids: list[bytes] = []
    span_ids: list[bytes] = []
    parents: list[bytes] = []
    names: list[str] = []
    kinds: list[int] = []
    starts: list[int] = []
    durations: list[int] = []
    codes: list[int] = []
    messages: list[str] = []
    rest: list[bytes] = []
    g = Grouping()
    rejected = 0
    why = ""
    clear = SPAN_COLUMN_FIELDS

    for rs in req.resource_spans:
        r = g.resource(rs.resource)
        for ss in rs.scope_spans:
            sc = g.scope(ss.scope)
            for s in ss.spans:
                tid, sid, pid = s.trace_id, s.span_id, s.parent_span_id
                if len(tid) != 16 or tid == _NO_TRACE or len(sid) != 8 or len(pid) not in (0, 8):
                    rejected += 1
                    why = "invalid trace_id, span_id or parent_span_id length (want 16, 8 and 0|8 bytes)"
                    continue
                start = s.start_time_unix_nano
                trace_ids.append(tid)
                span_ids.append(sid)
                parents.append(pid)
                names.append(s.name)
                kinds.append(s.kind)
                starts.append(start)
                durations.append(max(s.end_time_unix_nano - start, 0))
                st = s.status
                codes.append(st.code)
                messages.append(st.message)
                for f in clear:
                    s.ClearField(f)
                rest.append(s.SerializeToString())
                g.row(r, sc)

    try:
        table = pa.Table.from_arrays(
            [
                pa.array(starts, pa.int64()),
                pa.array(trace_ids, pa.binary(16)),
                pa.array(span_ids, pa.binary(8)),
                pa.array(parents, pa.binary()),
                pa.array(names, pa.string()),
                pa.array(kinds, pa.int8()),
                pa.array(durations, pa.int64()),
                pa.array(codes, pa.int8()),
                pa.array(messages, pa.string()),
                *g.columns(),
                pa.array(rest, pa.binary()),
            ],
            schema=SPAN_SCHEMA,
        )
    except (pa.ArrowInvalid, OverflowError) as e:
        raise BadInput(f"OTLP span field out of range: {e}") from e
    return DecodedSpans(table, rejected, why)
