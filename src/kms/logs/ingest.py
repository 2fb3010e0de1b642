"""OTLP ExportLogsServiceRequest (protobuf bytes) -> log table (see ``schema.py``)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import pyarrow as pa
from google.protobuf.message import DecodeError

from kms.errors import BadInput
from kms.logs.schema import LOG_SCHEMA
from kms.otlp.lite import LOG_COLUMN_FIELDS, LogsRequest
from kms.otlp.resource import service_name_of

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
    return body.ByteSize() == 1 + len(_varint(n)) + n


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def decode_logs(body: bytes, now_ns: int | None = None) -> DecodedLogs:
    try:
        req = LogsRequest.FromString(body)
    except (DecodeError, RuntimeError) as e:
        raise BadInput(f"malformed OTLP logs protobuf: {e}") from e
    now_ns = now_ns or time.time_ns()
    cols: dict[str, list] = {k: [] for k in ("time_ns", "observed_ns", "sev", "sevtext", "line", "tid", "sid", "rest")}
    res_idx: list[int] = []
    scope_idx: list[int] = []
    res_dict: list[bytes] = []
    svc_dict: list[str] = []
    scope_dict: list[bytes] = []
    rejected = 0
    why = ""
    for rl in req.resource_logs:
        r = len(res_dict)
        res_dict.append(rl.resource)
        svc_dict.append(service_name_of(rl.resource))
        for sl in rl.scope_logs:
            sc = len(scope_dict)
            scope_dict.append(sl.scope)
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
                res_idx.append(r)
                scope_idx.append(sc)
    try:
        idx_r = pa.array(res_idx, pa.int32())
        table = pa.Table.from_arrays(
            [
                pa.array(cols["time_ns"], pa.int64()),
                pa.array(cols["observed_ns"], pa.int64()),
                pa.array(cols["sev"], pa.int8()),
                pa.array(cols["sevtext"], pa.string()).dictionary_encode(),
                pa.array(cols["line"], pa.string()),
                pa.array(cols["tid"], pa.binary()),
                pa.array(cols["sid"], pa.binary()),
                pa.DictionaryArray.from_arrays(idx_r, pa.array(svc_dict, pa.string())),
                pa.DictionaryArray.from_arrays(idx_r, pa.array(res_dict, pa.binary())),
                pa.DictionaryArray.from_arrays(pa.array(scope_idx, pa.int32()), pa.array(scope_dict, pa.binary())),
                pa.array(cols["rest"], pa.binary()),
            ],
            schema=LOG_SCHEMA,
        )
    except (pa.ArrowInvalid, OverflowError) as e:
        raise BadInput(f"OTLP log record field out of range: {e}") from e
    return DecodedLogs(table, rejected, why)
