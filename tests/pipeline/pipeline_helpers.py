"""Shared by the pipeline tests: attribute literals and polling."""

from __future__ import annotations

import time

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue


def kv(k: str, v: str) -> KeyValue:
    return KeyValue(key=k, value=AnyValue(string_value=v))


def wait_for(fn, timeout_s: float = 30.0):
    """Poll ``fn`` until it returns something truthy, and return that."""
    deadline = time.monotonic() + timeout_s
    while True:
        got = fn()
        if got:
            return got
        assert time.monotonic() < deadline, "not in time"
        time.sleep(0.25)
