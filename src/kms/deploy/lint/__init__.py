"""Static checks of collector configs, chart values, Grafana provisioning and manifests."""

from kms.deploy.lint.findings import Doc, Finding
from kms.deploy.lint.run import detect, lint_docs, lint_paths

__all__ = ["Doc", "Finding", "detect", "lint_docs", "lint_paths"]
