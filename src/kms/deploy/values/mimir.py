"""mimir-distributed 6.x without Kafka (classic architecture), on the stack's object store."""

from __future__ import annotations

from kms.deploy.endpoints import Endpoints
from kms.deploy.model import Stack
from kms.deploy.secrets import ACCESS_KEY_ENV, SECRET_KEY_ENV, env_from, env_ref

__all__ = ["mimir_values"]


def mimir_values(stack: Stack) -> dict:
    s, b = stack.storage, stack.storage.buckets
    config = {
        "multitenancy_enabled": True,
        "ingest_storage": {"enabled": False},
        "limits": {
            # The default of 0 drops every exemplar Prometheus and Tempo send.
            "max_global_exemplars_per_user": 100000,
            "max_label_names_per_series": 40,
        },
        "common": {
            "storage": {
                "backend": "s3",
                "s3": {
                    "endpoint": Endpoints.of(stack).store(stack),
                    "region": s.region,
                    # From the S3 Secret through global.extraEnvFrom; the chart starts every
                    # component with -config.expand-env=true (its templates, mimir-distributed 6).
                    "access_key_id": env_ref(ACCESS_KEY_ENV),
                    "secret_access_key": env_ref(SECRET_KEY_ENV),
                    "insecure": s.insecure,
                },
            }
        },
        "blocks_storage": {"s3": {"bucket_name": b.mimir_blocks}},
        "ruler_storage": {"s3": {"bucket_name": b.mimir_ruler}},
        "alertmanager_storage": {"s3": {"bucket_name": b.mimir_ruler}},
    }
    values = {
        "global": {"extraEnvFrom": env_from(stack)},
        "kafka": {"enabled": False},
        "minio": {"enabled": False},  # the stack's object store serves all three engines
        "mimir": {"structuredConfig": config},
    }
    if stack.alerting:  # the stack alerts (components down, samples refused) read Mimir's own metrics
        values["metaMonitoring"] = {"serviceMonitor": {"enabled": True}}
    return values
