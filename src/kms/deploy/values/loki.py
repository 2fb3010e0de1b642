"""Community loki chart in SimpleScalable mode (no longer the default since chart 12), schema v13."""

from __future__ import annotations

from kms.deploy.endpoints import Endpoints
from kms.deploy.model import Stack
from kms.deploy.secrets import ACCESS_KEY_ENV, SECRET_KEY_ENV, env_from, env_ref

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
                    # Expanded from the S3 Secret (defaults.extraEnvFrom): the chart always
                    # passes -config.expand-env=true (loki 18.x templates/_pod.tpl).
                    "accessKeyId": env_ref(ACCESS_KEY_ENV),
                    "secretAccessKey": env_ref(SECRET_KEY_ENV),
                    "s3ForcePathStyle": True,
                    "insecure": s.insecure,
                },
            },
            # OTLP logs keep trace_id as structured metadata: the Logs -> Traces link needs it.
            "limits_config": {
                "allow_structured_metadata": True, "volume_enabled": True,
                # `cluster` (the collectors' resource attribute, the metrics' label) as an index label next
                # to Loki's defaults (k8s.cluster.name among them), so {cluster="..."} selects streams.
                "otlp_config": {"resource_attributes": {"attributes_config": [
                    {"action": "index_label", "attributes": ["cluster"]}]}},
            },  # fmt: skip
        },
        # `defaults` reaches every Loki component (global.extraEnvFrom is deprecated since chart 17).
        "defaults": {"extraEnvFrom": env_from(stack)},
        "write": {"replicas": ls.write_replicas},
        "read": {"replicas": ls.read_replicas},
        "backend": {"replicas": ls.backend_replicas},
        "singleBinary": {"replicas": 0},
        "minio": {"enabled": False},
    }
    if stack.alerting:  # the stack alerts (components down, samples refused) read Loki's own metrics
        values["monitoring"] = {"serviceMonitor": {"enabled": True}}
    if stack.registry:
        values["global"] = {"imageRegistry": stack.registry}
    return values
