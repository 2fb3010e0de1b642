"""Prometheus/Mimir HTTP query API (section 1 of the API contracts), served under both
``/api/v1/...`` and ``/prometheus/api/v1/...``.

``source_for(tenants)`` gives the series source of the tenants of a request. Besides
``select(matchers, start_ms, end_ms)`` it may offer (all optional; ``matcher_sets`` is a list of
matcher lists, empty = everything):

- ``label_names(matcher_sets, start_ms, end_ms) -> list[str]``
- ``label_values(name, matcher_sets, start_ms, end_ms) -> list[str]``
- ``series(matcher_sets, start_ms, end_ms) -> list[dict[str, str]]``
- ``exemplars(matcher_sets, start_ms, end_ms) -> [{"seriesLabels": {...}, "exemplars": [{"labels": {...},
  "value": float, "timestamp": float seconds}, ...]}, ...]`` (Prometheus's shape, values not yet strings)
- ``metadata(metric, limit) -> {metric: [{"type", "help", "unit"}, ...]}``

Missing label/series methods are derived from ``select``; missing exemplars/metadata answer empty.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kms import __version__
from kms.collect import scrape_pools, targets_data, targets_metadata
from kms.errors import KmsError, http_status
from kms.metrics.http.encode import count_points, encode_result, envelope, fmt_ts, fmt_value
from kms.metrics.http.params import (
    MAX_TIME_MS,
    MIN_TIME_MS,
    ApiError,
    Form,
    duration_ms,
    parse_duration_ms,
    parse_limit,
    parse_selector,
    parse_time_ms,
    selectors_of,
    unescape_name,
)
from kms.metrics.promql.engine import Engine, parse
from kms.metrics.promql.model import Matcher
from kms.metrics.promql.values import Matrix, PromQLError, Vector
from kms.telemetry import Telemetry

__all__ = ["PrometheusApi", "PROMETHEUS_VERSION", "MAX_POINTS_PER_SERIES"]

#: Reported by buildinfo.
PROMETHEUS_VERSION = "3.5.0"
#: Mimir's feature flags: a non-empty map makes Grafana treat the source as Mimir and manage its
#: rules through the ruler API (/prometheus/config/v1/rules), which kms serves; it has no
#: Alertmanager configuration API.
FEATURES = {"ruler_config_api": "true", "alertmanager_config_api": "false", "query_sharding": "false",
            "federated_rules": "false"}
MAX_POINTS_PER_SERIES = 11_000
TRUNCATED = "results truncated due to limit"
_ALL = [Matcher("__name__", "!=", "")]
_PREFIXES = ("/api/v1", "/prometheus/api/v1")


def _label_key(labels: dict[str, str]) -> tuple:
    return tuple(sorted(labels.items()))


def _json(data) -> str:
    return orjson.dumps(data).decode()


class PrometheusApi:
    def __init__(
        self,
        source_for: Callable[[list[str]], object],
        read_tenants: Callable[[str | None], list[str]],
        telemetry: Telemetry,
        lookback_delta_ms: int = 300_000,
        query_timeout_s: float = 60.0,
        max_samples: int = 50_000_000,
        clock: Callable[[], float] = time.time,
    ):
        self.source_for = source_for
        self.read_tenants = read_tenants
        self.telemetry = telemetry
        self.lookback_delta_ms = lookback_delta_ms
        self.query_timeout_s = query_timeout_s
        self.max_samples = max_samples
        self.clock = clock
        #: the scrape manager behind /targets (kms.collect.ScrapeManager), or None: no scraping
        self.scrape_targets: Callable[[], object] = lambda: None

    # -- plumbing --
    @staticmethod
    def _error(e: Exception) -> Response:
        if isinstance(e, ApiError):
            kind, msg, status = e.error_type, e.message, e.status
        elif isinstance(e, TimeoutError):
            kind, msg, status = "timeout", "query timed out in expression evaluation", 503
        elif isinstance(e, PromQLError):
            kind, msg, status = "execution", e.message, 422
        elif isinstance(e, KmsError):
            status = http_status(e)
            kind = {404: "not_found", 422: "execution", 429: "execution", 503: "unavailable"}.get(
                status, "bad_data" if status < 500 else "internal"
            )
            msg = e.message
        else:
            kind, msg, status = "internal", f"internal error: {e}", 500
        body = orjson.dumps({"status": "error", "errorType": kind, "error": msg})
        return Response(body, status_code=status, media_type="application/json")

    def _wrap(self, kind: str, fn):
        async def handle(request: Request) -> Response:
            t0 = time.perf_counter()
            try:
                tenants = self.read_tenants(request.headers.get("x-scope-orgid"))
                body = await request.body() if request.method == "POST" else b""
                form = Form(request.url.query, body, request.headers.get("content-type", ""))
                data, warnings, infos = await fn(request, form, tenants)
                return Response(envelope(data, warnings, infos), media_type="application/json")
            except Exception as e:  # noqa: BLE001 - mapped to a status in one place
                return self._error(e)
            finally:
                self.telemetry.query_seconds.labels(kind).observe(time.perf_counter() - t0)

        return handle

    async def _run(self, timeout_s: float, fn, *args):
        return await asyncio.wait_for(run_in_threadpool(fn, *args), timeout_s)

    def _timeout(self, form: Form) -> float:
        s = form.get("timeout")
        if s == "":
            return self.query_timeout_s
        t = parse_duration_ms(s, "timeout") / 1000
        return min(t, self.query_timeout_s) if t > 0 else self.query_timeout_s

    def _lookback(self, form: Form) -> int:
        s = form.get("lookback_delta")
        if s == "":
            return self.lookback_delta_ms
        try:
            ms = duration_ms(s)
        except ValueError as e:
            raise ApiError("bad_data", f"error parsing lookback delta duration: {e}", 400) from None
        return ms if ms > 0 else self.lookback_delta_ms

    @staticmethod
    def _parse_query(query: str, step_ms: int = 0, range_ms: int = 0):
        try:
            return parse(query, step_ms, range_ms)
        except PromQLError as e:
            raise ApiError("bad_data", f'invalid parameter "query": {e.message}', 400) from None

    def _finish(self, result, limit: int) -> tuple[str, list[str], list[str]]:
        value, warnings = result.value, list(result.warnings)
        if count_points(value) > self.max_samples:
            raise ApiError(
                "execution", "query processing would load too many samples into memory in query execution", 422
            )
        if limit:
            if isinstance(value, Vector) and len(value.samples) > limit:
                value = Vector(value.samples[:limit])
                warnings.append(TRUNCATED)
            elif isinstance(value, Matrix) and len(value.series) > limit:
                value = Matrix(value.series[:limit])
                warnings.append(TRUNCATED)
        return encode_result(value), warnings, list(result.infos)

    # -- queries --
    async def query(self, request: Request, form: Form, tenants: list[str]):
        t_ms = parse_time_ms(form, "time", round(self.clock() * 1000))
        timeout, lookback, limit = self._timeout(form), self._lookback(form), parse_limit(form)
        q = form.get("query")
        self._parse_query(q)

        def run():
            return Engine(self.source_for(tenants), lookback).instant(q, t_ms)

        return self._finish(await self._run(timeout, run), limit)

    async def query_range(self, request: Request, form: Form, tenants: list[str]):
        start = parse_time_ms(form, "start", None)
        end = parse_time_ms(form, "end", None)
        if end < start:
            raise ApiError("bad_data", 'invalid parameter "end": end timestamp must not be before start time', 400)
        step = parse_duration_ms(form.get("step"), "step")
        if step <= 0:
            raise ApiError(
                "bad_data",
                'invalid parameter "step": zero or negative query resolution step widths are not accepted. '
                "Try a positive integer",
                400,
            )
        if (end - start) // step > MAX_POINTS_PER_SERIES:
            raise ApiError(
                "bad_data",
                "exceeded maximum resolution of 11,000 points per timeseries. "
                "Try decreasing the query resolution (?step=XX)",
                400,
            )
        timeout, lookback, limit = self._timeout(form), self._lookback(form), parse_limit(form)
        q = form.get("query")
        self._parse_query(q, step, end - start)

        def run():
            try:
                return Engine(self.source_for(tenants), lookback).range(q, start, end, step)
            except PromQLError as e:
                if e.message.startswith("invalid expression type"):
                    raise ApiError("bad_data", f'invalid parameter "query": {e.message}', 400) from None
                raise

        return self._finish(await self._run(timeout, run), limit)

    async def query_exemplars(self, request: Request, form: Form, tenants: list[str]):
        start = parse_time_ms(form, "start", MIN_TIME_MS)
        end = parse_time_ms(form, "end", MAX_TIME_MS)
        if end < start:
            raise ApiError("bad_data", "end timestamp must not be before start timestamp", 400)
        sets = selectors_of(self._parse_query(form.get("query")))

        def run():
            src = self.source_for(tenants)
            fn = getattr(src, "exemplars", None)
            return list(fn(sets, start, end)) if (fn and sets) else []

        out = []
        for group in await self._run(self.query_timeout_s, run):
            ex = ",".join(
                f'{{"labels":{_json(dict(e["labels"]))},"value":"{fmt_value(float(e["value"]))}",'
                f'"timestamp":{fmt_ts(round(e["timestamp"] * 1000))}}}'
                for e in group["exemplars"]
            )
            out.append(f'{{"seriesLabels":{_json(dict(group["seriesLabels"]))},"exemplars":[{ex}]}}')
        return "[" + ",".join(out) + "]", [], []

    # -- metadata about series --
    def _meta_params(self, form: Form, need_match: bool):
        matches = form.getlist("match[]")
        if need_match and not matches:
            raise ApiError("bad_data", "no match[] parameter provided", 400)
        sets = [parse_selector(m) for m in matches]
        start = parse_time_ms(form, "start", MIN_TIME_MS)
        end = parse_time_ms(form, "end", MAX_TIME_MS)
        return sets, start, end, parse_limit(form)

    @staticmethod
    def _selected(src, sets, start, end) -> list[dict[str, str]]:
        seen: dict[tuple, dict[str, str]] = {}
        for ms in sets or [_ALL]:
            for s in src.select(ms, start, end):
                seen.setdefault(_label_key(s.labels), s.labels)
        return list(seen.values())

    @staticmethod
    def _truncate(items: list, limit: int):
        if limit and len(items) > limit:
            return items[:limit], [TRUNCATED]
        return items, []

    async def series(self, request: Request, form: Form, tenants: list[str]):
        sets, start, end, limit = self._meta_params(form, need_match=True)

        def run():
            src = self.source_for(tenants)
            fn = getattr(src, "series", None)
            found = list(fn(sets, start, end)) if fn else self._selected(src, sets, start, end)
            uniq = {_label_key(lab): dict(lab) for lab in found}
            return [uniq[k] for k in sorted(uniq)]

        out, warnings = self._truncate(await self._run(self.query_timeout_s, run), limit)
        return _json(out), warnings, []

    async def labels(self, request: Request, form: Form, tenants: list[str]):
        sets, start, end, limit = self._meta_params(form, need_match=False)

        def run():
            src = self.source_for(tenants)
            fn = getattr(src, "label_names", None)
            if fn:
                return sorted(set(fn(sets, start, end)))
            return sorted({k for lab in self._selected(src, sets, start, end) for k, v in lab.items() if v})

        out, warnings = self._truncate(await self._run(self.query_timeout_s, run), limit)
        return _json(out), warnings, []

    async def label_values(self, request: Request, form: Form, tenants: list[str]):
        name = unescape_name(request.path_params["name"])
        if not name:
            raise ApiError("bad_data", f'invalid label name: "{name}"', 400)
        sets, start, end, limit = self._meta_params(form, need_match=False)

        def run():
            src = self.source_for(tenants)
            fn = getattr(src, "label_values", None)
            if fn:
                return sorted(set(fn(name, sets, start, end)))
            return sorted({lab[name] for lab in self._selected(src, sets, start, end) if lab.get(name)})

        out, warnings = self._truncate(await self._run(self.query_timeout_s, run), limit)
        return _json(out), warnings, []

    async def metadata(self, request: Request, form: Form, tenants: list[str]):
        def num(name: str) -> int:
            s = form.get(name)
            try:
                return int(s) if s else -1
            except ValueError:
                raise ApiError("bad_data", f"{name} must be a number", 400) from None

        limit, per_metric, metric = num("limit"), num("limit_per_metric"), form.get("metric")

        def run():
            fn = getattr(self.source_for(tenants), "metadata", None)
            return dict(fn(metric, limit)) if fn else {}

        found = await self._run(self.query_timeout_s, run)
        out: dict[str, list] = {}
        for name in sorted(found):
            if 0 <= limit <= len(out):
                break
            entries = list(found[name])
            out[name] = entries[:per_metric] if per_metric > 0 else entries
        return _json(out), [], []

    # -- scrape targets (kms.collect) --
    async def targets(self, request: Request, form: Form, tenants: list[str]):
        state = form.get("state")
        if state and state.lower() not in ("active", "dropped", "any"):
            state = "any"  # Prometheus answers both lists for an unknown state
        return _json(targets_data(self.scrape_targets(), state, form.get("scrapePool"))), [], []

    async def targets_metadata(self, request: Request, form: Form, tenants: list[str]):
        sel = form.get("match_target")
        matchers = parse_selector(sel) if sel else []
        s = form.get("limit")
        try:
            limit = int(s) if s else -1
        except ValueError:
            raise ApiError("bad_data", "limit must be a number", 400) from None
        return _json(targets_metadata(self.scrape_targets(), matchers, form.get("metric"), limit)), [], []

    async def scrape_pools(self, request: Request, form: Form, tenants: list[str]):
        return _json({"scrapePools": scrape_pools(self.scrape_targets())}), [], []

    async def format_query(self, request: Request, form: Form, tenants: list[str]):
        return _json(self._parse_query(form.get("query")).prettify()), [], []

    # -- routes --
    def routes(self) -> list[Route]:
        async def buildinfo(_r, _f, _t):
            return _json({
                "version": PROMETHEUS_VERSION, "revision": f"kms-{__version__}", "branch": "main",
                "buildUser": "kms", "buildDate": "", "goVersion": "", "features": FEATURES,
            }), [], []

        def const(data):
            async def handler(_r, _f, _t):
                return data, [], []

            return handler

        both, get = ["GET", "POST"], ["GET"]
        table = [
            ("/query", "query", self.query, both),
            ("/query_range", "query_range", self.query_range, both),
            ("/query_exemplars", "query_exemplars", self.query_exemplars, both),
            ("/series", "series", self.series, both),
            ("/labels", "labels", self.labels, both),
            ("/label/{name:path}/values", "label_values", self.label_values, get),
            ("/metadata", "metadata", self.metadata, get),
            ("/format_query", "format_query", self.format_query, both),
            ("/status/buildinfo", "buildinfo", buildinfo, get),
            ("/status/config", "status", const('{"yaml":""}'), get),
            ("/status/flags", "status", const("{}"), get),
            ("/targets", "targets", self.targets, get),
            ("/targets/metadata", "targets", self.targets_metadata, get),
            ("/scrape_pools", "targets", self.scrape_pools, get),
        ]
        return [
            Route(prefix + path, self._wrap(kind, fn), methods=methods)
            for prefix in _PREFIXES
            for path, kind, fn, methods in table
        ]
