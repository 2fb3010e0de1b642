"""Attribute decoding over the span table: the vectorised readers against protobuf decoding."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from kms.testing import anyvalue
from kms.traces.attributes import (
    SpanAttributes,
    TypedColumn,
    anyvalue_to_python,
    attribute_keys,
    attribute_values,
    dictionary_codes,
    take_rows,
)

KEYS = ["http.method", "k", "a" * 130, "dup", "ünï", "x.y.z"]



def span_bytes(attrs: list[tuple[str, object]], events: list[dict] = (), events_first: bool = False,
               trace_state: str = "") -> bytes:
    """An attrs-column value; ``events_first`` puts events before attributes on the wire."""
    a = trace_pb2.Span(trace_state=trace_state)
    for k, v in attrs:
        a.attributes.add(key=k, value=anyvalue(v))
    e = trace_pb2.Span()
    for ev in events:
        x = e.events.add(name=ev["name"], time_unix_nano=ev.get("t", 0))
        for k, v in ev.get("attrs", {}).items():
            x.attributes.add(key=k, value=anyvalue(v))
    return e.SerializeToString() + a.SerializeToString() if events_first else a.SerializeToString() + e.SerializeToString()


def table(attrs_values: list[bytes], chunk: int = 3) -> pa.Table:
    n = len(attrs_values)
    res = [resource_pb2.Resource(attributes=[common_pb2.KeyValue(key="service.name", value=anyvalue(f"s{i % 2}"))])
           .SerializeToString() for i in range(2)]
    scopes = [common_pb2.InstrumentationScope(name="lib", version="1", attributes=[
        common_pb2.KeyValue(key="lang", value=anyvalue("go"))]).SerializeToString()]
    idx = pa.array([i % 2 for i in range(n)], pa.int32())
    batches = []
    for s in range(0, max(n, 1), chunk):
        sl = slice(s, s + chunk)
        batches.append(pa.record_batch({
            "resource": pa.DictionaryArray.from_arrays(idx[sl], pa.array(res, pa.binary())),
            "scope": pa.DictionaryArray.from_arrays(pa.array([0] * len(attrs_values[sl]), pa.int32()),
                                                    pa.array(scopes, pa.binary())),
            "attrs": pa.array(attrs_values[sl], pa.binary()),
        }))
    return pa.Table.from_batches(batches)


def reference(raw: bytes, key: str):
    span = trace_pb2.Span.FromString(raw)
    for kv in span.attributes:
        if kv.key == key:
            return anyvalue_to_python(kv.value)
    return None


_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=False),
    st.text(max_size=140), st.binary(max_size=5),
)
_VALUES = st.one_of(_SCALARS, st.lists(st.integers(-5, 5), max_size=3),
                    st.dictionaries(st.sampled_from("ab"), st.integers(-9, 9), max_size=2))
_ROW = st.tuples(
    st.lists(st.tuples(st.sampled_from(KEYS), _VALUES), max_size=6),
    st.lists(st.fixed_dictionaries({"name": st.sampled_from(["e1", "e2"]),
                                    "attrs": st.dictionaries(st.sampled_from(KEYS), _SCALARS, max_size=2)}), max_size=2),
    st.booleans(),
    st.sampled_from(["", "k=v", "\x0a\x01k\x12"]),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_ROW, min_size=1, max_size=12), st.sampled_from(KEYS), st.booleans())
def test_span_attribute_matches_protobuf(rows, key, subset) -> None:
    raws = [span_bytes(a, e, first, ts) for a, e, first, ts in rows]
    spans = table(raws)  # held: attribute access reads the table it was made for
    sa = SpanAttributes(spans)
    idx = np.arange(0, len(raws), 2) if subset else None
    col = sa.span(key, idx)
    positions = range(len(raws)) if idx is None else idx
    for j, i in enumerate(positions):
        want = reference(raws[i], key)
        got = col.value(j)
        if isinstance(want, float) and isinstance(got, float):
            assert got == want or (got != got and want != want)
        else:
            assert got == want, (i, raws[i])


def test_typed_column_round_trip() -> None:
    col = TypedColumn.from_values(["a", 1, 2.5, True, None, [1, 2], "a"])
    assert [col.value(i) for i in range(7)] == ["a", 1, 2.5, True, None, [1, 2], "a"]
    assert col.present().tolist() == [True, True, True, True, False, True, True]
    assert [col.take(np.array([5, 0, 5])).value(i) for i in range(3)] == [[1, 2], "a", [1, 2]]


def test_resource_scope_events_links() -> None:
    link = trace_pb2.Span()
    link.links.add(trace_id=b"\x01" * 16, span_id=b"\x02" * 8).attributes.add(key="lk", value=anyvalue("lv"))
    raws = [span_bytes([("k", "v")], [{"name": "boom", "t": 5, "attrs": {"ek": 1}}]), link.SerializeToString(),
            span_bytes([("k", 3)])]
    t = table(raws, chunk=2)
    sa = SpanAttributes.for_table(t)
    assert SpanAttributes.for_table(t) is sa
    assert [sa.resource("service.name").value(i) for i in range(3)] == ["s0", "s1", "s0"]
    assert [sa.scope("instrumentation:name").value(i) for i in range(3)] == ["lib"] * 3
    assert sa.scope("lang").value(2) == "go"
    ev = sa.events()
    assert (ev.owner.tolist(), ev.names, ev.times_ns.tolist(), ev.attributes) == ([0], ["boom"], [5], [{"ek": 1}])
    ln = sa.links(np.array([1, 2]))
    assert (ln.owner.tolist(), ln.trace_ids, ln.attributes) == ([0], [b"\x01" * 16], [{"lk": "lv"}])
    assert attribute_keys(t) == {"resource": ["service.name"], "span": ["k"], "event": ["ek"], "link": ["lk"],
                                 "instrumentation": ["lang"]}
    assert attribute_values(t, "span", "k") == ["v", 3]
    assert attribute_values(t, "", "service.name", limit=1) == ["s0"]


def test_dictionary_codes_unifies_chunks() -> None:
    a = pa.DictionaryArray.from_arrays(pa.array([0, 1], pa.int32()), pa.array(["x", "y"]))
    b = pa.DictionaryArray.from_arrays(pa.array([0, 0], pa.int32()), pa.array(["y"]))
    codes, values = dictionary_codes(pa.chunked_array([a, b]))
    assert [values[c] for c in codes] == ["x", "y", "y", "y"]


@pytest.mark.parametrize("rows", [[], [4], [0, 4, 2], [5, 1, 1, 3]])
def test_take_rows(rows: list[int]) -> None:
    col = pa.chunked_array([pa.array([0, 1]), pa.array([2]), pa.array([3, 4, 5])])
    assert take_rows(col, np.array(rows, np.int64)).to_pylist() == rows
