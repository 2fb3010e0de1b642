"""Loki HTTP API (section 3 of the API contracts) under ``/loki/api/v1``.

``source_for(tenants)`` gives a ``StoreLogSource``-like object: the LogQL engine's ``LogSource``
(``select``, ``streams``) plus ``series``, ``label_names``, ``label_values`` and
``stream_stats`` for the index endpoints. Successful answers are JSON; errors are plain text
with Loki's status codes (400 bad query or parameters, 401 no tenant, 429 limits, 504 timeout).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from kms import __version__
from kms.errors import KmsError, http_status
from kms.logs import logql
from kms.logs.fields import detect_fields, field_values
from kms.logs.http.encode import CATEGORIZE, encode_metric, encode_streams, stats_json
from kms.logs.http.params import (
    NS,
    Form,
    parse_direction,
    parse_duration_ns,
    parse_limit,
    parse_selector,
    parse_time_ns,
    time_range,
)
from kms.logs.source import StreamsResult
from kms.logs.tail import tail_route
from kms.logs.volume import detected_labels, volume
from kms.metrics.promql.values import Result
from kms.telemetry import Telemetry

__all__ = ["LokiApi", "LOKI_VERSION"]

LOKI_VERSION = "3.5.0"
PREFIX = "/loki/api/v1"
MAX_POINTS = 11_000
_HOUR, _SIX_HOURS = 3600 * NS, 6 * 3600 * NS
INSTANT_LOG_QUERY = ("log queries are not supported as an instant query type, please change your query to a range "
                     "query type")


class ApiError(KmsError):
    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


def _seconds(t_ns: int) -> float:
    """Prometheus's timestamp: seconds with millisecond precision."""
    return round(t_ns / 1_000_000) / 1000


def _json(data) -> bytes:
    return orjson.dumps(data)


class LokiApi:
    def __init__(
        self,
        source_for: Callable[[list[str]], object],
        read_tenants: Callable[[str | None], list[str]],
        telemetry: Telemetry,
        query_timeout_s: float = 60.0,
        max_entries_limit: int = 5000,
        clock: Callable[[], float] = time.time,
    ):
        self.source_for = source_for
        self.read_tenants = read_tenants
        self.telemetry = telemetry
        self.query_timeout_s = query_timeout_s
        self.max_entries_limit = max_entries_limit
        self.clock = clock

    # -- plumbing --
    def _now_ns(self) -> int:
        return int(self.clock() * NS)

    @staticmethod
    def _error(e: Exception) -> Response:
        if isinstance(e, ApiError):
            status, msg = e.status, e.message
        elif isinstance(e, TimeoutError):
            status, msg = 504, "query timed out: context deadline exceeded"
        elif isinstance(e, KmsError):
            status, msg = http_status(e), e.message
        else:
            status, msg = 500, f"internal error: {e}"
        headers = {"Retry-After": str(int(getattr(e, "retry_after_s", None) or 1))} if status in (429, 503) else {}
        return PlainTextResponse(msg, status_code=status, headers=headers)

    def _wrap(self, kind: str, fn):
        async def handle(request: Request) -> Response:
            t0 = time.perf_counter()
            try:
                tenants = self.read_tenants(request.headers.get("x-scope-orgid"))
                body = await request.body() if request.method == "POST" else b""
                form = Form(request.url.query, body, request.headers.get("content-type", ""))
                out = await fn(request, form, tenants)
                return out if isinstance(out, Response) else Response(out, media_type="application/json")
            except Exception as e:  # noqa: BLE001 - mapped to a status in one place
                return self._error(e)
            finally:
                self.telemetry.query_seconds.labels(kind).observe(time.perf_counter() - t0)

        return handle

    async def _run(self, fn, *args):
        return await asyncio.wait_for(run_in_threadpool(fn, *args), self.query_timeout_s)

    def _limit(self, form: Form) -> int:
        limit = parse_limit(form, 100)
        if limit > self.max_entries_limit:
            raise ApiError(f"max entries limit per query exceeded, limit > max_entries_limit "
                           f"({limit} > {self.max_entries_limit})", 400)
        return limit

    def _engine(self, tenants: list[str]):
        return logql.LogQLEngine(self.source_for(tenants), max_entries_limit=self.max_entries_limit)

    @staticmethod
    def _answer(result, stats, exec_s: float, categorize: bool) -> bytes:
        warnings: list[str] = []
        if isinstance(result, StreamsResult):
            data = encode_streams(result.entries, categorize)
            if categorize:
                data += f',"encodingFlags":["{CATEGORIZE}"]'
        else:
            if isinstance(result, Result):
                warnings = list(result.warnings)
                result = result.value
            data = encode_metric(result)
        head = '{"status":"success",' + (f'"warnings":{orjson.dumps(warnings).decode()},' if warnings else "")
        return f'{head}"data":{data},"stats":{stats_json(stats, exec_s)}}}}}'.encode()

    @staticmethod
    def _categorize(request: Request) -> bool:
        return CATEGORIZE in request.headers.get("x-loki-response-encoding-flags", "")

    # -- queries --
    async def query_range(self, request: Request, form: Form, tenants: list[str]):
        start, end = time_range(form, self._now_ns(), _HOUR)
        if end < start:
            raise ApiError("end timestamp must not be before or equal to start time", 400)
        limit, direction = self._limit(form), parse_direction(form)
        s = form.get("step")
        step = parse_duration_ns(s, "step") if s else max((end - start) // (250 * NS), 1) * NS
        if step <= 0:
            raise ApiError("zero or negative query resolution step widths are not accepted. Try a positive integer", 400)
        if (end - start) // step > MAX_POINTS:
            raise ApiError("exceeded maximum resolution of 11,000 points per timeseries. Try increasing the value of "
                           "the step parameter", 400)
        s = form.get("interval")
        interval = parse_duration_ns(s, "interval") if s else 0
        if interval < 0:
            raise ApiError("interval must be >= 0", 400)
        query = form.get("query")
        logql.parse(query)
        categorize = self._categorize(request)

        def run():
            t0 = time.perf_counter()
            result, stats = self._engine(tenants).query_range(query, start, end, step, interval_ns=interval,
                                                                direction=direction, limit=limit)
            return self._answer(result, stats, time.perf_counter() - t0, categorize)

        return await self._run(run)

    async def query(self, request: Request, form: Form, tenants: list[str]):
        t = parse_time_ns(form, "time", self._now_ns())
        limit, direction = self._limit(form), parse_direction(form)
        query = form.get("query")
        if not logql.is_metric_query(logql.parse(query)):
            raise ApiError(INSTANT_LOG_QUERY, 400)
        categorize = self._categorize(request)

        def run():
            t0 = time.perf_counter()
            result, stats = self._engine(tenants).instant(query, t, direction=direction, limit=limit)
            return self._answer(result, stats, time.perf_counter() - t0, categorize)

        return await self._run(run)

    # -- index --
    async def labels(self, request: Request, form: Form, tenants: list[str]):
        start, end = time_range(form, self._now_ns(), _SIX_HOURS)
        sel = parse_selector(form.get("query"))
        names = await self._run(lambda: self.source_for(tenants).label_names([sel] if sel else [], start, end))
        return _json({"status": "success", "data": names})

    async def label_values(self, request: Request, form: Form, tenants: list[str]):
        name = request.path_params["name"]
        start, end = time_range(form, self._now_ns(), _SIX_HOURS)
        sel = parse_selector(form.get("query"))
        values = await self._run(lambda: self.source_for(tenants).label_values(name, [sel] if sel else [], start, end))
        return _json({"status": "success", "data": values})

    async def series(self, request: Request, form: Form, tenants: list[str]):
        matches = form.getlist("match[]") or form.getlist("match")
        if not matches:
            raise ApiError("0 matchers provided: at least one match[] parameter is required", 400)
        sets = [parse_selector(m) for m in matches]
        start, end = time_range(form, self._now_ns(), _SIX_HOURS)
        found = await self._run(lambda: self.source_for(tenants).series(sets, start, end))
        return _json({"status": "success", "data": found})

    def _selector(self, form: Form) -> list:
        q = form.get("query")
        if not q.strip():
            raise ApiError("query parameter is required", 400)
        return parse_selector(q)

    async def index_stats(self, request: Request, form: Form, tenants: list[str]):
        sel = self._selector(form)
        start, end = time_range(form, self._now_ns(), _HOUR)
        per = await self._run(lambda: self.source_for(tenants).stream_stats(sel, start, end))
        streams = {k[0] for k in per}
        return _json({"streams": len(streams), "chunks": len(streams),
                      "entries": sum(e for e, _ in per.values()), "bytes": sum(b for _, b in per.values())})

    async def index_volume(self, request: Request, form: Form, tenants: list[str], ranged: bool = False):
        sel = self._selector(form)
        start, end = time_range(form, self._now_ns(), _HOUR)
        limit = parse_limit(form, 100)
        targets = [t.strip() for t in form.get("targetLabels").split(",") if t.strip()]
        by_labels = form.get("aggregateBy") == "labels"
        step = 0
        if ranged:
            s = form.get("step")
            step = parse_duration_ns(s, "step") if s else max((end - start) // (250 * NS), 1) * NS
            if step <= 0:
                raise ApiError("zero or negative query resolution step widths are not accepted. Try a positive "
                               "integer", 400)
        per = await self._run(lambda: self.source_for(tenants).stream_stats(sel, start, end, step))
        series = volume(per, sel, targets, by_labels, limit)
        if not ranged:
            result = [{"metric": labels, "value": [_seconds(end), str(sum(pts.values()))]}
                      for labels, pts in series]
            return _json({"status": "success", "data": {"resultType": "vector", "result": result}})
        result = [{"metric": labels, "values": [[_seconds(t), str(v)] for t, v in sorted(pts.items())]}
                  for labels, pts in series]
        return _json({"status": "success", "data": {"resultType": "matrix", "result": result}})

    async def index_volume_range(self, request: Request, form: Form, tenants: list[str]):
        return await self.index_volume(request, form, tenants, ranged=True)

    async def detected_labels(self, request: Request, form: Form, tenants: list[str]):
        start, end = time_range(form, self._now_ns(), _SIX_HOURS)
        sel = parse_selector(form.get("query"))
        streams = await self._run(lambda: self.source_for(tenants).series([sel] if sel else [], start, end))
        return _json({"detectedLabels": detected_labels(streams)})

    async def _field_entries(self, form: Form, tenants: list[str]):
        query = self._selector_query(form)
        start, end = time_range(form, self._now_ns(), _HOUR)
        line_limit = min(parse_limit(form, 1000, "line_limit"), self.max_entries_limit)

        def run():
            result, _ = self._engine(tenants).query_range(query, start, end, NS, direction="backward", limit=line_limit)
            return result.entries if isinstance(result, StreamsResult) else []

        return await self._run(run)

    def _selector_query(self, form: Form) -> str:
        q = form.get("query")
        if not q.strip():
            raise ApiError("query parameter is required", 400)
        if logql.is_metric_query(logql.parse(q)):
            raise ApiError("detected fields need a log query, not a metric query", 400)
        return q

    def _field_limit(self, form: Form) -> int:
        return parse_limit(form, parse_limit(form, 1000, "field_limit"))

    async def detected_fields(self, request: Request, form: Form, tenants: list[str]):
        limit = self._field_limit(form)
        entries = await self._field_entries(form, tenants)
        return _json({"fields": detect_fields(entries, limit), "limit": limit})

    async def detected_field_values(self, request: Request, form: Form, tenants: list[str]):
        limit = self._field_limit(form)
        entries = await self._field_entries(form, tenants)
        return _json({"values": field_values(entries, request.path_params["name"], limit), "limit": limit})

    async def format_query(self, request: Request, form: Form, tenants: list[str]):
        return _json({"status": "success", "data": logql.format_query(form.get("query"))})

    async def patterns(self, request: Request, form: Form, tenants: list[str]):
        """Pattern detection is not implemented: an empty answer, so Grafana shows none."""
        return _json({"status": "success", "data": []})

    async def buildinfo(self, request: Request, form: Form, tenants: list[str]):
        return _json({"version": LOKI_VERSION, "revision": f"kms-{__version__}", "branch": "main", "buildUser": "kms",
                      "buildDate": "", "goVersion": ""})

    # -- routes --
    def routes(self) -> list[Route]:
        both, get = ["GET", "POST"], ["GET"]
        table = [
            ("/query", "logs_query", self.query, both),
            ("/query_range", "logs_query_range", self.query_range, both),
            ("/labels", "logs_labels", self.labels, both),
            ("/label", "logs_labels", self.labels, both),
            ("/label/{name}/values", "logs_label_values", self.label_values, both),
            ("/series", "logs_series", self.series, both),
            ("/index/stats", "logs_index", self.index_stats, both),
            ("/index/volume", "logs_index", self.index_volume, both),
            ("/index/volume_range", "logs_index", self.index_volume_range, both),
            ("/detected_labels", "logs_index", self.detected_labels, get),
            ("/detected_fields", "logs_index", self.detected_fields, both),
            ("/detected_field/{name}/values", "logs_index", self.detected_field_values, both),
            ("/format_query", "logs_format_query", self.format_query, both),
            ("/status/buildinfo", "logs_buildinfo", self.buildinfo, get),
            ("/patterns", "logs_index", self.patterns, both),
        ]
        routes: list = [Route(PREFIX + path, self._wrap(kind, fn), methods=methods) for path, kind, fn, methods in table]
        engine_for = lambda source: logql.LogQLEngine(source, max_entries_limit=self.max_entries_limit)  # noqa: E731
        routes.append(tail_route(PREFIX + "/tail", self.source_for, self.read_tenants, engine_for, self.clock))
        # The legacy prefix of Loki's query API, for older clients.
        routes.append(Route("/api/prom/label", self._wrap("logs_labels", self.labels), methods=get))
        return routes
