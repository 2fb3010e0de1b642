"""Detected fields: JSON and logfmt discovery, structured metadata, type guesses."""

from __future__ import annotations

import pytest

from kms.logs.fields import detect_fields, field_type, field_values
from kms.logs.source import LogEntry


@pytest.mark.parametrize("values, want", [
    ({"1", "200"}, "int"), ({"1.5", "2"}, "float"), ({"true", "False"}, "boolean"), ({"1.5s", "20ms"}, "duration"),
    ({"10KB", "3 MiB"}, "bytes"), ({"1", "x"}, "string"), ({""}, "string"),
])
def test_field_type(values, want):
    assert field_type(values) == want


def test_json_logfmt_and_metadata():
    entries = [
        LogEntry(1, '{"status": 200, "req": {"path": "/a"}, "ok": true}', {"app": "x"}, {"trace_id": "t1"}),
        LogEntry(2, 'status=500 took=1.5s msg="a b"', {"app": "x"}, {"trace_id": "t2"}),
        LogEntry(3, "app=shadowed plain", {"app": "x"}),
    ]
    got = {f["label"]: f for f in detect_fields(entries, 100)}
    assert got["status"] == {"label": "status", "type": "int", "cardinality": 2, "parsers": ["json", "logfmt"],
                             "jsonPath": ["status"]}
    assert got["req_path"]["jsonPath"] == ["req", "path"] and got["ok"]["type"] == "boolean"
    assert got["took"]["type"] == "duration" and got["trace_id"]["parsers"] is None
    assert "app" not in got  # a stream label is not a field
    assert field_values(entries, "msg", 10) == ["a b"]
    assert len(detect_fields(entries, 2)) == 2
