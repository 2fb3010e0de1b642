"""Tempo search: ``/api/search`` (TraceQL or legacy tags) and the tag / tag-value listings."""

from __future__ import annotations

import dataclasses
import shlex
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from kms.config import parse_duration
from kms.errors import BadInput, LimitExceeded
from kms.storage.types import ScanRequest
from kms.traces import attributes as attrs_mod
from kms.traces import traceql
from kms.traces.query import spans_in_range
from kms.traces.schema import SPAN_SCHEMA, TRACES

__all__ = ["SearchParams", "search", "tag_names", "tag_values", "legacy_to_traceql", "anyvalue_json"]

NO_ROOT = "<root span not yet received>"


@dataclass
class SearchParams:
    query: str
    limit: int = 20
    spss: int = 3
    start_ns: int | None = None
    end_ns: int | None = None

    @classmethod
    def from_query(cls, q: Mapping[str, str], max_limit: int) -> SearchParams:
        def num(name: str, default: int) -> int:
            v = q.get(name)
            if v in (None, ""):
                return default
            try:
                return int(v)
            except ValueError as e:
                raise BadInput(f"invalid {name} {v!r}: want an integer") from e

        limit = num("limit", 20)
        if limit <= 0:
            limit = 20
        if limit > max_limit:
            raise BadInput(f"limit {limit} exceeds the maximum of {max_limit} (limits.max_search_traces)")
        spss = num("spss", 3)
        start, end = num("start", 0), num("end", 0)
        if start and end and end < start:
            raise BadInput("end must not be before start")
        query = q.get("q") or legacy_to_traceql(q.get("tags", ""), q.get("minDuration"), q.get("maxDuration"))
        return cls(query, limit, spss if spss > 0 else 3, start * 10**9 if start else None,
                   end * 10**9 + 999_999_999 if end else None)


def _quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def legacy_to_traceql(tags: str, min_duration: str | None, max_duration: str | None) -> str:
    """The legacy search (logfmt ``tags``, min/maxDuration) as the equivalent TraceQL."""
    conds = []
    try:
        parts = shlex.split(tags or "")
    except ValueError as e:
        raise BadInput(f"invalid tags {tags!r}: {e}") from e
    for part in parts:
        if "=" not in part:
            raise BadInput(f"invalid tag {part!r}: want key=value")
        k, v = part.split("=", 1)
        key = {"name": "name", "status.code": "status"}.get(k)
        if key == "status":
            if v not in ("ok", "error", "unset"):
                raise BadInput(f"invalid status.code {v!r}: want ok, error or unset")
            conds.append(f"status = {v}")
        elif key:
            conds.append(f"name = {_quote(v)}")
        else:
            conds.append(f'.{_quote(k) if not k.replace(".", "").replace("_", "").isalnum() else k} = {_quote(v)}')
    for op, d in ((">=", min_duration), ("<=", max_duration)):
        if d:
            secs = parse_duration(d)
            conds.append(f"duration {op} {int(secs * 1e9)}ns")
    return "{ " + " && ".join(conds) + " }" if conds else "{}"


def anyvalue_json(v) -> dict:
    """A Python value as OTLP/JSON AnyValue (int64 as a string, as protobuf-JSON does)."""
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": str(v)}
    if isinstance(v, float):
        return {"doubleValue": v}
    if isinstance(v, (list, tuple)):
        return {"arrayValue": {"values": [anyvalue_json(x) for x in v]}}
    if isinstance(v, bytes):
        return {"stringValue": v.hex()}
    return {"stringValue": "" if v is None else str(v)}


def _kv(pairs) -> list[dict]:
    return [{"key": k, "value": anyvalue_json(v)} for k, v in pairs]


_SPAN_LEVEL = ("attrs",)  # columns only span/event/link attributes need
_SPAN_COLUMNS = tuple(n for n in SPAN_SCHEMA.names if n not in _SPAN_LEVEL)


def _attributes_of(node, out: list) -> None:
    if isinstance(node, traceql.Attribute):
        out.append(node)
    elif dataclasses.is_dataclass(node) and not isinstance(node, type):
        for f in dataclasses.fields(node):
            _attributes_of(getattr(node, f.name), out)
    elif isinstance(node, (list, tuple)):
        for x in node:
            _attributes_of(x, out)


def columns_for(query) -> tuple[str, ...]:
    """The span columns a query reads: ``attrs`` (the largest) only when it names span, event or
    link attributes (or unscoped ones, which may be span attributes)."""
    found: list = []
    _attributes_of(query, found)
    for a in found:
        if a.intrinsic is traceql.Intrinsic.NONE and a.scope in (
            traceql.Scope.NONE, traceql.Scope.SPAN, traceql.Scope.EVENT, traceql.Scope.LINK
        ):
            return tuple(SPAN_SCHEMA.names)
        if a.intrinsic is not traceql.Intrinsic.NONE and str(a.intrinsic).startswith(("event:", "link:")):
            return tuple(SPAN_SCHEMA.names)
    return _SPAN_COLUMNS


class TraceChunks:
    """Re-cuts a stream of span tables so that a trace at the end of one table travels on with
    the next: blocks are sorted by trace id and read in pieces, so without this a trace on a
    piece boundary would be evaluated in two halves. ``remainder()`` hands out what is still
    held back when the reader stops early."""

    def __init__(self, tables):
        self._tables = tables
        self._carry: pa.Table | None = None

    def __iter__(self) -> Iterator[pa.Table]:
        for t in self._tables:
            if self._carry is not None:
                t = pa.concat_tables([self._carry, t]).unify_dictionaries()
                self._carry = None
            if t.num_rows == 0:
                continue
            tail = pc.equal(t["trace_id"], t["trace_id"][t.num_rows - 1])
            self._carry = t.filter(tail)
            if self._carry.num_rows < t.num_rows:
                yield t.filter(pc.invert(tail))
        rest = self.remainder()
        if rest is not None:
            yield rest

    def remainder(self) -> pa.Table | None:
        rest, self._carry = self._carry, None
        return rest if rest is not None and rest.num_rows else None


def search(store, tenants: list[str], p: SearchParams, timeout_s: float) -> dict:
    """Evaluate piece by piece, newest data first, and stop once ``limit`` traces are found:
    memory stays bounded by one piece and a selective or recent query returns early. A trace
    whose spans sit in different blocks is evaluated per block (as Tempo does)."""
    t0 = time.perf_counter()
    query = traceql.parse(p.query)
    if query.is_metrics:
        raise BadInput("invalid TraceQL query: metrics queries are served by /api/metrics/query_range")
    columns = columns_for(query)
    traces: list[dict] = []
    seen: set[bytes] = set()
    inspected_spans = inspected_bytes = 0

    def collect(spans: pa.Table) -> None:
        for m in traceql.evaluate(query, spans, spss=p.spss, limit=p.limit):
            if m.trace_id not in seen:
                seen.add(m.trace_id)
                traces.append(_trace_json(m, spans))

    for tenant in tenants:
        req = ScanRequest(tenant, TRACES.name, p.start_ns, p.end_ns, None, columns, {"newest_first": True})
        chunks = TraceChunks(store.scan(req))
        for spans in chunks:
            if time.perf_counter() - t0 > timeout_s:
                raise LimitExceeded(f"query exceeded the query timeout of {timeout_s:g}s", reason="query_timeout")
            inspected_spans += spans.num_rows
            inspected_bytes += spans.nbytes
            collect(spans)
            if len(traces) >= p.limit:
                # The held-back trace is as recent as what was read; it competes for the limit.
                rest = chunks.remainder()
                if rest is not None:
                    collect(rest)
                break
    traces.sort(key=lambda t: int(t["startTimeUnixNano"]), reverse=True)
    return {
        "traces": traces[: p.limit],
        "metrics": {"inspectedSpans": str(inspected_spans), "inspectedBytes": str(inspected_bytes)},
    }


def _trace_json(m, spans: pa.Table) -> dict:
    spansets = []
    for ss in m.spansets:
        out_spans = []
        for i, row in enumerate(ss.rows):
            sel = ss.selected[i] if getattr(ss, "selected", None) and i < len(ss.selected) else []
            out_spans.append({
                "spanID": spans["span_id"][row].as_py().hex(),
                "name": spans["name"][row].as_py(),
                "startTimeUnixNano": str(spans["time_ns"][row].as_py()),
                "durationNanos": str(spans["duration_ns"][row].as_py()),
                "attributes": _kv(sel),
            })
        entry = {"spans": out_spans, "matched": ss.matched}
        if ss.attributes:
            entry["attributes"] = _kv(ss.attributes)
        spansets.append(entry)
    trace = {
        "traceID": m.trace_id.hex(),
        "rootServiceName": m.root_service_name if m.root_service_name is not None else NO_ROOT,
        "rootTraceName": m.root_name if m.root_name is not None else NO_ROOT,
        "startTimeUnixNano": str(m.start_ns),
        "durationMs": int(m.duration_ns // 1_000_000),
        "serviceStats": {
            svc: ({"spanCount": c, "errorCount": e} if e else {"spanCount": c})
            for svc, (c, e) in sorted(m.service_stats.items())
        },
        "spanSets": spansets,
    }
    if spansets:
        trace["spanSet"] = spansets[0]
    return trace


#: Tag and tag-value listings look at no more than this many of the newest spans in range
#: (Tempo bounds these queries by bytes for the same reason: they are autocomplete, not search).
TAG_SCAN_SPANS = 200_000

INTRINSIC_TAGS = [
    "duration", "event:name", "event:timeSinceStart", "instrumentation:name", "instrumentation:version",
    "kind", "name", "rootName", "rootServiceName", "span:duration", "span:id", "span:kind", "span:name",
    "span:parentID", "span:status", "span:statusMessage", "status", "statusMessage", "trace:duration",
    "trace:id", "trace:rootName", "trace:rootService", "traceDuration",
]
_KIND_NAMES = {0: "unspecified", 1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}
_STATUS_NAMES = {0: "unset", 1: "ok", 2: "error"}


def _range(q: Mapping[str, str]) -> tuple[int | None, int | None]:
    def sec(name: str) -> int | None:
        v = q.get(name)
        if not v:
            return None
        try:
            return int(float(v) * 1e9)
        except ValueError as e:
            raise BadInput(f"invalid {name} {v!r}: want unix seconds") from e

    return sec("start"), sec("end")


def _limit(q: Mapping[str, str], default: int) -> int:
    v = q.get("limit")
    try:
        n = int(v) if v else default
    except ValueError as e:
        raise BadInput(f"invalid limit {v!r}") from e
    return n if n > 0 else default


def _recent_spans(store, tenants: list[str], q: Mapping[str, str]):
    start, end = _range(q)
    spans = spans_in_range(store, tenants, start, end)
    if spans.num_rows > TAG_SCAN_SPANS:
        idx = pc.select_k_unstable(spans, TAG_SCAN_SPANS, [("time_ns", "descending")])
        spans = spans.take(idx)
    return spans


def _filter_rows(spans, q: Mapping[str, str]):
    """Rows matching the ``q`` filter of the v2 endpoints; None (all rows) when q is absent or
    does not parse, as Tempo ignores an unparsable q there."""
    text = (q.get("q") or "").strip()
    if not text or text == "{}":
        return None
    try:
        query = traceql.parse(text)
    except BadInput:
        return None
    if query.is_metrics:
        return None
    return traceql.matching_rows(query, spans)


def tag_names(store, tenants: list[str], q: Mapping[str, str], v2: bool) -> dict:
    limit = _limit(q, 5000)
    scope = q.get("scope") or ""
    if scope not in ("", "all", "resource", "span", "intrinsic", "event", "link", "instrumentation"):
        raise BadInput(f"invalid scope {scope!r}: use resource, span, intrinsic, event, link or instrumentation")
    spans = _recent_spans(store, tenants, q)
    rows = _filter_rows(spans, q) if v2 else None
    wanted = [s for s in attrs_mod.SCOPES if scope in ("", "all", s)]
    keys = attrs_mod.attribute_keys(spans, wanted, rows=rows, limit=limit) if spans.num_rows and wanted else {}
    metrics = {"inspectedBytes": str(spans.nbytes)}
    if not v2:
        names = sorted({k for s in ("span", "resource") for k in keys.get(s, [])}) if scope != "intrinsic" else []
        if scope == "intrinsic":
            names = list(INTRINSIC_TAGS)
        return {"tagNames": names[:limit], "metrics": metrics}
    scopes = [{"name": s, "tags": keys[s]} for s in wanted if keys.get(s)]
    if scope in ("", "all", "intrinsic"):
        scopes.append({"name": "intrinsic", "tags": list(INTRINSIC_TAGS)})
    return {"scopes": scopes, "metrics": metrics}


def _typed(v) -> dict:
    if isinstance(v, bool):
        return {"type": "bool", "value": "true" if v else "false"}
    if isinstance(v, int):
        return {"type": "int", "value": str(v)}
    if isinstance(v, float):
        return {"type": "float", "value": repr(v)}
    return {"type": "string", "value": str(v)}


def _intrinsic_values(spans, name: str, rows) -> list[dict] | None:
    t = spans if rows is None else spans.take(rows)
    key = name.split(":", 1)[-1] if ":" in name else name
    if key in ("name",):
        return [_typed(v) for v in sorted(pc.unique(t["name"]).to_pylist())]
    if key == "statusMessage":
        return [_typed(v) for v in sorted(pc.unique(t["status_message"]).to_pylist()) if v]
    if key == "status":
        return [{"type": "keyword", "value": _STATUS_NAMES.get(c, str(c))} for c in sorted(pc.unique(t["status_code"]).to_pylist())]
    if key == "kind":
        return [{"type": "keyword", "value": _KIND_NAMES.get(c, str(c))} for c in sorted(pc.unique(t["kind"]).to_pylist())]
    if key in ("rootServiceName", "rootService", "rootName"):
        roots = t.filter(pc.equal(pc.binary_length(t["parent_span_id"]), 0))
        col = roots["name"] if key == "rootName" else roots["service_name"].cast(pa.string())
        return [_typed(v) for v in sorted(pc.unique(col).to_pylist())]
    if key in INTRINSIC_TAGS or name in INTRINSIC_TAGS:
        return []
    return None


_SCOPE_PREFIXES = ("resource", "span", "event", "link", "instrumentation")


def _split_tag(tag: str) -> tuple[str | None, str]:
    """A TraceQL identifier -> (scope, key); scope "" = unscoped, None = intrinsic."""
    if tag.startswith("."):
        return "", tag[1:]
    head, _, rest = tag.partition(".")
    if rest and head in _SCOPE_PREFIXES:
        return head, rest
    return None, tag


def tag_values(store, tenants: list[str], tag: str, q: Mapping[str, str], v2: bool) -> dict:
    limit = _limit(q, 1000)
    spans = _recent_spans(store, tenants, q)
    rows = _filter_rows(spans, q) if v2 else None
    scope, key = _split_tag(tag) if v2 else ("", tag)
    metrics = {"inspectedBytes": str(spans.nbytes)}
    if spans.num_rows == 0:
        return {"tagValues": [], "metrics": metrics}
    if scope is None:
        typed = _intrinsic_values(spans, key, rows)
        if typed is None:
            typed = [_typed(v) for v in attrs_mod.attribute_values(spans, "", key, rows=rows, limit=limit)]
        return {"tagValues": typed[:limit], "metrics": metrics}
    values = attrs_mod.attribute_values(spans, scope, key, rows=rows, limit=limit)
    if not v2:
        return {"tagValues": sorted({_typed(v)["value"] for v in values})[:limit], "metrics": metrics}
    return {"tagValues": [_typed(v) for v in values], "metrics": metrics}
