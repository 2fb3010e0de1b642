"""The default rule set: alerts on the stack itself and the applications it watches (stack.yaml)
and on a Kubernetes cluster (kubernetes.yaml). ``kms up --rules`` takes these paths; the
Kubernetes renderer ships the same groups as PrometheusRule objects."""

from __future__ import annotations

from pathlib import Path

import yaml

__all__ = ["RULE_FILES", "rule_files", "rule_groups"]

_HERE = Path(__file__).parent
RULE_FILES = {"stack": _HERE / "stack.yaml", "kubernetes": _HERE / "kubernetes.yaml"}


def rule_files() -> list[Path]:
    return list(RULE_FILES.values())


def rule_groups(name: str) -> list[dict]:
    """The ``groups`` of one default file, as Prometheus rule-file dicts (a PrometheusRule spec)."""
    return yaml.safe_load(RULE_FILES[name].read_text())["groups"]
