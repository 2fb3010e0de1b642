"""The in-cluster S3-compatible store with the buckets every engine needs."""

from __future__ import annotations

from dataclasses import astuple

from kms.deploy.model import Stack

__all__ = ["bucket_names", "store_values"]


def bucket_names(stack: Stack) -> list[str]:
    return sorted(set(astuple(stack.storage.buckets)))


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
            "s3": {"enableAuth": True, "credentials": {"admin": {"accessKey": s.access_key,
                                                                 "secretKey": s.secret_key}}},  # fmt: skip
        }
    if s.type == "minio":
        return "minio", {
            "mode": "standalone",
            "rootUser": s.access_key,
            "rootPassword": s.secret_key,
            "persistence": {"size": s.size},
            "buckets": [{"name": b, "policy": "none", "purge": False} for b in bucket_names(stack)],
        }
    return None
