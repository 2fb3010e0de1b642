"""Tempo's HTTP API (section 4 of the API contracts): trace by id, search, tags, TraceQL
metrics, echo, buildinfo."""

from __future__ import annotations

import time
from collections.abc import Callable

import orjson
from google.protobuf import json_format
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from kms import __version__
from kms.errors import BadInput, KmsError, NotFound, http_status
from kms.otlp.wire import len_prefixed
from kms.telemetry import Telemetry
from kms.traces import search as search_mod
from kms.traces import traceql
from kms.traces.assemble import to_traces_data
from kms.traces.metrics_query import metrics_query
from kms.traces.query import find_trace
from kms.traces.traceid import parse_trace_id

__all__ = ["TempoApi", "TEMPO_VERSION"]

#: Reported to Grafana, which enables features by Tempo version (search/metrics streaming stay
#: off through data source settings).
TEMPO_VERSION = "2.7.0"


def _seconds_to_ns(v: str | None, name: str) -> int | None:
    if v in (None, "", "0"):
        return None
    try:
        f = float(v)
    except ValueError as e:
        raise BadInput(f"invalid {name} {v!r}: want unix seconds") from e
    return int(f * 1e9)


class TempoApi:
    def __init__(self, store, read_tenants: Callable[[str | None], list[str]], telemetry: Telemetry,
                 max_search_traces: int = 1000, query_timeout_s: float = 60.0):
        self.store = store
        self.read_tenants = read_tenants
        self.telemetry = telemetry
        self.max_search_traces = max_search_traces
        self.query_timeout_s = query_timeout_s

    def _error(self, e: Exception) -> Response:
        status = http_status(e)
        msg = e.message if isinstance(e, KmsError) else f"internal error: {e}"
        if isinstance(e, traceql.TraceQLError):
            msg = traceql.HTTP_PREFIX + msg
        return PlainTextResponse(msg, status_code=status)

    def _wrap(self, kind: str, fn):
        async def handle(request: Request) -> Response:
            t0 = time.perf_counter()
            try:
                tenants = self.read_tenants(request.headers.get("x-scope-orgid"))
                return await fn(request, tenants)
            except Exception as e:  # noqa: BLE001 - mapped to a status in one place
                return self._error(e)
            finally:
                self.telemetry.query_seconds.labels(kind).observe(time.perf_counter() - t0)

        return handle

    async def _trace(self, request: Request, tenants: list[str], v2: bool) -> Response:
        tid = parse_trace_id(request.path_params["trace_id"])
        start = _seconds_to_ns(request.query_params.get("start"), "start")
        end = _seconds_to_ns(request.query_params.get("end"), "end")
        table = await run_in_threadpool(find_trace, self.store, tenants, tid, start, end)
        if table.num_rows == 0:
            raise NotFound("trace not found")
        data = await run_in_threadpool(to_traces_data, table)
        if "application/protobuf" in request.headers.get("accept", ""):
            raw = data.SerializeToString()
            # v2 wraps the Trace (wire-identical to TracesData) as field 1 of TraceByIDResponse.
            body = len_prefixed(1, raw) if v2 else raw
            return Response(body, media_type="application/protobuf")
        doc = json_format.MessageToDict(data)
        if v2:
            out = {"trace": {"resourceSpans": doc.get("resourceSpans", [])}, "status": "COMPLETE"}
        else:
            out = {"batches": doc.get("resourceSpans", [])}
        return Response(orjson.dumps(out), media_type="application/json")

    async def trace_v1(self, request, tenants):
        return await self._trace(request, tenants, v2=False)

    async def trace_v2(self, request, tenants):
        return await self._trace(request, tenants, v2=True)

    async def search(self, request: Request, tenants: list[str]) -> Response:
        q = request.query_params
        req = search_mod.SearchParams.from_query(q, self.max_search_traces)
        body = await run_in_threadpool(search_mod.search, self.store, tenants, req, self.query_timeout_s)
        return Response(orjson.dumps(body), media_type="application/json")

    async def tags(self, request: Request, tenants: list[str]) -> Response:
        body = await run_in_threadpool(search_mod.tag_names, self.store, tenants, request.query_params, False)
        return JSONResponse(body)

    async def tags_v2(self, request: Request, tenants: list[str]) -> Response:
        body = await run_in_threadpool(search_mod.tag_names, self.store, tenants, request.query_params, True)
        return JSONResponse(body)

    async def tag_values(self, request: Request, tenants: list[str]) -> Response:
        body = await run_in_threadpool(
            search_mod.tag_values, self.store, tenants, request.path_params["tag"], request.query_params, False
        )
        return JSONResponse(body)

    async def tag_values_v2(self, request: Request, tenants: list[str]) -> Response:
        body = await run_in_threadpool(
            search_mod.tag_values, self.store, tenants, request.path_params["tag"], request.query_params, True
        )
        return JSONResponse(body)

    async def metrics_range(self, request: Request, tenants: list[str]) -> Response:
        body = await run_in_threadpool(metrics_query, self.store, tenants, request.query_params, False)
        return Response(orjson.dumps(body), media_type="application/json")

    async def metrics_instant(self, request: Request, tenants: list[str]) -> Response:
        body = await run_in_threadpool(metrics_query, self.store, tenants, request.query_params, True)
        return Response(orjson.dumps(body), media_type="application/json")

    def routes(self) -> list[Route]:
        async def echo(_: Request) -> Response:
            return PlainTextResponse("echo")

        async def buildinfo(_: Request) -> Response:
            return JSONResponse({
                "version": TEMPO_VERSION, "revision": f"kms-{__version__}", "branch": "main",
                "buildUser": "kms", "buildDate": "", "goVersion": "",
            })

        w = self._wrap
        return [
            Route("/api/traces/{trace_id}", w("trace_by_id", self.trace_v1)),
            Route("/api/v2/traces/{trace_id}", w("trace_by_id", self.trace_v2)),
            Route("/api/search", w("search", self.search)),
            Route("/api/search/tags", w("tags", self.tags)),
            Route("/api/v2/search/tags", w("tags", self.tags_v2)),
            Route("/api/search/tag/{tag:path}/values", w("tag_values", self.tag_values)),
            Route("/api/v2/search/tag/{tag:path}/values", w("tag_values", self.tag_values_v2)),
            Route("/api/metrics/query_range", w("metrics_query", self.metrics_range)),
            Route("/api/metrics/query", w("metrics_query", self.metrics_instant)),
            Route("/api/echo", echo),
            Route("/api/status/buildinfo", buildinfo),
        ]
