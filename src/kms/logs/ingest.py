"""OTLP ExportLogsServiceRequest (protobuf bytes) -> log table (see ``schema.py``)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import pyarrow as pa
from google.protobuf.message import DecodeError

from kms.errors import BadInput
from kms.logs.schema import LOG_SCHEMA
from kms.otlp.grouping import Grouping
from kms.otlp.lite import LOG_COLUMN_FIELDS, LogsRequest
from kms.otlp.wire import varint

__all__ = ["DecodedLogs", "decode_logs"]


@dataclass
class DecodedLogs:
    table: pa.Table
    rejected: int = 0
    message: str = ""


def _is_plain_string(body) -> bool:
    """True when the AnyValue holds nothing but a string (so clearing it loses nothing)."""
    s = body.string_value
    if not s:
        return False
    n = len(s.encode())
    return body.ByteSize() == 1 + len(varint(n)) + n


def decode_logs(body: bytes, now_ns: int | None = None) -> DecodedLogs:
    try:
        req = LogsRequest.FromString(body)
    except (DecodeError, RuntimeError) as e:
        raise BadInput(f"malformed OTLP logs protobuf: {e}") from e
    now_ns = now_ns or time.time_ns()
    cols: dict[str, list] = {k: [] for k in ("time_ns", "observed_ns", "sev", "sevtext", "line", "tid", "sid", "rest")}
    g = Grouping()
    rejected = 0
    why = ""
    for rl in req.resource_logs:
        r = g.resource(rl.resource)
        for sl in rl.scope_logs:
            sc = g.scope(sl.scope)
            for rec in sl.log_records:
                tid, sid = rec.trace_id, rec.span_id
                if len(tid) not in (0, 16) or len(sid) not in (0, 8):
                    rejected += 1
                    why = "invalid trace_id or span_id length (want 16 and 8 bytes, or empty)"
                    continue
                observed = rec.observed_time_unix_nano or now_ns
                cols["time_ns"].append(rec.time_unix_nano or observed)
                cols["observed_ns"].append(observed)
                cols["sev"].append(rec.severity_number)
                cols["sevtext"].append(rec.severity_text)
                cols["tid"].append(tid)
                cols["sid"].append(sid)
                line = ""
                if rec.HasField("body") and _is_plain_string(rec.body):
                    line = rec.body.string_value
                    rec.ClearField("body")
                cols["line"].append(line)
                for f in LOG_COLUMN_FIELDS:
                    rec.ClearField(f)
                cols["rest"].append(rec.SerializeToString())
                g.row(r, sc)
    try:
        table = pa.Table.from_arrays(
            [
                pa.array(cols["time_ns"], pa.int64()),
                pa.array(cols["observed_ns"], pa.int64()),
                pa.array(cols["sev"], pa.int8()),
                pa.array(cols["sevtext"], pa.string()).dictionary_encode(),
                pa.array(cols["line"], pa.string()),
                pa.array(cols["tid"], pa.binary()),
                pa.array(cols["sid"], pa.binary()),
                *g.columns(),
                pa.array(cols["rest"], pa.binary()),
            ],
            schema=LOG_SCHEMA,
        )
    except (pa.ArrowInvalid, OverflowError) as e:
        raise BadInput(f"OTLP log record field out of range: {e}") from e
    return DecodedLogs(table, rejected, why)
