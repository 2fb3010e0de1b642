"""Checks of Grafana provisioning: data source links resolve, Mimir URLs end in /prometheus, and
dashboards are embedded rather than downloaded (gnetId/url) where the cluster is air-gapped."""

from __future__ import annotations

from kms.deploy.lint.findings import Doc, get
from kms.deploy.lint.urls import backend_of, path_of

__all__ = ["check_datasources", "check_grafana_values", "datasource_tenant"]


def check_datasources(doc: Doc, base: str = "datasources") -> None:
    sources = doc.data.get("datasources") or []
    uids = {d.get("uid") for d in sources if isinstance(d, dict)}
    for i, d in enumerate(sources):
        where = f"{base}[{i}]"
        url, jd = str(d.get("url", "")), d.get("jsonData") or {}
        if d.get("type") == "prometheus" and backend_of(url) == "mimir" and not path_of(url).endswith("/prometheus"):
            doc.error("grafana-mimir-url", f"{where}.url", f"{url!r}: Mimir serves the Prometheus API under /prometheus",
                      f"use {url.rstrip('/')}/prometheus")
        links = [(f"jsonData.exemplarTraceIdDestinations[{j}]", x.get("datasourceUid"))
                 for j, x in enumerate(jd.get("exemplarTraceIdDestinations") or [])]
        links += [(f"jsonData.derivedFields[{j}]", x.get("datasourceUid")) for j, x in enumerate(jd.get("derivedFields") or [])]
        links += [(f"jsonData.{k}", get(jd, f"{k}.datasourceUid")) for k in ("tracesToLogsV2", "tracesToMetrics", "serviceMap")]
        for path, uid in links:
            if uid and uid not in uids:
                doc.error("grafana-link-uid", f"{where}.{path}", f"links to data source uid {uid!r}, which is not "
                          "provisioned", f"use one of {sorted(u for u in uids if u)}")
        if jd.get("httpHeaderName1", "").lower() == "x-scope-orgid" and not get(d, "secureJsonData.httpHeaderValue1"):
            doc.error("grafana-tenant-header", where, "X-Scope-OrgID header name without a value",
                      "set secureJsonData.httpHeaderValue1 to the tenant")


def datasource_tenant(d: dict) -> str | None:
    """The X-Scope-OrgID a data source sends: None without the header, "" for a name without value."""
    jd = d.get("jsonData") or {}
    for n in range(1, 10):
        if str(jd.get(f"httpHeaderName{n}", "")).lower() == "x-scope-orgid":
            return str(get(d, f"secureJsonData.httpHeaderValue{n}", "") or "").replace("$$", "$")
    return None


def check_grafana_values(doc: Doc, airgapped: bool) -> None:
    v = doc.data
    airgapped = airgapped or bool(get(v, "global.imageRegistry"))
    for provider, dashes in (v.get("dashboards") or {}).items():
        for name, d in (dashes or {}).items():
            for key in ("gnetId", "url"):
                if isinstance(d, dict) and key in d:
                    msg = (f"dashboard {name!r} is downloaded ({key}) by an init container when the pod starts")
                    fix = "embed its JSON (dashboardsConfigMaps, or `json:`) as kms render does"
                    if airgapped:
                        doc.error("grafana-download-airgapped", f"dashboards.{provider}.{name}.{key}",
                                  msg + "; the cluster is air-gapped, so it stays empty", fix)
                    else:
                        doc.warn("grafana-download", f"dashboards.{provider}.{name}.{key}", msg, fix)
    for fname, content in (v.get("datasources") or {}).items():
        if isinstance(content, dict):
            check_datasources(doc.sub("datasources").sub(fname), "datasources")
