"""Trace id text forms: full 32-char lower hex out; in, any case, with or without leading zeros."""

from __future__ import annotations

from kms.errors import BadInput

__all__ = ["parse_trace_id", "format_trace_id"]


def parse_trace_id(text: str) -> bytes:
    t = text.strip()
    if not t or len(t) > 32:
        raise BadInput(f"invalid trace id {text!r}: want up to 32 hex characters")
    try:
        return bytes.fromhex(t.rjust(32, "0"))
    except ValueError as e:
        raise BadInput(f"invalid trace id {text!r}: not hex") from e


def format_trace_id(b: bytes) -> str:
    return b.hex()
