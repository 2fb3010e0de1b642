"""Where the Kubernetes API is and how to authenticate: in a pod, the service account's token and
CA (re-read on use: projected tokens rotate); outside, the current context of a kubeconfig file."""

from __future__ import annotations

import base64
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from kms.errors import BadInput

__all__ = ["KubeCredentials", "load_credentials", "SERVICE_ACCOUNT_DIR"]

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


@dataclass
class KubeCredentials:
    server: str  # https://host:port
    token: str = ""
    token_file: str = ""  # read on each request (rotating service-account tokens)
    ca_file: str = ""
    client_cert_file: str = ""
    client_key_file: str = ""
    insecure: bool = False
    namespace: str = "default"  # the pod's own namespace, or the context's

    def bearer(self) -> str:
        if self.token_file:
            return Path(self.token_file).read_text().strip()
        return self.token


def _in_cluster(sa_dir: Path, environ) -> KubeCredentials:
    host, port = environ["KUBERNETES_SERVICE_HOST"], environ.get("KUBERNETES_SERVICE_PORT", "443")
    host = f"[{host}]" if ":" in host else host
    ns_file = sa_dir / "namespace"
    return KubeCredentials(
        server=f"https://{host}:{port}", token_file=str(sa_dir / "token"),
        ca_file=str(sa_dir / "ca.crt") if (sa_dir / "ca.crt").exists() else "",
        namespace=ns_file.read_text().strip() if ns_file.exists() else "default",
    )


def _data_file(data_b64: str, suffix: str) -> str:
    """kubeconfig ``*-data`` fields are inline base64; the TLS stack wants files."""
    f = tempfile.NamedTemporaryFile(prefix="kms-kube-", suffix=suffix, delete=False)  # noqa: SIM115
    with f:
        f.write(base64.b64decode(data_b64))
    os.chmod(f.name, 0o600)
    return f.name


def _named(items: list[dict], name: str, kind: str, path: Path) -> dict:
    for item in items or []:
        if item.get("name") == name:
            return item.get(kind) or {}
    raise BadInput(f"kubeconfig {path}: no {kind} named {name!r}")


def _from_kubeconfig(path: Path, context: str | None) -> KubeCredentials:
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        raise BadInput(f"cannot read kubeconfig {path}: {e}") from e
    ctx_name = context or doc.get("current-context")
    if not ctx_name:
        raise BadInput(f"kubeconfig {path}: no current-context")
    ctx = _named(doc.get("contexts"), ctx_name, "context", path)
    cluster = _named(doc.get("clusters"), ctx.get("cluster", ""), "cluster", path)
    user = _named(doc.get("users"), ctx.get("user", ""), "user", path) if ctx.get("user") else {}
    base = path.parent

    def file_or_data(key: str, suffix: str, section: dict) -> str:
        if section.get(f"{key}-data"):
            return _data_file(section[f"{key}-data"], suffix)
        return str((base / section[key]).resolve()) if section.get(key) else ""

    if not cluster.get("server"):
        raise BadInput(f"kubeconfig {path}: cluster of context {ctx_name!r} has no server")
    if user.get("exec") or user.get("auth-provider"):
        raise BadInput(f"kubeconfig {path}: user of context {ctx_name!r} authenticates with an exec/auth-provider "
                       "plugin, which kms does not run; use a token or client certificate")
    return KubeCredentials(
        server=cluster["server"].rstrip("/"),
        token=user.get("token", ""), token_file=str(base / user["tokenFile"]) if user.get("tokenFile") else "",
        ca_file=file_or_data("certificate-authority", ".crt", cluster),
        client_cert_file=file_or_data("client-certificate", ".crt", user),
        client_key_file=file_or_data("client-key", ".key", user),
        insecure=bool(cluster.get("insecure-skip-tls-verify")),
        namespace=ctx.get("namespace") or "default",
    )


def load_credentials(kubeconfig: str = "", context: str | None = None, environ=None,
                     sa_dir: Path = SERVICE_ACCOUNT_DIR) -> KubeCredentials:
    """``kubeconfig`` if given; else in-cluster when running in a pod; else ``$KUBECONFIG`` or
    ``~/.kube/config`` (the first file of a ``:``-separated list)."""
    environ = os.environ if environ is None else environ
    if kubeconfig:
        return _from_kubeconfig(Path(kubeconfig), context)
    if environ.get("KUBERNETES_SERVICE_HOST") and (sa_dir / "token").exists():
        return _in_cluster(sa_dir, environ)
    default = (environ.get("KUBECONFIG") or "").split(os.pathsep)[0] or str(Path.home() / ".kube" / "config")
    if Path(default).exists():
        return _from_kubeconfig(Path(default), context)
    raise BadInput("no Kubernetes credentials: not in a pod (no service account) and no kubeconfig "
                   f"({default} missing); pass --kubeconfig")
