"""Buckets the engines use against the buckets the in-cluster store creates (umbrella values):
a name missing from the store fails at runtime with NoSuchBucket."""

from __future__ import annotations

from kms.deploy.lint.findings import Doc, get

__all__ = ["check_buckets"]


def _store_buckets(values: dict) -> tuple[str, set[str]] | None:
    if get(values, "seaweedfs.allInOne.s3.createBuckets") is not None:
        return "seaweedfs.allInOne.s3.createBuckets", {b.get("name") for b in values["seaweedfs"]["allInOne"]["s3"]["createBuckets"]}
    if get(values, "minio.buckets") is not None and get(values, "minio.enabled", True) is not False:
        return "minio.buckets", {b.get("name") for b in values["minio"]["buckets"]}
    return None


def _engine_buckets(v: dict) -> list[tuple[str, str]]:
    """(values path, bucket) of every bucket Mimir, Loki and Tempo are configured with."""
    out = []
    for path in ("mimir.mimir.structuredConfig.blocks_storage.s3.bucket_name",
                 "mimir.mimir.structuredConfig.ruler_storage.s3.bucket_name",
                 "mimir.mimir.structuredConfig.alertmanager_storage.s3.bucket_name",
                 "tempo.tempo.storage.trace.s3.bucket"):
        if (b := get(v, path)) is not None:
            out.append((path, b))
    for kind, b in (get(v, "loki.loki.storage.bucketNames") or {}).items():
        out.append((f"loki.loki.storage.bucketNames.{kind}", b))
    return out


def check_buckets(doc: Doc) -> None:
    store = _store_buckets(doc.data)
    if store is None:
        return  # an external store: its buckets are not visible here
    where, created = store
    for path, bucket in _engine_buckets(doc.data):
        if bucket not in created:
            doc.error("bucket-not-created", path, f"bucket {bucket!r} is not among the buckets the store creates "
                      f"({where}: {sorted(created)}); writes fail with NoSuchBucket", f"add {bucket!r} to {where}")
