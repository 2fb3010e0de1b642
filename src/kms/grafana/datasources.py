"""Grafana data-source provisioning for kms (api-contracts section 6): Prometheus, Loki and Tempo,
linked to each other by stable UIDs so exemplars, log lines and spans jump between them."""

from __future__ import annotations

__all__ = ["PROM_UID", "LOKI_UID", "TEMPO_UID", "TENANT_HEADER", "DEFAULT_URL", "TRACES_TO_LOGS_QUERY",
           "TRACES_TO_LOGS_TAGS", "datasources"]

# Stable UIDs: dashboards and the Kubernetes renderer refer to them, so they never change.
PROM_UID = "obs-prom"
LOKI_UID = "obs-loki"
TEMPO_UID = "obs-tempo"
TENANT_HEADER = "X-Scope-OrgID"
DEFAULT_URL = "http://localhost:3200"
# Span -> logs: the span's resource attributes become Loki stream selectors, and the trace id is
# matched in structured metadata (Grafana's default query filters the line text instead).
# ``kms verify`` runs this same query to prove the link.
TRACES_TO_LOGS_TAGS = {"service.name": "service_name"}
TRACES_TO_LOGS_QUERY = '{${__tags}} | trace_id="${__span.traceId}"'


def _esc(text: str) -> str:
    """Grafana expands ``$VAR``/``${VAR}`` from the environment in provisioning files; ``$$`` keeps a ``$``."""
    return text.replace("$", "$$")


def _with_tenant(ds: dict, tenant: str | None) -> dict:
    # Grafana sends the tenant header only as a configured custom header.
    if tenant:
        ds["jsonData"]["httpHeaderName1"] = TENANT_HEADER
        ds["secureJsonData"] = {"httpHeaderValue1": _esc(tenant)}
    return ds


def _prometheus(url: str) -> dict:
    return {
        "name": "Metrics",
        "type": "prometheus",
        "uid": PROM_UID,
        "access": "proxy",
        "url": f"{url}/prometheus",
        "jsonData": {
            "httpMethod": "POST",
            "prometheusType": "Prometheus",
            "prometheusVersion": "3.5.0",
            "timeInterval": "15s",
            "manageAlerts": False,
            "disableRecordingRules": False,
            "exemplarTraceIdDestinations": [
                # trace_id: exemplars from the OTLP translator; traceID: from the metrics generator.
                {"name": "trace_id", "datasourceUid": TEMPO_UID, "urlDisplayLabel": "View trace"},
                {"name": "traceID", "datasourceUid": TEMPO_UID},
            ],
        },
    }


def _loki(url: str) -> dict:
    return {
        "name": "Logs",
        "type": "loki",
        "uid": LOKI_UID,
        "access": "proxy",
        "url": url,
        "jsonData": {
            "maxLines": 1000,
            "derivedFields": [
                # OTLP logs keep trace_id as structured metadata, matched by its name.
                {
                    "name": "TraceID",
                    "matcherType": "label",
                    "matcherRegex": "trace_id",
                    "datasourceUid": TEMPO_UID,
                    "url": _esc("${__value.raw}"),
                    "urlDisplayLabel": "View trace",
                },
                # Plain-text logs that print the id in the line.
                {
                    "name": "TraceIDInLine",
                    "matcherType": "regex",
                    "matcherRegex": '(?:trace_?id|traceID)[=:]"?(\\w+)',
                    "datasourceUid": TEMPO_UID,
                    "url": _esc("${__value.raw}"),
                },
            ],
        },
    }


def _tempo(url: str) -> dict:
    return {
        "name": "Traces",
        "type": "tempo",
        "uid": TEMPO_UID,
        "access": "proxy",
        "url": url,
        "jsonData": {
            "streamingEnabled": {"search": False, "metrics": False},
            "tracesToLogsV2": {
                "datasourceUid": LOKI_UID,
                "spanStartTimeShift": "-5m",
                "spanEndTimeShift": "5m",
                "tags": [{"key": k, "value": v} for k, v in TRACES_TO_LOGS_TAGS.items()],
                "filterByTraceID": True,
                "filterBySpanID": False,
                "customQuery": True,
                "query": _esc(TRACES_TO_LOGS_QUERY),
            },
            "tracesToMetrics": {
                "datasourceUid": PROM_UID,
                "spanStartTimeShift": "-2m",
                "spanEndTimeShift": "2m",
                "tags": [{"key": "service.name", "value": "service"}],
                "queries": [
                    {"name": "Request rate", "query": _esc("sum(rate(traces_spanmetrics_calls_total{$__tags}[5m]))")},
                    {
                        "name": "p90 latency",
                        "query": _esc(
                            "histogram_quantile(0.9, sum(rate(traces_spanmetrics_latency_bucket{$__tags}[5m])) by (le))"
                        ),
                    },
                ],
            },
            "serviceMap": {"datasourceUid": PROM_UID},
            "nodeGraph": {"enabled": True},
            "search": {"hide": False},
            "traceQuery": {"timeShiftEnabled": True, "spanStartTimeShift": "30m", "spanEndTimeShift": "30m"},
            "spanBar": {"type": "Duration"},
        },
    }


def datasources(url: str = DEFAULT_URL, tenant: str | None = None, *, urls: dict[str, str] | None = None) -> dict:
    """The provisioning file ``datasources/kms.yaml`` as a dict; ``url`` is kms's API port (3200).

    ``urls`` maps a data source type (``prometheus``, ``loki``, ``tempo``) to its full URL when the
    backends are separate services (Mimir, Loki and Tempo on Kubernetes); it replaces the URL
    derived from ``url``. Strings are already ``$$``-escaped for a provisioning file."""
    url = url.rstrip("/")
    out = []
    for build in (_prometheus, _loki, _tempo):
        ds = build(url)
        if urls and ds["type"] in urls:
            ds["url"] = urls[ds["type"]].rstrip("/")
        out.append(_with_tenant(ds, tenant))
    return {"apiVersion": 1, "datasources": out}
