"""ServiceMonitor and PodMonitor objects (``monitoring.coreos.com/v1``) -> Prometheus
``scrape_configs`` entries, as the Prometheus Operator generates them, so manifests written for
kube-prometheus-stack scrape the same targets with the same labels.

Each endpoint of a monitor becomes one job, ``serviceMonitor/<ns>/<name>/<index>`` or
``podMonitor/<ns>/<name>/<index>``, with a ``kubernetes_sd_configs`` entry (role endpoints,
endpointslice or pod, in the namespaces of ``namespaceSelector``) and the Operator's relabeling:
keep by the monitor's selector and port, drop Failed/Succeeded pods (``filterRunning``), set
``namespace``/``service``/``pod``/``container``/``node``/``job``/``endpoint``, then the user's
``relabelings``. Secret and ConfigMap references (basic auth, bearer token, authorization, TLS)
are read through a :class:`SecretSource`; TLS material is written to files under ``files_dir``.

A monitor that cannot be translated (a missing secret, an invalid relabeling, a timeout above
the interval, an unsupported field) is left out whole and its error returned, as the Operator
rejects it and keeps the others.

Not translated (the monitor is refused with a message naming the field): ``oauth2``,
``proxyUrl``, ``sigv4``. Ignored: ``scrapeClassName`` and the Prometheus resource's own
overrides (enforced limits, enforced namespace label, sharding).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from kms.config import parse_duration
from kms.errors import BadInput
from kms.kube.monitor_http import RefResolver, SecretSource, http_settings
from kms.kube.sd_targets import sanitize
from kms.kube.selector import check_selector, selector_string

__all__ = ["MonitorOptions", "SecretSource", "monitors_to_scrape_configs", "pod_monitor_configs",
           "service_monitor_configs"]

_ACTIONS = ("replace", "keep", "drop", "keepequal", "dropequal", "hashmod", "labelmap", "labeldrop", "labelkeep",
            "lowercase", "uppercase")
_LIMITS = (("sampleLimit", "sample_limit"), ("targetLimit", "target_limit"), ("labelLimit", "label_limit"),
           ("labelNameLengthLimit", "label_name_length_limit"),
           ("labelValueLengthLimit", "label_value_length_limit"), ("keepDroppedTargets", "keep_dropped_targets"))


@dataclass
class MonitorOptions:
    default_role: str = "endpoints"  # or "endpointslice" (the Operator's serviceDiscoveryRole)
    kubeconfig_file: str = ""  # written into every generated kubernetes_sd_configs entry
    ignore_namespace_selectors: bool = False  # only the monitor's own namespace, as the Operator's flag
    secrets: SecretSource | None = None
    files_dir: str = ""  # where TLS material read from secrets goes; a temporary directory if empty


def _relabelings(items: list | None, at: str) -> list[dict]:
    """The CRD's camelCase rules in Prometheus's keys; refused where Prometheus would refuse them."""
    out = []
    for i, r in enumerate(items or []):
        rule: dict = {}
        if r.get("sourceLabels"):
            rule["source_labels"] = [str(s) for s in r["sourceLabels"]]
        for src, dst in (("separator", "separator"), ("targetLabel", "target_label"), ("regex", "regex"),
                         ("modulus", "modulus"), ("replacement", "replacement")):
            if r.get(src) not in (None, "") or (src in ("replacement", "separator") and src in r):
                rule[dst] = r[src]
        action = str(r.get("action") or "replace").lower()
        if action not in _ACTIONS:
            raise BadInput(f"{at}[{i}].action: unknown relabel action {r.get('action')!r}")
        if "regex" in rule:
            try:
                re.compile(str(rule["regex"]))
            except re.error as e:
                raise BadInput(f"{at}[{i}].regex: invalid regex {rule['regex']!r}: {e}") from None
        if action in ("replace", "hashmod", "lowercase", "uppercase", "keepequal", "dropequal") \
                and not rule.get("target_label"):
            raise BadInput(f"{at}[{i}].targetLabel: relabel configuration for {action} action requires it")
        if r.get("action"):
            rule["action"] = action
        out.append(rule)
    return out


def _keep_by_selector(sel: dict, kind: str) -> list[dict]:
    """The Operator's relabel form of a label selector over ``__meta_kubernetes_<kind>_label*``."""
    rules = []
    label, present = f"__meta_kubernetes_{kind}_label_", f"__meta_kubernetes_{kind}_labelpresent_"
    for k, v in sorted((sel.get("matchLabels") or {}).items()):
        rules.append({"action": "keep", "source_labels": [label + sanitize(k), present + sanitize(k)],
                      "regex": f"({v});true"})
    for e in sel.get("matchExpressions") or []:
        k, op = sanitize(e["key"]), e["operator"]
        if op in ("In", "NotIn"):
            rules.append({"action": "keep" if op == "In" else "drop", "source_labels": [label + k, present + k],
                          "regex": f"({'|'.join(str(v) for v in e.get('values') or [])});true"})
        else:
            rules.append({"action": "keep" if op == "Exists" else "drop", "source_labels": [present + k],
                          "regex": "true"})
    return rules


def _namespaces(spec: dict, own: str, opts: MonitorOptions) -> list[str]:
    sel = spec.get("namespaceSelector") or {}
    if opts.ignore_namespace_selectors:
        return [own]
    if sel.get("any"):
        return []
    return [str(n) for n in sel.get("matchNames") or []] or [own]


def _sd_config(spec: dict, own: str, role: str, selector_roles: tuple[str, ...], opts: MonitorOptions) -> dict:
    sd: dict = {"role": role}
    names = _namespaces(spec, own, opts)
    if names:
        sd["namespaces"] = {"names": names}
    if opts.kubeconfig_file:
        sd["kubeconfig_file"] = opts.kubeconfig_file
    if spec.get("attachMetadata") is not None:
        sd["attach_metadata"] = {"node": bool((spec.get("attachMetadata") or {}).get("node", False))}
    if spec.get("selectorMechanism") == "RoleSelector":
        text = selector_string(spec.get("selector"))
        sd["selectors"] = [{"role": r, "label": text} for r in selector_roles]
    return sd


def _common_head(job: str, ep: dict) -> dict:
    cfg: dict = {"job_name": job, "honor_labels": bool(ep.get("honorLabels", False))}
    if ep.get("honorTimestamps") is not None:
        cfg["honor_timestamps"] = bool(ep["honorTimestamps"])
    if ep.get("trackTimestampsStaleness") is not None:
        cfg["track_timestamps_staleness"] = bool(ep["trackTimestampsStaleness"])
    return cfg


def _common_scrape(cfg: dict, ep: dict, at: str) -> None:
    for src, dst in (("interval", "scrape_interval"), ("scrapeTimeout", "scrape_timeout"), ("path", "metrics_path")):
        if ep.get(src):
            cfg[dst] = str(ep[src])
    seconds: dict[str, float] = {}
    for key in ("scrape_interval", "scrape_timeout"):
        if key in cfg:
            try:
                seconds[key] = parse_duration(cfg[key])
            except BadInput as e:
                raise BadInput(f"{at}.{'interval' if key == 'scrape_interval' else 'scrapeTimeout'}: "
                               f"{e.message}") from None
    if len(seconds) == 2 and seconds["scrape_timeout"] > seconds["scrape_interval"]:
        raise BadInput(f"{at}.scrapeTimeout: {cfg['scrape_timeout']} is greater than the interval "
                       f"{cfg['scrape_interval']}")
    if ep.get("params") is not None:
        cfg["params"] = {str(k): [str(x) for x in (v if isinstance(v, list) else [v])] for k, v in ep["params"].items()}
    if ep.get("scheme"):
        cfg["scheme"] = str(ep["scheme"]).lower()


def _common_tail(cfg: dict, spec: dict, ep: dict, relabelings: list[dict], at: str) -> None:
    relabelings += _relabelings(ep.get("relabelings"), f"{at}.relabelings")
    cfg["relabel_configs"] = relabelings
    for src, dst in _LIMITS:
        if spec.get(src) is not None:
            cfg[dst] = int(spec[src])
    if spec.get("bodySizeLimit"):
        cfg["body_size_limit"] = str(spec["bodySizeLimit"])
    if spec.get("scrapeProtocols"):
        cfg["scrape_protocols"] = [str(p) for p in spec["scrapeProtocols"]]
    metric = _relabelings(ep.get("metricRelabelings"), f"{at}.metricRelabelings")
    if metric:
        cfg["metric_relabel_configs"] = metric


def _target_labels(names: Iterable[str], kind: str) -> list[dict]:
    return [{"source_labels": [f"__meta_kubernetes_{kind}_label_{sanitize(n)}"], "target_label": sanitize(n),
             "regex": "(.+)", "replacement": "${1}"} for n in names]


_RUNNING_FILTER = {"action": "drop", "source_labels": ["__meta_kubernetes_pod_phase"], "regex": "(Failed|Succeeded)"}
_INIT = {"source_labels": ["job"], "target_label": "__tmp_prometheus_job_name"}


def _meta(obj: dict) -> tuple[str, str, dict]:
    meta = obj.get("metadata") or {}
    return meta.get("namespace", ""), meta.get("name", ""), obj.get("spec") or {}


def service_monitor_configs(sm: dict, opts: MonitorOptions | None = None) -> list[dict]:
    """One scrape config per endpoint of a ServiceMonitor; BadInput names the field at fault."""
    opts = opts or MonitorOptions()
    ns, name, spec = _meta(sm)
    at = f"ServiceMonitor {ns}/{name}"
    check_selector(spec.get("selector"), f"{at}: spec.selector")
    refs = RefResolver(opts.secrets, opts.files_dir)
    role = {"endpointslice": "endpointslice", "endpoints": "endpoints"}.get(
        str(spec.get("serviceDiscoveryRole") or opts.default_role).lower(), opts.default_role)
    kind_prefix = "endpointslice" if role == "endpointslice" else "endpoint"
    out = []
    for i, ep in enumerate(spec.get("endpoints") or []):
        eat = f"{at}: spec.endpoints[{i}]"
        cfg = _common_head(f"serviceMonitor/{ns}/{name}/{i}", ep)
        cfg["kubernetes_sd_configs"] = [_sd_config(spec, ns, role, (role, "service"), opts)]
        _common_scrape(cfg, ep, eat)
        cfg.update(http_settings(ep, ns, refs, eat))
        opts.files_dir = refs.files_dir  # keep one directory for every monitor
        rules = [dict(_INIT)]
        if spec.get("selectorMechanism") != "RoleSelector":
            rules += _keep_by_selector(spec.get("selector") or {}, "service")
        target_port = ep.get("targetPort")
        if ep.get("port"):
            rules.append({"action": "keep", "source_labels": [f"__meta_kubernetes_{kind_prefix}_port_name"],
                          "regex": str(ep["port"])})
        elif isinstance(target_port, str) and target_port:
            rules.append({"action": "keep", "source_labels": ["__meta_kubernetes_pod_container_port_name"],
                          "regex": target_port})
        elif isinstance(target_port, int) and target_port:
            rules.append({"action": "keep", "source_labels": ["__meta_kubernetes_pod_container_port_number"],
                          "regex": str(target_port)})
        ref = [f"__meta_kubernetes_{kind_prefix}_address_target_kind",
               f"__meta_kubernetes_{kind_prefix}_address_target_name"]
        rules += [
            {"source_labels": ref, "separator": ";", "regex": "Node;(.*)", "replacement": "${1}", "target_label": "node"},
            {"source_labels": ref, "separator": ";", "regex": "Pod;(.*)", "replacement": "${1}", "target_label": "pod"},
            {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
            {"source_labels": ["__meta_kubernetes_service_name"], "target_label": "service"},
            {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
            {"source_labels": ["__meta_kubernetes_pod_container_name"], "target_label": "container"},
        ]
        if ep.get("filterRunning", True):
            rules.append(dict(_RUNNING_FILTER))
        rules += _target_labels(spec.get("targetLabels") or [], "service")
        rules += _target_labels(spec.get("podTargetLabels") or [], "pod")
        # the service name is the job unless jobLabel names a service label that has a value
        rules.append({"source_labels": ["__meta_kubernetes_service_name"], "target_label": "job",
                      "replacement": "${1}"})
        _job_and_endpoint(rules, spec, ep, target_port, "service")
        _common_tail(cfg, spec, ep, rules, eat)
        out.append(cfg)
    return out


def pod_monitor_configs(pm: dict, opts: MonitorOptions | None = None) -> list[dict]:
    """One scrape config per ``podMetricsEndpoints`` entry of a PodMonitor."""
    opts = opts or MonitorOptions()
    ns, name, spec = _meta(pm)
    at = f"PodMonitor {ns}/{name}"
    check_selector(spec.get("selector"), f"{at}: spec.selector")
    refs = RefResolver(opts.secrets, opts.files_dir)
    out = []
    for i, ep in enumerate(spec.get("podMetricsEndpoints") or []):
        eat = f"{at}: spec.podMetricsEndpoints[{i}]"
        cfg = _common_head(f"podMonitor/{ns}/{name}/{i}", ep)
        cfg["kubernetes_sd_configs"] = [_sd_config(spec, ns, "pod", ("pod",), opts)]
        _common_scrape(cfg, ep, eat)
        cfg.update(http_settings(ep, ns, refs, eat))
        opts.files_dir = refs.files_dir  # keep one directory for every monitor
        rules = [dict(_INIT)]
        if ep.get("filterRunning", True):
            rules.append(dict(_RUNNING_FILTER))
        if spec.get("selectorMechanism") != "RoleSelector":
            rules += _keep_by_selector(spec.get("selector") or {}, "pod")
        target_port = ep.get("targetPort")
        if ep.get("port"):
            rules.append({"action": "keep", "source_labels": ["__meta_kubernetes_pod_container_port_name"],
                          "regex": str(ep["port"])})
        elif ep.get("portNumber"):
            rules.append({"action": "keep", "source_labels": ["__meta_kubernetes_pod_container_port_number"],
                          "regex": str(ep["portNumber"])})
        elif target_port not in (None, "", 0):
            by = "name" if isinstance(target_port, str) else "number"
            rules.append({"action": "keep", "source_labels": [f"__meta_kubernetes_pod_container_port_{by}"],
                          "regex": str(target_port)})
        rules += [
            {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
            {"source_labels": ["__meta_kubernetes_pod_container_name"], "target_label": "container"},
            {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
        ]
        rules += _target_labels(spec.get("podTargetLabels") or [], "pod")
        rules.append({"target_label": "job", "replacement": f"{ns}/{name}"})
        _job_and_endpoint(rules, spec, ep, target_port, "pod")
        _common_tail(cfg, spec, ep, rules, eat)
        out.append(cfg)
    return out


def _job_and_endpoint(rules: list[dict], spec: dict, ep: dict, target_port, kind: str) -> None:
    """The operator's ``jobLabel`` (a label of the service or pod that, when set, names the job)
    and ``endpoint`` label (the port's name, else its number)."""
    if spec.get("jobLabel"):
        rules.append({"source_labels": [f"__meta_kubernetes_{kind}_label_{sanitize(spec['jobLabel'])}"],
                      "target_label": "job", "regex": "(.+)", "replacement": "${1}"})
    endpoint = ep.get("port") or (str(target_port) if target_port not in (None, "", 0) else "")
    if endpoint:
        rules.append({"target_label": "endpoint", "replacement": str(endpoint)})


def monitors_to_scrape_configs(service_monitors: Iterable[dict], pod_monitors: Iterable[dict],
                               opts: MonitorOptions | None = None,
                               errors: dict[str, str] | None = None) -> list[dict]:
    """Scrape configs of every monitor, ServiceMonitors then PodMonitors, each sorted by
    namespace and name (stable job order). A monitor that fails is left out; its error goes into
    ``errors`` under ``ServiceMonitor ns/name`` / ``PodMonitor ns/name``."""
    opts = opts or MonitorOptions()
    errors = {} if errors is None else errors
    out: list[dict] = []
    for kind, objs, fn in (("ServiceMonitor", service_monitors, service_monitor_configs),
                           ("PodMonitor", pod_monitors, pod_monitor_configs)):
        for obj in sorted(objs, key=lambda o: _meta(o)[:2]):
            ns, name, _ = _meta(obj)
            try:
                out += fn(obj, opts)
            except (BadInput, KeyError, TypeError, ValueError, AttributeError) as e:
                errors[f"{kind} {ns}/{name}"] = e.message if isinstance(e, BadInput) else f"{kind} {ns}/{name}: {e!r}"
    return out
