"""The HTTP settings of a monitor endpoint (``tlsConfig``, ``basicAuth``, ``authorization``,
``bearerTokenSecret``/``bearerTokenFile``, ``followRedirects``, ``enableHttp2``) in Prometheus's
scrape-config keys. Secret and ConfigMap references are read through a :class:`SecretSource`;
TLS material goes to files (the scrape client reads files), named like the Operator's mounts."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Protocol

from kms.errors import BadInput
from kms.kube.sd_targets import sanitize

__all__ = ["RefResolver", "SecretSource", "http_settings"]

_UNSUPPORTED = ("oauth2", "proxyUrl", "sigv4")


class SecretSource(Protocol):
    def get(self, kind: str, namespace: str, name: str, key: str) -> str | None:
        """The value of ``key`` in the Secret (``kind="secret"``) or ConfigMap ``namespace/name``."""


class RefResolver:
    """Reads references for one monitor namespace at a time; ``files_dir`` is created on first use
    (a temporary directory when not given)."""

    def __init__(self, secrets: SecretSource | None, files_dir: str = ""):
        self.secrets = secrets
        self.files_dir = files_dir

    def value(self, ref: dict | None, kind: str, ns: str, at: str) -> str:
        if not ref or not ref.get("name"):
            raise BadInput(f"{at}: a {kind} reference needs name and key")
        if self.secrets is None:
            raise BadInput(f"{at}: {kind} {ns}/{ref['name']} cannot be read (no Kubernetes API access)")
        value = self.secrets.get(kind, ns, ref["name"], ref.get("key", ""))
        if value is None:
            raise BadInput(f"{at}: key {ref.get('key')!r} of {kind} {ns}/{ref['name']} not found")
        return value

    def file(self, ref: dict, kind: str, ns: str, at: str) -> str:
        """The referenced value written to ``<files_dir>/<kind>_<ns>_<name>_<key>`` (rewritten
        only when it changed, atomically, mode 0600)."""
        value = self.value(ref, kind, ns, at)
        if not self.files_dir:
            self.files_dir = tempfile.mkdtemp(prefix="kms-monitor-tls-")
        path = Path(self.files_dir) / sanitize(f"{kind}_{ns}_{ref['name']}_{ref.get('key', '')}")
        if not path.exists() or path.read_text() != value:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(value)
            os.chmod(tmp, 0o600)
            tmp.replace(path)
        return str(path)

    def secret_or_configmap(self, doc: dict | None, ns: str, at: str) -> str:
        doc = doc or {}
        if doc.get("secret"):
            return self.file(doc["secret"], "secret", ns, f"{at}.secret")
        if doc.get("configMap"):
            return self.file(doc["configMap"], "configmap", ns, f"{at}.configMap")
        return ""


def _tls(doc: dict, ns: str, refs: RefResolver, at: str) -> dict:
    ca = doc.get("caFile") or refs.secret_or_configmap(doc.get("ca"), ns, f"{at}.ca")
    cert = doc.get("certFile") or refs.secret_or_configmap(doc.get("cert"), ns, f"{at}.cert")
    key = doc.get("keyFile") or (refs.file(doc["keySecret"], "secret", ns, f"{at}.keySecret")
                                 if doc.get("keySecret") else "")
    out = {k: v for k, v in (("ca_file", ca), ("cert_file", cert), ("key_file", key),
                             ("server_name", doc.get("serverName"))) if v}
    if "insecureSkipVerify" in doc:
        out["insecure_skip_verify"] = bool(doc["insecureSkipVerify"])
    return out


def http_settings(ep: dict, ns: str, refs: RefResolver, at: str) -> dict:
    """follow_redirects, enable_http2, tls_config and at most one kind of authentication."""
    for key in _UNSUPPORTED:
        if ep.get(key):
            raise BadInput(f"{at}.{key}: not supported by kms")
    out: dict = {}
    if "followRedirects" in ep:
        out["follow_redirects"] = bool(ep["followRedirects"])
    if "enableHttp2" in ep:
        out["enable_http2"] = bool(ep["enableHttp2"])
    if ep.get("tlsConfig") is not None:  # the Operator writes tls_config even for an empty tlsConfig
        out["tls_config"] = _tls(ep["tlsConfig"], ns, refs, f"{at}.tlsConfig")
    if ep.get("bearerTokenFile"):
        out["bearer_token_file"] = ep["bearerTokenFile"]
    if (ep.get("bearerTokenSecret") or {}).get("name"):
        out["bearer_token"] = refs.value(ep["bearerTokenSecret"], "secret", ns, f"{at}.bearerTokenSecret")
    if ep.get("basicAuth"):
        b = ep["basicAuth"]
        out["basic_auth"] = {"username": refs.value(b.get("username"), "secret", ns, f"{at}.basicAuth.username"),
                             "password": refs.value(b.get("password"), "secret", ns, f"{at}.basicAuth.password")}
    if ep.get("authorization"):
        a = ep["authorization"]
        auth = {"type": a.get("type") or "Bearer"}
        if a.get("credentials"):
            auth["credentials"] = refs.value(a["credentials"], "secret", ns, f"{at}.authorization.credentials")
        if a.get("credentialsFile"):
            auth["credentials_file"] = a["credentialsFile"]
        out["authorization"] = auth
    kinds = [k for k in ("bearer_token_file", "bearer_token", "basic_auth", "authorization") if k in out]
    if len(kinds) > 1:
        raise BadInput(f"{at}: at most one of bearerTokenFile, bearerTokenSecret, basicAuth and authorization "
                       f"may be set (got {', '.join(kinds)})")
    return out
