"""The in-cluster S3-compatible store with the buckets every engine needs."""

from __future__ import annotations

from dataclasses import astuple

from kms.deploy.model import Stack
from kms.deploy.secrets import s3_secret_name

__all__ = ["bucket_names", "store_values"]


def bucket_names(stack: Stack) -> list[str]:
    # Thanos needs a store every cluster reaches, so it never uses the in-cluster one.
    return sorted(set(astuple(stack.storage.buckets)) - {stack.storage.buckets.thanos})


def store_values(stack: Stack) -> tuple[str, dict] | None:
    """(chart alias, values), or None for an external store."""
    s = stack.storage
    if s.type == "seaweedfs":
        return "seaweedfs", {
            # One all-in-one server (master, volume, filer, S3) suits one cluster's telemetry.
            "master": {"enabled": False},
            "volume": {"enabled": False},
            "filer": {"enabled": False},
            "allInOne": {
                "enabled": True,
                "s3": {"enabled": True, "createBuckets": [{"name": b} for b in bucket_names(stack)]},
                "data": {"type": "persistentVolumeClaim", "size": s.size},
            },
            # The identities JSON (seaweedfs_s3_config) comes from the S3 Secret; without
            # existingConfigSecret the chart generates random keys the engines do not know.
            "s3": {"enableAuth": True, "existingConfigSecret": s3_secret_name(stack)},
        }
    if s.type == "minio":
        return "minio", {
            "mode": "standalone",
            "existingSecret": s3_secret_name(stack),  # rootUser and rootPassword keys
            "persistence": {"size": s.size},
            "buckets": [{"name": b, "policy": "none", "purge": False} for b in bucket_names(stack)],
        }
    return None
