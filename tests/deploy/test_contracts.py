"""The configs kms render writes for kms's own processes load with kms's own parsers: the small
profile's `kms up` config (kms.config) and every `kms agent` config (kms.pipeline.config)."""

from __future__ import annotations

from pathlib import Path

import yaml
from deploy_stacks import stack_for

from kms.config import load_config
from kms.deploy import render
from kms.pipeline.config import load_pipeline_config


def _config_map(path: Path, key: str, tmp: Path) -> Path:
    out = tmp / key
    out.write_text(yaml.safe_load(path.read_text())["data"][key])
    return out


def test_kms_up_config_loads(rendered: dict[str, Path], tmp_path: Path) -> None:
    cfg = load_config(_config_map(rendered["small"] / "manifests" / "configmap-kms.yaml", "kms.yaml", tmp_path),
                      environ={})  # fmt: skip
    assert cfg.rules.kubernetes is True and cfg.tenancy.default_tenant == "anonymous"


def test_agent_configs_load(rendered: dict[str, Path], tmp_path: Path) -> None:
    small = load_pipeline_config(_config_map(rendered["small"] / "manifests" / "configmap-kms-agent.yaml", "agent.yaml",
                                             tmp_path))  # fmt: skip
    assert ("exporters", "otlp_http/remote") in small.components
    multi = tmp_path / "multi"
    render(stack_for("multi-cluster", "multi_cluster.agent=kms"), multi)
    (tmp_path / "eu").mkdir()
    agent = load_pipeline_config(_config_map(multi / "clusters/prod-eu/manifests/configmap-kms-agent.yaml", "agent.yaml",
                                             tmp_path / "eu"))  # fmt: skip
    assert ("receivers", "file_log") not in agent.components  # the collector DaemonSet tails the pod logs there
