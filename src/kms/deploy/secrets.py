"""Credentials as Kubernetes Secrets, never as plain chart values: the S3 keys every engine and
the in-cluster store read, and Grafana's admin login. Values only name the Secret and refer to
environment variables (``${AWS_SECRET_ACCESS_KEY}``, expanded by the engines at start).

Unless the stack file names an existing Secret (``storage.credentials_secret``), ``kms render``
writes one to ``secrets/`` (outside ``chart/`` and ``manifests/``, so the values and manifests
can be committed while the Secret goes to a secret manager); ``kms deploy`` applies it before
the charts that read it."""

from __future__ import annotations

import json

from kms.deploy.manifests import labels
from kms.deploy.model import Stack

__all__ = ["ACCESS_KEY_ENV", "SECRET_KEY_ENV", "GRAFANA_USER_KEY", "GRAFANA_PASSWORD_KEY", "env_ref",
           "s3_secret_name", "grafana_secret_name", "env_from", "secret_objects"]  # fmt: skip

# The AWS SDK's own names: an engine that ignores the config keys still finds them.
ACCESS_KEY_ENV, SECRET_KEY_ENV = "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"
# Keys of the S3 Secret besides the two variables: the in-cluster stores' own formats.
SEAWEEDFS_CONFIG_KEY = "seaweedfs_s3_config"  # the chart's s3.existingConfigSecret wants this key
MINIO_USER_KEY, MINIO_PASSWORD_KEY = "rootUser", "rootPassword"  # the minio chart's existingSecret keys
GRAFANA_USER_KEY, GRAFANA_PASSWORD_KEY = "admin-user", "admin-password"


def env_ref(var: str) -> str:
    return "${" + var + "}"


def s3_secret_name(stack: Stack) -> str:
    return stack.storage.credentials_secret or f"{stack.name}-s3"


def grafana_secret_name(stack: Stack) -> str:
    return f"{stack.name}-grafana-admin"


def env_from(stack: Stack) -> list[dict]:
    """``envFrom`` entries that put the S3 Secret's keys into a pod's environment."""
    return [{"secretRef": {"name": s3_secret_name(stack)}}]


def _secret(stack: Stack, name: str, data: dict[str, str]) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": stack.namespace, "labels": labels(stack, "credentials")},
        "type": "Opaque",
        "stringData": data,
    }


def _s3_data(stack: Stack) -> dict[str, str]:
    s = stack.storage
    data = {ACCESS_KEY_ENV: s.access_key, SECRET_KEY_ENV: s.secret_key}
    if s.type == "seaweedfs":
        identity = {"name": "kms", "credentials": [{"accessKey": s.access_key, "secretKey": s.secret_key}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"]}  # fmt: skip
        data[SEAWEEDFS_CONFIG_KEY] = json.dumps({"identities": [identity]}, sort_keys=True)
    elif s.type == "minio":
        data |= {MINIO_USER_KEY: s.access_key, MINIO_PASSWORD_KEY: s.secret_key}
    return data


def secret_objects(stack: Stack, *, s3: bool, grafana: bool) -> list[dict]:
    """The Secrets kms writes: S3 credentials (unless the stack names its own Secret) and
    Grafana's admin login (when the stack sets a password; else the chart generates one)."""
    out = []
    if s3 and not stack.storage.credentials_secret:
        out.append(_secret(stack, s3_secret_name(stack), _s3_data(stack)))
    if grafana and stack.grafana.admin_password:
        out.append(_secret(stack, grafana_secret_name(stack), {GRAFANA_USER_KEY: stack.grafana.admin_user,
                                                               GRAFANA_PASSWORD_KEY: stack.grafana.admin_password}))
    return out
