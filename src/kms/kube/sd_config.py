"""One ``kubernetes_sd_configs`` entry in Prometheus's format, checked as Prometheus checks it at
load, and the API credentials it names: ``kubeconfig_file``; or ``api_server`` with its own HTTP
client settings (bearer token, ``authorization``, ``tls_config``); or neither, meaning the pod's
service account (kms falls back to ``$KUBECONFIG``/``~/.kube/config`` outside a pod, so the same
file works on a laptop). Errors are :class:`~kms.errors.BadInput` naming ``at`` and the key."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kms.errors import BadInput
from kms.kube.credentials import SERVICE_ACCOUNT_DIR, KubeCredentials, load_credentials

__all__ = ["KubeSDConfig", "ROLES", "parse_sd_config"]

ROLES = ("node", "pod", "service", "endpoints", "endpointslice")
# which objects each role may filter with `selectors` (Prometheus's table)
_SELECTOR_ROLES = {"node": ("node",), "pod": ("pod", "node"), "service": ("service",),
                   "endpoints": ("pod", "service", "endpoints"), "endpointslice": ("pod", "service", "endpointslice")}
_HTTP_KEYS = ("bearer_token", "bearer_token_file", "authorization", "tls_config")
_NOOP_HTTP_KEYS = ("follow_redirects", "enable_http2")  # meaningless for the API client; accepted
_UNSUPPORTED = ("basic_auth", "oauth2", "proxy_url", "no_proxy", "proxy_from_environment", "proxy_connect_header")
_KEYS = {"role", "api_server", "kubeconfig_file", "namespaces", "selectors", "attach_metadata",
         *_HTTP_KEYS, *_NOOP_HTTP_KEYS, *_UNSUPPORTED}


@dataclass(frozen=True)
class KubeSDConfig:
    role: str
    namespaces: tuple[str, ...] = ()  # empty: all namespaces
    own_namespace: bool = False
    selectors: dict[str, tuple[str, str]] = field(default_factory=dict)  # object role -> (label, field)
    attach_node: bool = False
    api_server: str = ""
    kubeconfig_file: str = ""
    http: dict = field(default_factory=dict)  # api_server's client settings, as written

    def credentials(self, environ=None, sa_dir: Path = SERVICE_ACCOUNT_DIR) -> KubeCredentials:
        """Where the API is and how to authenticate (files are re-read on use: tokens rotate)."""
        if self.kubeconfig_file:
            return load_credentials(self.kubeconfig_file, environ=environ)
        if not self.api_server:
            return load_credentials(environ=environ, sa_dir=sa_dir)
        h = self.http
        auth = h.get("authorization") or {}
        tls = h.get("tls_config") or {}
        return KubeCredentials(
            server=self.api_server.rstrip("/"),
            token=str(h.get("bearer_token") or auth.get("credentials") or ""),
            token_file=str(h.get("bearer_token_file") or auth.get("credentials_file") or ""),
            ca_file=str(tls.get("ca_file", "") or ""), client_cert_file=str(tls.get("cert_file", "") or ""),
            client_key_file=str(tls.get("key_file", "") or ""),
            insecure=bool(tls.get("insecure_skip_verify", False)))

    def watched_namespaces(self, own: str) -> list[str]:
        """The namespaces to list and watch ("" = all), as Prometheus chooses them."""
        if not self.namespaces and not self.own_namespace:
            return [""]
        return [*self.namespaces, *([own] if self.own_namespace and own else [])]


def _mapping(doc: Any, at: str) -> dict:
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise BadInput(f"{at}: expected a mapping")
    return doc


def _check_selector(text: str, at: str) -> None:
    # the API server parses selectors; catch the obvious slips early, as Prometheus does at load
    if text.count("(") != text.count(")") or any(not t.strip() for t in _terms(text)):
        raise BadInput(f"{at}: invalid selector {text!r}")


def _terms(text: str) -> list[str]:
    """Split at commas outside ``in (a,b)`` parentheses."""
    terms, depth, cur = [], 0, ""
    for ch in text:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            terms.append(cur)
            cur = ""
        else:
            cur += ch
    return [*terms, cur] if text else []


def parse_sd_config(doc: Any, at: str = "kubernetes_sd_configs[0]") -> KubeSDConfig:
    d = _mapping(doc, at)
    unknown = set(d) - _KEYS
    if unknown:
        raise BadInput(f"{at}: unknown key {sorted(unknown)[0]!r}")
    role = d.get("role")
    if not role:
        raise BadInput(f"{at}: role missing (one of: pod, service, endpoints, endpointslice, node)")
    if role == "ingress":
        raise BadInput(f"{at}.role: the ingress role is not supported by kms (node, pod, service, endpoints "
                       "and endpointslice are)")
    if role not in ROLES:
        raise BadInput(f"{at}.role: unknown Kubernetes SD role {role!r}")
    for key in _UNSUPPORTED:
        if d.get(key):
            raise BadInput(f"{at}.{key}: not supported for the Kubernetes API client by kms (use a bearer token, "
                           "authorization, tls_config or a kubeconfig_file)")
    api_server, kubeconfig = str(d.get("api_server") or ""), str(d.get("kubeconfig_file") or "")
    http = {k: d[k] for k in _HTTP_KEYS if d.get(k) is not None}
    if api_server and kubeconfig:
        raise BadInput(f"{at}: cannot use 'kubeconfig_file' and 'api_server' simultaneously")
    if kubeconfig and http:
        raise BadInput(f"{at}: cannot use a custom HTTP client configuration together with 'kubeconfig_file'")
    if not api_server and http:
        raise BadInput(f"{at}: to use custom HTTP client configuration please provide the 'api_server' URL explicitly")
    if api_server and not api_server.startswith(("http://", "https://")):
        raise BadInput(f"{at}.api_server: {api_server!r} is not an http(s) URL")
    if "bearer_token" in http and "bearer_token_file" in http:
        raise BadInput(f"{at}: at most one of bearer_token & bearer_token_file must be configured")
    auth = _mapping(http.get("authorization"), f"{at}.authorization")
    if str(auth.get("type", "Bearer")) != "Bearer":
        raise BadInput(f"{at}.authorization.type: only Bearer is supported for the Kubernetes API")
    _mapping(http.get("tls_config"), f"{at}.tls_config")

    ns = _mapping(d.get("namespaces"), f"{at}.namespaces")
    if set(ns) - {"names", "own_namespace"}:
        raise BadInput(f"{at}.namespaces: unknown key {sorted(set(ns) - {'names', 'own_namespace'})[0]!r}")
    names = ns.get("names") or []
    if not isinstance(names, list):
        raise BadInput(f"{at}.namespaces.names: expected a list of namespace names")
    own = bool(ns.get("own_namespace", False))
    if own and api_server:
        raise BadInput(f"{at}: cannot use 'api_server' and 'namespaces.own_namespace' simultaneously")
    if own and kubeconfig:
        raise BadInput(f"{at}: cannot use 'kubeconfig_file' and 'namespaces.own_namespace' simultaneously")

    selectors: dict[str, tuple[str, str]] = {}
    for i, s in enumerate(d.get("selectors") or []):
        s = _mapping(s, f"{at}.selectors[{i}]")
        srole = s.get("role")
        if srole in selectors:
            raise BadInput(f"{at}.selectors[{i}]: duplicated selector role: {srole}")
        if srole not in _SELECTOR_ROLES[role]:
            raise BadInput(f"{at}.selectors[{i}]: {role} role supports only {', '.join(_SELECTOR_ROLES[role])} selectors")
        label, fld = str(s.get("label") or ""), str(s.get("field") or "")
        _check_selector(label, f"{at}.selectors[{i}].label")
        _check_selector(fld, f"{at}.selectors[{i}].field")
        selectors[srole] = (label, fld)

    attach = _mapping(d.get("attach_metadata"), f"{at}.attach_metadata")
    for key, value in attach.items():
        if key != "node" and value:
            raise BadInput(f"{at}.attach_metadata.{key}: not supported by kms (attach_metadata.node is)")
    return KubeSDConfig(role=role, namespaces=tuple(str(n) for n in names), own_namespace=own, selectors=selectors,
                        attach_node=bool(attach.get("node", False)) and role in ("pod", "endpoints", "endpointslice"),
                        api_server=api_server, kubeconfig_file=kubeconfig, http=http)
