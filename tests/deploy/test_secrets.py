"""Credentials as Secrets: rendered values and manifests hold no password or secret key; the
engines read the S3 keys from the environment (envFrom a Secret), the stores and Grafana from
their charts' existingSecret keys; the Secret is written apart (secrets/) or named by the user."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from deploy_stacks import stack_for

from kms.deploy import StackFileError, render
from kms.deploy.lint import lint_paths

ENV = {"access": "${AWS_ACCESS_KEY_ID}", "secret": "${AWS_SECRET_ACCESS_KEY}"}


def _values(d: Path, alias: str) -> dict:
    return yaml.safe_load((d / "values" / f"{alias}.yaml").read_text())


def _no_plain_secret(d: Path, *secrets: str) -> None:
    for f in d.rglob("*.yaml"):
        if "secrets" not in f.relative_to(d).parts:
            for s in secrets:
                assert s not in f.read_text(), f


def test_engines_read_s3_keys_from_the_secret(rendered: dict[str, Path]) -> None:
    d = rendered["single-cluster"]
    _no_plain_secret(d, "change-me-please")
    ref = [{"secretRef": {"name": "kms-s3"}}]
    m = _values(d, "mimir")
    s3 = m["mimir"]["structuredConfig"]["common"]["storage"]["s3"]
    assert (s3["access_key_id"], s3["secret_access_key"]) == (ENV["access"], ENV["secret"])
    assert m["global"]["extraEnvFrom"] == ref
    loki = _values(d, "loki")
    assert (loki["loki"]["storage"]["s3"]["accessKeyId"], loki["loki"]["storage"]["s3"]["secretAccessKey"]) == (
        ENV["access"], ENV["secret"])
    assert loki["defaults"]["extraEnvFrom"] == ref
    tempo = _values(d, "tempo")["tempo"]
    assert (tempo["storage"]["trace"]["s3"]["access_key"], tempo["storage"]["trace"]["s3"]["secret_key"]) == (
        ENV["access"], ENV["secret"])
    assert tempo["extraEnvFrom"] == ref and tempo["extraArgs"] == {"config.expand-env": "true"}
    store = _values(d, "seaweedfs")["s3"]
    assert store == {"enableAuth": True, "existingConfigSecret": "kms-s3"}
    secret = yaml.safe_load((d / "secrets" / "secret-kms-s3.yaml").read_text())
    data = secret["stringData"]
    assert (data["AWS_ACCESS_KEY_ID"], data["AWS_SECRET_ACCESS_KEY"]) == ("kms", "change-me-please")
    (identity,) = json.loads(data["seaweedfs_s3_config"])["identities"]
    assert identity["credentials"] == [{"accessKey": "kms", "secretKey": "change-me-please"}]


def test_an_existing_secret_is_only_referenced(tmp_path: Path) -> None:
    render(stack_for("single-cluster", "storage.credentials_secret=team-s3"), tmp_path)
    assert not (tmp_path / "secrets").exists()
    assert _values(tmp_path, "mimir")["global"]["extraEnvFrom"] == [{"secretRef": {"name": "team-s3"}}]
    assert _values(tmp_path, "seaweedfs")["s3"]["existingConfigSecret"] == "team-s3"
    assert lint_paths([tmp_path]) == ([], [])


def test_an_existing_secret_and_keys_conflict() -> None:
    with pytest.raises(StackFileError, match="not both"):
        stack_for("single-cluster", "storage.credentials_secret=team-s3", "storage.secret_key=s3cr3t")


def test_minio_reads_the_same_secret(tmp_path: Path) -> None:
    render(stack_for("single-cluster", "storage.type=minio", "storage.secret_key=s3cr3t-key"), tmp_path)
    _no_plain_secret(tmp_path, "s3cr3t-key")
    minio = _values(tmp_path, "minio")
    assert minio["existingSecret"] == "kms-s3" and "rootPassword" not in minio
    data = yaml.safe_load((tmp_path / "secrets" / "secret-kms-s3.yaml").read_text())["stringData"]
    assert (data["rootUser"], data["rootPassword"]) == ("kms", "s3cr3t-key")


@pytest.mark.parametrize("profile", ["single-cluster", "small"])
def test_grafana_admin_password_goes_to_a_secret(profile: str, tmp_path: Path) -> None:
    render(stack_for(profile, "grafana.admin_password=hunter2-hunter2"), tmp_path)
    _no_plain_secret(tmp_path, "hunter2-hunter2")
    g = _values(tmp_path, "grafana")
    assert g["admin"] == {"existingSecret": "kms-grafana-admin", "userKey": "admin-user", "passwordKey": "admin-password"}
    data = yaml.safe_load((tmp_path / "secrets" / "secret-kms-grafana-admin.yaml").read_text())["stringData"]
    assert data == {"admin-user": "admin", "admin-password": "hunter2-hunter2"}
    assert lint_paths([tmp_path]) == ([], [])


def test_small_and_agents_have_no_s3_secret(rendered: dict[str, Path]) -> None:
    assert not (rendered["small"] / "secrets").exists()  # kms keeps its data on a volume
    assert not list((rendered["multi-cluster"] / "clusters").rglob("secrets"))
