"""Tempo (monolithic community chart) with the metrics generator writing span metrics and
service graphs, with exemplars, to Mimir."""

from __future__ import annotations

from kms.deploy.endpoints import TENANT_HEADER, Endpoints
from kms.deploy.model import Stack
from kms.deploy.secrets import ACCESS_KEY_ENV, SECRET_KEY_ENV, env_from, env_ref

__all__ = ["tempo_values", "GENERATOR_PROCESSORS"]

GENERATOR_PROCESSORS = ["service-graphs", "span-metrics", "local-blocks"]


def tempo_values(stack: Stack, push_url: str) -> dict:
    s = stack.storage
    values: dict = {
        "tempo": {
            "multitenancyEnabled": True,  # the same tenant as Mimir and Loki, so signals correlate
            # Tempo expands ${VAR} in its config only with this flag (the chart renders extraArgs as
            # -key=value); the variables come from the S3 Secret.
            "extraArgs": {"config.expand-env": "true"},
            "extraEnvFrom": env_from(stack),
            "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": "0.0.0.0:4317"},
                                                 "http": {"endpoint": "0.0.0.0:4318"}}}},  # fmt: skip
            "metricsGenerator": {
                "enabled": True,
                # Not the remoteWriteUrl shortcut: it has no send_exemplars.
                "storage": {"remote_write": [
                    {"url": push_url, "send_exemplars": True, "headers": {TENANT_HEADER: stack.tenant}}
                ]},  # fmt: skip
                "registry": {"external_labels": {"cluster": stack.cluster}},
            },
            # Without the processors enabled here, the generator produces nothing.
            "overrides": {"defaults": {"metrics_generator": {"processors": list(GENERATOR_PROCESSORS)}}},
            "storage": {
                "trace": {
                    "backend": "s3",
                    "s3": {
                        "bucket": s.buckets.tempo,
                        "endpoint": Endpoints.of(stack).store(stack),  # host:port; a scheme fails startup
                        "region": s.region,
                        "access_key": env_ref(ACCESS_KEY_ENV),
                        "secret_key": env_ref(SECRET_KEY_ENV),
                        "insecure": s.insecure,
                        "forcepathstyle": True,
                    },
                }
            },
        },
    }
    if stack.alerting:  # the stack alerts (components down, spans refused) read Tempo's own metrics
        values["serviceMonitor"] = {"enabled": True}
    return values
