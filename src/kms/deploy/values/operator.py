"""OpenTelemetry Operator: self-signed webhook certificates so cert-manager is not required."""

from __future__ import annotations

from kms.deploy.model import Stack

__all__ = ["operator_values"]


def operator_values(stack: Stack) -> dict:
    # certManager defaults to true and fails with "no matches for kind Certificate" without
    # cert-manager; then the chart generates a self-signed certificate instead.
    webhooks = ({"certManager": {"enabled": True}, "autoGenerateCert": {"enabled": False}} if stack.cert_manager
                else {"certManager": {"enabled": False}, "autoGenerateCert": {"enabled": True, "recreate": True}})  # fmt: skip
    return {
        "admissionWebhooks": webhooks,
        "manager": {"collectorImage": {"repository": "otel/opentelemetry-collector-k8s"}},
        "crds": {"create": True},
    }
