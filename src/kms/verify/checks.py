"""Every correlation link, proved through the query APIs only, so the same checks run against
``kms up`` and against a real Mimir + Loki + Tempo deployment.

The probe is sent once; then each link is polled until it holds or the deadline passes (data takes
a while to become queryable: ingesters, the metrics generator's collection interval)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from kms.grafana.datasources import TRACES_TO_LOGS_QUERY, TRACES_TO_LOGS_TAGS
from kms.verify.client import ApiError, HttpClient, export_otlp
from kms.verify.probe import BACKEND, FRONTEND, NAMESPACE, RUN_ATTRIBUTE, Probe
from kms.verify.report import Result

__all__ = ["Endpoints", "run_checks", "LINKS"]

# (link, what to fix when it does not hold)
LINKS: dict[str, str] = {
    "otlp export": "point --otlp at a running OTLP receiver (kms up, or the collector in front of the "
                   "backends) and check its tenant header",
    "trace by id": "the traces pipeline does not reach Tempo: check the collector's traces exporter "
                   "endpoint and that writer and reader use the same tenant",
    "traceql search": "the trace is stored but search cannot find it: check Tempo's search/ingester "
                      "settings, or raise --timeout if blocks are flushed slowly",
    "log -> trace": "log lines need their span context: export logs over OTLP (not as plain text) and keep "
                    "trace_id as Loki structured metadata (allow_structured_metadata, schema v13)",
    "trace -> logs": "Grafana's traces-to-logs query finds nothing: service.name must become the "
                     "service_name stream label and trace_id must be structured metadata (Loki's /otlp endpoint)",
    "exemplar -> trace": "turn on exemplar storage (Mimir limits.max_global_exemplars_per_user, Prometheus "
                         "--enable-feature=exemplar-storage) and send_exemplars/sendExemplars on every "
                         "remote-write hop",
    "span metrics": "turn on the metrics generator's span-metrics processor (Tempo overrides "
                    "metrics_generator.processors) with remote write to the Prometheus/Mimir that is queried",
    "service graph": "turn on the service-graphs processor; the client and server spans of an edge must "
                     "both reach the same generator within its wait window",
}


@dataclass
class Endpoints:
    prometheus: str  # Prometheus API base, e.g. http://localhost:3200/prometheus (…/api/v1/* below it)
    loki: str  # e.g. http://localhost:3200 (…/loki/api/v1/* below it)
    tempo: str  # e.g. http://localhost:3200 (…/api/traces, /api/search below it)
    otlp: str  # http://localhost:4318 (OTLP/HTTP) or grpc://localhost:4317


def _norm_id(text: str) -> str:
    """Tempo strips leading zeros of trace ids in search results; compare without them."""
    return text.lower().lstrip("0")


def _counter_sum(http: HttpClient, prom: str, selector: str) -> float:
    body = http.get_json(f"{prom}/api/v1/query", {"query": f"sum({selector})"})
    result = (body or {}).get("data", {}).get("result", [])
    return float(result[0]["value"][1]) if result else 0.0


class _Links:
    """The checks of one run. Each returns (holds, detail); an ApiError counts as not (yet) holding."""

    def __init__(self, ep: Endpoints, http: HttpClient, probe: Probe, baselines: dict[str, float]):
        self.ep, self.http, self.probe, self.baselines = ep, http, probe, baselines
        self.start_s = probe.start_ns // 1_000_000_000 - 300
        self.end_s = int(time.time()) + 300

    def trace_by_id(self) -> tuple[bool, str]:
        tid = self.probe.trace_id_hex
        body = self.http.get_json(f"{self.ep.tempo}/api/v2/traces/{tid}", headers={"Accept": "application/json"},
                                  not_found_ok=True)
        if body is None:  # Tempo before 2.5 has only the v1 endpoint
            body = self.http.get_json(f"{self.ep.tempo}/api/traces/{tid}", headers={"Accept": "application/json"},
                                      not_found_ok=True)
        if not body:
            return False, f"trace {tid} not found"
        trace = body.get("trace", body)
        batches = trace.get("resourceSpans") or trace.get("batches") or []
        services, spans = set(), 0
        for rs in batches:
            for attr in rs.get("resource", {}).get("attributes", []):
                if attr.get("key") == "service.name":
                    services.add(attr.get("value", {}).get("stringValue"))
            for ss in rs.get("scopeSpans") or rs.get("instrumentationLibrarySpans") or []:
                spans += len(ss.get("spans", []))
        want = {FRONTEND, BACKEND}
        if spans < 3 or not want <= services:
            return False, f"trace {tid} has {spans} of 3 spans, services {sorted(services)}"
        return True, f"trace {tid}: 3 spans, services {FRONTEND} and {BACKEND}"

    def traceql_search(self) -> tuple[bool, str]:
        q = f'{{ span.{RUN_ATTRIBUTE} = "{self.probe.run_id}" }}'
        body = self.http.get_json(f"{self.ep.tempo}/api/search",
                                  {"q": q, "start": str(self.start_s), "end": str(self.end_s), "limit": "20"})
        ids = [_norm_id(t.get("traceID", "")) for t in (body or {}).get("traces", [])]
        if _norm_id(self.probe.trace_id_hex) in ids:
            return True, f"{q} finds the trace"
        return False, f"{q} returned {len(ids)} other trace(s)"

    def _loki_entries(self, query: str) -> list[tuple[str, dict[str, str]]]:
        """(line, labels incl. structured metadata) of a Loki range query."""
        body = self.http.get_json(f"{self.ep.loki}/loki/api/v1/query_range", {
            "query": query, "start": str(self.start_s * 10**9), "end": str(self.end_s * 10**9),
            "limit": "100", "direction": "backward"})
        out = []
        for stream in (body or {}).get("data", {}).get("result", []):
            labels = dict(stream.get("stream", {}))
            for value in stream.get("values", []):
                extra = value[2] if len(value) > 2 and isinstance(value[2], dict) else {}
                meta = {**extra.get("structuredMetadata", {}), **extra.get("parsed", {})}
                out.append((value[1], {**labels, **meta}))
        return out

    def log_to_trace(self) -> tuple[bool, str]:
        services = "|".join((FRONTEND, BACKEND))
        entries = self._loki_entries(f'{{service_name=~"{services}"}} |= "{self.probe.run_id}"')
        if not entries:
            return False, "no log line of the probe arrived"
        with_id = [e for e in entries if _norm_id(e[1].get("trace_id", "")) == _norm_id(self.probe.trace_id_hex)]
        if len(with_id) < len(self.probe.log_lines()):
            return False, f"{len(entries)} log line(s) arrived, {len(with_id)} with trace_id={self.probe.trace_id_hex}"
        return True, f"{len(with_id)} log lines carry trace_id={self.probe.trace_id_hex}"

    def trace_to_logs(self) -> tuple[bool, str]:
        """Grafana's traces-to-logs query of the data sources ``kms grafana`` provisions, per span's service."""
        found = []
        for service in (FRONTEND, BACKEND):
            tags = ", ".join(f'{label}="{service}"' for key, label in TRACES_TO_LOGS_TAGS.items()
                             if key == "service.name")
            query = TRACES_TO_LOGS_QUERY.replace("${__tags}", tags).replace("${__span.traceId}",
                                                                             self.probe.trace_id_hex)
            if not self._loki_entries(query):
                return False, f"{query} returned no line"
            found.append(query)
        return True, f"{found[0]} (and the backend's) return the lines"

    def exemplar_to_trace(self) -> tuple[bool, str]:
        # Prometheus's OTLP names (…_seconds_bucket) or Mimir's without suffixes (…_bucket)
        selector = f'{{__name__=~"kms_verify_duration(_seconds)?_bucket", job="{NAMESPACE}/{FRONTEND}"}}'
        body = self.http.get_json(f"{self.ep.prometheus}/api/v1/query_exemplars",
                                  {"query": selector, "start": str(self.start_s), "end": str(self.end_s)})
        tid = _norm_id(self.probe.trace_id_hex)
        for series in (body or {}).get("data", []):
            for ex in series.get("exemplars", []):
                labels = ex.get("labels", {})
                if tid in (_norm_id(labels.get("trace_id", "")), _norm_id(labels.get("traceID", ""))):
                    return True, f"an exemplar of {series['seriesLabels'].get('__name__')} carries the trace id"
        if _counter_sum(self.http, self.ep.prometheus, selector.replace("_bucket", "_count")) == 0:
            return False, f"the metric {selector} did not arrive"
        return False, "the metric arrived without an exemplar pointing at the trace"

    def _grew(self, key: str, selector: str, what: str) -> tuple[bool, str]:
        now = _counter_sum(self.http, self.ep.prometheus, selector)
        if now > self.baselines.get(key, 0.0):
            return True, f"{what}: {selector} rose to {now:g}"
        return False, f"{selector} did not rise above {self.baselines.get(key, 0.0):g}"

    def span_metrics(self) -> tuple[bool, str]:
        return self._grew("span metrics", SPAN_METRICS_SELECTOR, "span metrics of the probe's services")

    def service_graph(self) -> tuple[bool, str]:
        return self._grew("service graph", SERVICE_GRAPH_SELECTOR, f"edge {FRONTEND} -> {BACKEND}")


SPAN_METRICS_SELECTOR = f'traces_spanmetrics_calls_total{{service="{BACKEND}"}}'
SERVICE_GRAPH_SELECTOR = f'traces_service_graph_request_total{{client="{FRONTEND}", server="{BACKEND}"}}'


def run_checks(ep: Endpoints, tenant: str | None = None, timeout_s: float = 60.0, probe: Probe | None = None,
               on_result: Callable[[Result], None] | None = None) -> list[Result]:
    """Send the probe, then poll every link until it holds or ``timeout_s`` has passed."""
    http = HttpClient(tenant)
    probe = probe or Probe()
    report = on_result or (lambda r: None)
    results: list[Result] = []

    def done(r: Result) -> None:
        results.append(r)
        report(r)

    baselines = {}
    for key, selector in (("span metrics", SPAN_METRICS_SELECTOR), ("service graph", SERVICE_GRAPH_SELECTOR)):
        try:
            baselines[key] = _counter_sum(http, ep.prometheus, selector)
        except ApiError:
            baselines[key] = 0.0  # the check itself reports the API error
    try:
        t0 = time.monotonic()
        for signal, request in (("traces", probe.traces()), ("logs", probe.logs()), ("metrics", probe.metrics())):
            export_otlp(ep.otlp, signal, request, http)
        done(Result("otlp export", True, time.monotonic() - t0,
                    f"trace {probe.trace_id_hex}, 2 log lines and an exemplar metric accepted by {ep.otlp}"))
    except ApiError as e:
        done(Result("otlp export", False, None, str(e), LINKS["otlp export"]))
        for link, hint in list(LINKS.items())[1:]:
            done(Result(link, False, None, "not checked: nothing was sent", hint))
        return results

    links = _Links(ep, http, probe, baselines)
    pending: dict[str, Callable[[], tuple[bool, str]]] = {
        "trace by id": links.trace_by_id, "traceql search": links.traceql_search,
        "log -> trace": links.log_to_trace, "trace -> logs": links.trace_to_logs,
        "exemplar -> trace": links.exemplar_to_trace, "span metrics": links.span_metrics,
        "service graph": links.service_graph,
    }
    sent = time.monotonic()
    last: dict[str, str] = {}
    passed: dict[str, Result] = {}
    while pending:
        for link in list(pending):
            try:
                ok, detail = pending[link]()
            except ApiError as e:
                ok, detail = False, str(e)
            last[link] = detail
            if ok:
                passed[link] = Result(link, True, time.monotonic() - sent, detail)
                del pending[link]
        if not pending or time.monotonic() - sent > timeout_s:
            break
        time.sleep(0.5)
    for link in list(LINKS)[1:]:
        done(passed.get(link) or Result(link, False, None, f"{last.get(link, 'not checked')} after {timeout_s:g}s",
                                        LINKS[link]))
    return results
