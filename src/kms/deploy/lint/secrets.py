"""Plain secrets in chart values: passwords and secret keys written into values end up in Helm's
release Secret, in `helm get values`, in git and in CI logs. Each chart stack kms renders takes
them from Kubernetes Secrets instead (environment variables or the chart's existingSecret key)."""

from __future__ import annotations

import re
from typing import Any

from kms.deploy.lint.findings import Doc, get

__all__ = ["check_plain_secrets", "check_env_refs"]

# Keys whose value is itself a secret (not the name of a Secret: existingSecret, secretName, ...).
_SECRET_KEY = re.compile(r"(?i)(password|passwd|secret_?key|secret_access_key|secretaccesskey|api_?key|token)$")
# A value taken from the environment or a file at start (the engines' -config.expand-env), not a secret.
_REFERENCE = re.compile(r"^\s*(\$\{[^}]+\}|\$\([^)]+\)|\$__(env|file)\{[^}]+\})\s*$")

_FIX = {  # chart-specific ways to take the value from a Secret; the generic fix otherwise
    "mimir": "write \"${AWS_SECRET_ACCESS_KEY}\" and add global.extraEnvFrom: [{secretRef: {name: <secret>}}] "
             "(mimir-distributed starts every component with -config.expand-env=true)",
    "loki": "write \"${AWS_SECRET_ACCESS_KEY}\" and add defaults.extraEnvFrom: [{secretRef: {name: <secret>}}] "
            "(the loki chart passes -config.expand-env=true)",
    "tempo": "write \"${AWS_SECRET_ACCESS_KEY}\", add tempo.extraEnvFrom: [{secretRef: {name: <secret>}}] and "
             "tempo.extraArgs: {config.expand-env: \"true\"}",
    "grafana": "use admin.existingSecret with admin.userKey and admin.passwordKey",
    "minio": "use existingSecret (a Secret with rootUser and rootPassword)",
    "seaweedfs": "use s3.existingConfigSecret (a Secret with seaweedfs_s3_config)",
}
_GENERIC = "keep it in a Kubernetes Secret and reference it (the chart's existingSecret key, or envFrom plus ${VAR})"


def _walk(node: Any, path: str, out: list[tuple[str, str]]) -> None:
    if isinstance(node, dict):
        for k, v in node.items():
            p = f"{path}.{k}" if path else str(k)
            if isinstance(v, str) and v and _SECRET_KEY.search(str(k)) and not _REFERENCE.match(v):
                out.append((p, str(k)))
            else:
                _walk(v, p, out)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            _walk(v, f"{path}[{i}]", out)


def check_plain_secrets(doc: Doc, chart: str = "") -> None:
    """``chart``: the chart the values belong to ('' for the umbrella: its first key names it)."""
    found: list[tuple[str, str]] = []
    _walk(doc.data, "", found)
    for path, key in found:
        which = chart or path.split(".", 1)[0]
        doc.warn("plain-secret", path, f"{key} is written in plain text in chart values: it lands in Helm's "
                 "release Secret, `helm get values`, git and CI logs", _FIX.get(which, _GENERIC))


# Where each chart takes environment variables for all its engine pods; Tempo also needs the flag.
_ENV_KEYS = {
    "mimir": ("global.extraEnvFrom", "global.extraEnv"),
    "loki": ("defaults.extraEnvFrom", "defaults.extraEnv", "global.extraEnvFrom", "global.extraEnv"),
    "tempo": ("tempo.extraEnvFrom", "tempo.extraEnv"),
}


def _refs(node: Any, path: str, out: list[str]) -> None:
    if isinstance(node, dict):
        for k, v in node.items():
            _refs(v, f"{path}.{k}" if path else str(k), out)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            _refs(v, f"{path}[{i}]", out)
    elif isinstance(node, str) and re.search(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}", node):
        out.append(path)


def check_env_refs(doc: Doc, chart: str) -> None:
    """A ``${VAR}`` in Mimir, Loki or Tempo values with nothing that sets VAR: the engine gets the
    literal text (S3 answers 403 InvalidAccessKeyId), or, for Tempo without -config.expand-env,
    the reference is never expanded."""
    if chart not in _ENV_KEYS:
        return
    refs: list[str] = []
    _refs(doc.data, "", refs)
    if not refs:
        return
    if not any(get(doc.data, k) for k in _ENV_KEYS[chart]):
        doc.error("env-ref-unset", refs[0], f"{len(refs)} value(s) refer to environment variables, but the chart "
                  "sets none: the engine reads the literal ${...} text", f"add {_ENV_KEYS[chart][0]}: "
                  "[{secretRef: {name: <Secret with the variables>}}]")
    if chart == "tempo" and str((get(doc.data, "tempo.extraArgs") or {}).get("config.expand-env", "")).lower() != "true":
        doc.error("tempo-expand-env", refs[0], "Tempo expands ${VAR} in its config only with -config.expand-env=true",
                  "add tempo.extraArgs: {config.expand-env: \"true\"}")
