"""kms's own dashboards: application RED on span metrics, and the stack's self-monitoring."""

from __future__ import annotations

from kms.grafana.panels import TEMPO, Layout, dashboard, query_var, target

__all__ = ["red_dashboard", "stack_dashboard", "dashboards"]

_RATE = "[$__rate_interval]"


def _sel(*matchers: str) -> str:
    return "{" + ", ".join(matchers) + "}"


def red_dashboard() -> dict:
    """Rate, errors and duration per service and span name from the metrics generator's span metrics."""
    base = ['service=~"$service"', 'span_name=~"$span_name"']
    calls = "traces_spanmetrics_calls_total" + _sel(*base)
    errors = "traces_spanmetrics_calls_total" + _sel(*base, 'status_code="STATUS_CODE_ERROR"')
    buckets = "traces_spanmetrics_latency_bucket" + _sel(*base)
    by = "service, span_name"

    def quantile(q: str, extra: str = "") -> str:
        return f"histogram_quantile({q}, sum by (le{extra}) (rate({buckets}{_RATE})))"

    lay = Layout()
    lay.row("Overview ($service)")
    lay.add("stat", "Requests", [target(f"sum(rate({calls}{_RATE}))", "req/s")], w=6, h=4, unit="reqps")
    lay.add("stat", "Error ratio",
            [target(f"(sum(rate({errors}{_RATE})) or vector(0)) / sum(rate({calls}{_RATE}))", "errors")],
            w=6, h=4, unit="percentunit")  # fmt: skip
    lay.add("stat", "p90 latency", [target(quantile("0.9"), "p90")], w=6, h=4, unit="s")
    lay.add("stat", "p99 latency", [target(quantile("0.99"), "p99")], w=6, h=4, unit="s")
    lay.row("Rate, errors, duration by service and span name")
    lay.add("timeseries", "Request rate", [target(f"sum by ({by}) (rate({calls}{_RATE}))", "{{service}} {{span_name}}")],
            w=12, unit="reqps")  # fmt: skip
    # An empty numerator means no errors; `or ... * 0` keeps the series at 0 instead of a gap.
    lay.add("timeseries", "Error ratio",
            [target(f"(sum by ({by}) (rate({errors}{_RATE})) or sum by ({by}) (rate({calls}{_RATE})) * 0)"
                    f" / sum by ({by}) (rate({calls}{_RATE}))", "{{service}} {{span_name}}")],
            w=12, unit="percentunit")  # fmt: skip
    lay.add("timeseries", "Latency p50 / p90 / p99",
            [target(quantile(q, ", service"), f"p{q[2:].ljust(2, '0')} {{{{service}}}}", exemplar=True)
             for q in ("0.5", "0.9", "0.99")],
            w=24, h=9, unit="s",
            description="Exemplar dots link to the trace that produced them (Traces data source).")  # fmt: skip
    lay.add("table", "Slowest span names (p99 over the range)",
            [target(f"topk(10, histogram_quantile(0.99, sum by (le, {by}) (rate({buckets}[$__range]))))",
                    instant=True)],
            w=12, h=8, unit="s")  # fmt: skip
    lay.row("Service graph")
    lay.add("timeseries", "Calls between services",
            [target('sum by (client, server) (rate(traces_service_graph_request_total{server=~"$service"}'
                    f"{_RATE}))", "{{client}} → {{server}}")],
            w=12, unit="reqps")  # fmt: skip
    lay.add("nodeGraph", "Service map", [{"datasource": TEMPO, "queryType": "serviceMap"}], w=12, h=12)
    lay.add("table", "Recent traces",
            [{"datasource": TEMPO, "queryType": "traceql", "limit": 20,
              "query": '{ resource.service.name =~ "$service" && name =~ "$span_name" }'}],
            w=12, h=12)  # fmt: skip
    variables = [
        query_var("service", "Service", "label_values(traces_spanmetrics_calls_total, service)"),
        query_var("span_name", "Span name",
                  'label_values(traces_spanmetrics_calls_total{service=~"$service"}, span_name)'),
    ]  # fmt: skip
    return dashboard("kms-red", "kms / Application RED",
                     "Requests, errors and duration of every service, from Tempo-style span metrics.",
                     variables, lay)  # fmt: skip


def stack_dashboard() -> dict:
    """kms's own /metrics (telemetry.py), as scraped by a Prometheus that writes into kms or elsewhere."""
    job = 'job=~"$job"'
    tenant = 'tenant=~"$tenant"'
    lay = Layout()
    lay.row("Ingest")
    lay.add("stat", "Ready", [target(f"min(kms_ready{_sel(job)})", "ready")], w=4, h=4)
    lay.add("timeseries", "Items received / s",
            [target(f"sum by (signal) (rate(kms_received_items_total{_sel(job, tenant)}{_RATE}))",
                    "{{signal}}")], w=10, unit="short")  # fmt: skip
    lay.add("timeseries", "Bytes received / s",
            [target(f"sum by (signal) (rate(kms_received_bytes_total{_sel(job, tenant)}{_RATE}))",
                    "{{signal}}")], w=10, unit="Bps")  # fmt: skip
    lay.add("timeseries", "Refused requests / s",
            [target(f"sum by (signal, reason) (rate(kms_refused_requests_total{_sel(job)}{_RATE}))",
                    "{{signal}} {{reason}}")], w=12, unit="reqps")  # fmt: skip
    lay.add("timeseries", "Discarded items / s",
            [target(f"sum by (signal, reason) (rate(kms_discarded_items_total{_sel(job)}{_RATE}))",
                    "{{signal}} {{reason}}")], w=12, unit="short")  # fmt: skip
    lay.row("Latency")
    lay.add("timeseries", "Query latency p50 / p99 by kind",
            [target(f"histogram_quantile({q}, sum by (le, kind) "
                    f"(rate(kms_query_duration_seconds_bucket{_sel(job)}{_RATE})))", f"p{q[2:].ljust(2, '0')} {{{{kind}}}}")
             for q in ("0.5", "0.99")], w=12, unit="s")  # fmt: skip
    lay.add("timeseries", "Request latency p99 by route",
            [target("histogram_quantile(0.99, sum by (le, route) "
                    f"(rate(kms_request_duration_seconds_bucket{_sel(job)}{_RATE})))", "{{route}}")],
            w=12, unit="s")  # fmt: skip
    lay.row("Storage")
    lay.add("timeseries", "Head rows by tenant/signal", [target(f"sum by (series) (kms_storage_head_rows{_sel(job)})",
            "{{series}}")], w=8, unit="short")  # fmt: skip
    lay.add("timeseries", "Block bytes by tenant/signal",
            [target(f"sum by (series) (kms_storage_block_bytes{_sel(job)})", "{{series}}")], w=8, unit="bytes")
    lay.add("timeseries", "WAL", [target(f"sum(kms_storage_wal_bytes{_sel(job)})", "WAL bytes")], w=8, unit="bytes")
    lay.add("timeseries", "Rows appended / s",
            [target(f"sum(rate(kms_storage_appended_rows{_sel(job)}{_RATE}))", "rows/s")], w=8, unit="short")
    lay.add("timeseries", "Average flush duration",
            [target(f"sum(rate(kms_storage_flush_seconds_sum{_sel(job)}{_RATE}))"
                    f" / sum(rate(kms_storage_flush_seconds_count{_sel(job)}{_RATE}))", "flush")],
            w=8, unit="s")  # fmt: skip
    lay.add("timeseries", "WAL fsyncs / s",
            [target(f"sum(rate(kms_storage_wal_fsyncs{_sel(job)}{_RATE}))", "fsyncs/s")], w=8, unit="short")
    variables = [
        query_var("job", "Job", "label_values(kms_ready, job)"),
        query_var("tenant", "Tenant", 'label_values(kms_received_items_total{job=~"$job"}, tenant)'),
    ]
    return dashboard("kms-stack", "kms / Stack self-monitoring",
                     "kms's own /metrics: ingest, refusals, query latency and storage. Needs a scrape of "
                     "kms's /metrics (job label) into the Metrics data source.", variables, lay)  # fmt: skip


def dashboards() -> dict[str, dict]:
    """File name -> dashboard JSON model."""
    return {"kms-red.json": red_dashboard(), "kms-stack.json": stack_dashboard()}
