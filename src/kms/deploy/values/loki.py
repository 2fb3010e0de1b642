"""Community loki chart in SimpleScalable mode (no longer the default since chart 12), schema v13."""

from __future__ import annotations

from kms.deploy.endpoints import Endpoints
from kms.deploy.model import Stack

__all__ = ["loki_values"]


def loki_values(stack: Stack) -> dict:
    s, b, ls = stack.storage, stack.storage.buckets, stack.loki
    values: dict = {
        "deploymentMode": "SimpleScalable",
        "loki": {
            "auth_enabled": True,
            "commonConfig": {"replication_factor": ls.replication_factor},
            "schemaConfig": {
                "configs": [{
                    "from": "2024-04-01", "store": "tsdb", "object_store": "s3", "schema": "v13",
                    "index": {"prefix": "loki_index_", "period": "24h"},
                }]
            },  # fmt: skip
            "storage": {
                "type": "s3",
                "bucketNames": {"chunks": b.loki_chunks, "ruler": b.loki_ruler, "admin": b.loki_admin},
                "s3": {
                    "endpoint": Endpoints.of(stack).store(stack),
                    "region": s.region,
                    "accessKeyId": s.access_key,
                    "secretAccessKey": s.secret_key,
                    "s3ForcePathStyle": True,
                    "insecure": s.insecure,
                },
            },
            # OTLP logs keep trace_id as structured metadata: the Logs -> Traces link needs it.
            "limits_config": {"allow_structured_metadata": True, "volume_enabled": True},
        },
        "write": {"replicas": ls.write_replicas},
        "read": {"replicas": ls.read_replicas},
        "backend": {"replicas": ls.backend_replicas},
        "singleBinary": {"replicas": 0},
        "minio": {"enabled": False},
    }
    if stack.registry:
        values["global"] = {"imageRegistry": stack.registry}
    return values
