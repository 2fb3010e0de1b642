"""mimir-distributed 6.x without Kafka (classic architecture), on the stack's object store."""

from __future__ import annotations

from kms.deploy.endpoints import Endpoints
from kms.deploy.model import Stack

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
                    "access_key_id": s.access_key,
                    "secret_access_key": s.secret_key,
                    "insecure": s.insecure,
                },
            }
        },
        "blocks_storage": {"s3": {"bucket_name": b.mimir_blocks}},
        "ruler_storage": {"s3": {"bucket_name": b.mimir_ruler}},
        "alertmanager_storage": {"s3": {"bucket_name": b.mimir_ruler}},
    }
    return {
        "kafka": {"enabled": False},
        "minio": {"enabled": False},  # the stack's object store serves all three engines
        "mimir": {"structuredConfig": config},
    }
